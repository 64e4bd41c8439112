package logql

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxQueryBytes bounds a query's text.
const MaxQueryBytes = 16 << 10

// maxDepth bounds the nesting of parentheses and aggregations.
const maxDepth = 32

// Supported names what the subset holds, for error messages.
const Supported = `supported: {label="v"} with = != =~ !~; line filters |= != |~ !~; | json, | logfmt; ` +
	`label filters with = != =~ !~ (strings) and > >= < <= == != (numbers), joined by , or and; | drop names; ` +
	`count_over_time, rate, bytes_over_time, bytes_rate over [range]; ` +
	`sum, count, min, max, avg, topk, bottomk with by or without; + - * / between them, numbers and vector(n)`

// Error is a query the subset cannot take: where and why. Its text is
// Loki's form, "parse error at line 1, col 5: ...".
type Error struct {
	Pos       int // byte offset
	Line, Col int // 1-based, set by Parse
	Msg       string
}

func (e *Error) Error() string {
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

var (
	rangeOps  = []string{"count_over_time", "rate", "bytes_over_time", "bytes_rate"}
	vectorOps = []string{"sum", "count", "min", "max", "avg", "topk", "bottomk"}
)

// Parse parses q. Its errors are *Error.
func Parse(q string) (Expr, error) {
	e, err := parse(q)
	if err != nil {
		if pe, ok := err.(*Error); ok {
			pe.Line = 1 + strings.Count(q[:min(pe.Pos, len(q))], "\n")
			pe.Col = 1 + pe.Pos - (strings.LastIndex(q[:min(pe.Pos, len(q))], "\n") + 1)
		}
		return nil, err
	}
	return e, nil
}

func parse(q string) (Expr, error) {
	if len(q) > MaxQueryBytes {
		return nil, &Error{Msg: fmt.Sprintf("query of %d bytes: at most %d", len(q), MaxQueryBytes)}
	}
	toks, err := lex(q)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	e, err := p.expr(0, 0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, p.errorf(t, "unexpected %s after the query", t)
	}
	return e, nil
}

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }

// at returns the token k after the next one (tEOF past the end).
func (p *parser) at(k int) token { return p.toks[min(p.i+k, len(p.toks)-1)] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func (p *parser) errorf(t token, format string, args ...any) error {
	return &Error{Pos: t.pos, Msg: fmt.Sprintf(format, args...)}
}

// isOp reports whether t is the operator op.
func isOp(t token, op string) bool { return t.kind == tOp && t.text == op }

// expect takes the operator op or fails.
func (p *parser) expect(op string) (token, error) {
	t := p.next()
	if !isOp(t, op) {
		return t, p.errorf(t, "unexpected %s, want %q", t, op)
	}
	return t, nil
}

// precedence of the binary operators; 0 for none.
func precedence(t token) int {
	if t.kind != tOp {
		return 0
	}
	switch t.text {
	case "+", "-":
		return 1
	case "*", "/":
		return 2
	}
	return 0
}

// expr parses a binary expression whose operators bind tighter than min.
func (p *parser) expr(minPrec, depth int) (Expr, error) {
	if depth > maxDepth {
		return nil, p.errorf(p.peek(), "nested deeper than %d", maxDepth)
	}
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		prec := precedence(t)
		if prec == 0 || prec <= minPrec {
			return l, nil
		}
		p.next()
		r, err := p.expr(prec, depth+1)
		if err != nil {
			return nil, err
		}
		for _, side := range []Expr{l, r} {
			if _, ok := side.(*LogQuery); ok {
				return nil, p.errorf(t, "%q needs numbers or metric queries on both sides, not a log query", t.text)
			}
		}
		l = &BinaryExpr{Op: t.text, L: l, R: r}
	}
}

func (p *parser) unary(depth int) (Expr, error) {
	t := p.peek()
	switch {
	case t.kind == tNumber:
		p.next()
		v, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, p.errorf(t, "invalid number %q", t.text)
		}
		return &Literal{Value: v}, nil
	case isOp(t, "-") && p.at(1).kind == tNumber:
		p.next()
		l, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		l.(*Literal).Value = -l.(*Literal).Value
		return l, nil
	case isOp(t, "("):
		p.next()
		e, err := p.expr(0, depth+1)
		if err != nil {
			return nil, err
		}
		if _, err := p.expect(")"); err != nil {
			return nil, err
		}
		return e, nil
	case isOp(t, "{"):
		return p.logQuery()
	case t.kind == tIdent:
		switch {
		case t.text == "vector":
			return p.vector()
		case slices.Contains(rangeOps, t.text):
			return p.rangeAgg()
		case slices.Contains(vectorOps, t.text):
			return p.vectorAgg(depth)
		}
		return nil, p.errorf(t, "%q is not supported (%s)", t.text, Supported)
	}
	return nil, p.errorf(t, "unexpected %s, want a stream selector {...} or a metric query (%s)", t, Supported)
}

func (p *parser) vector() (Expr, error) {
	p.next()
	if _, err := p.expect("("); err != nil {
		return nil, err
	}
	t := p.next()
	neg := false
	if isOp(t, "-") {
		neg, t = true, p.next()
	}
	v, err := strconv.ParseFloat(t.text, 64)
	if t.kind != tNumber || err != nil {
		return nil, p.errorf(t, "vector() takes a number, not %s", t)
	}
	if neg {
		v = -v
	}
	if _, err := p.expect(")"); err != nil {
		return nil, err
	}
	return &Literal{Value: v, Vector: true}, nil
}

// rangeAgg parses op(logQuery [range]); the range may also follow the
// selector, before the pipeline, as Loki allows.
func (p *parser) rangeAgg() (Expr, error) {
	op := p.next().text
	if _, err := p.expect("("); err != nil {
		return nil, err
	}
	if t := p.peek(); !isOp(t, "{") {
		return nil, p.errorf(t, "%s takes a log query and a range, like %s({service=\"x\"} [5m])", op, op)
	}
	q, r, err := p.logQueryRange()
	if err != nil {
		return nil, err
	}
	if r == 0 {
		t := p.peek()
		return nil, p.errorf(t, "%s needs a range, like [5m], after its log query", op)
	}
	if _, err := p.expect(")"); err != nil {
		return nil, err
	}
	return &RangeAgg{Op: op, Log: q, Range: r}, nil
}

func (p *parser) vectorAgg(depth int) (Expr, error) {
	op := p.next().text
	v := &VectorAgg{Op: op}
	if err := p.grouping(v); err != nil {
		return nil, err
	}
	if _, err := p.expect("("); err != nil {
		return nil, err
	}
	if op == "topk" || op == "bottomk" {
		t := p.next()
		k, err := strconv.Atoi(t.text)
		if t.kind != tNumber || err != nil || k <= 0 {
			return nil, p.errorf(t, "%s takes a positive whole number first, not %s", op, t)
		}
		v.Param = k
		if _, err := p.expect(","); err != nil {
			return nil, err
		}
	}
	inner, err := p.expr(0, depth+1)
	if err != nil {
		return nil, err
	}
	if _, ok := inner.(*LogQuery); ok {
		return nil, p.errorf(p.peek(), "%s takes a metric query, such as count_over_time({...}[5m]), not a log query", op)
	}
	v.Inner = inner
	if _, err := p.expect(")"); err != nil {
		return nil, err
	}
	if v.By || v.Without {
		return v, nil
	}
	return v, p.grouping(v)
}

// grouping parses an optional by (...) or without (...).
func (p *parser) grouping(v *VectorAgg) error {
	t := p.peek()
	if t.kind != tIdent || (t.text != "by" && t.text != "without") {
		return nil
	}
	if v.By || v.Without {
		return p.errorf(t, "a second grouping")
	}
	p.next()
	v.By, v.Without = t.text == "by", t.text == "without"
	if _, err := p.expect("("); err != nil {
		return err
	}
	v.Grouping = []string{}
	for !isOp(p.peek(), ")") {
		n := p.next()
		if n.kind != tIdent {
			return p.errorf(n, "unexpected %s, want a label name", n)
		}
		v.Grouping = append(v.Grouping, n.text)
		if !isOp(p.peek(), ",") {
			break
		}
		p.next()
	}
	_, err := p.expect(")")
	return err
}

// logQuery parses a log query with no range.
func (p *parser) logQuery() (Expr, error) {
	q, r, err := p.logQueryRange()
	if err != nil {
		return nil, err
	}
	if r != 0 {
		return nil, p.errorf(p.toks[p.i-1], "a range belongs inside a function such as count_over_time")
	}
	return q, nil
}

// logQueryRange parses a selector, its pipeline and an optional [range]
// (after the selector or after the pipeline).
func (p *parser) logQueryRange() (*LogQuery, time.Duration, error) {
	q := &LogQuery{}
	var err error
	if q.Selector, err = p.selector(); err != nil {
		return nil, 0, err
	}
	var r time.Duration
	for {
		t := p.peek()
		switch {
		case isOp(t, "["):
			if r != 0 {
				return nil, 0, p.errorf(t, "a second range")
			}
			if r, err = p.rangeDuration(); err != nil {
				return nil, 0, err
			}
		case t.kind == tOp && (t.text == "|=" || t.text == "!=" || t.text == "|~" || t.text == "!~"):
			f, err := p.lineFilter()
			if err != nil {
				return nil, 0, err
			}
			q.Pipeline = append(q.Pipeline, f)
		case isOp(t, "|"):
			p.next()
			s, err := p.stage()
			if err != nil {
				return nil, 0, err
			}
			q.Pipeline = append(q.Pipeline, s)
		default:
			return q, r, nil
		}
	}
}

func (p *parser) selector() ([]Matcher, error) {
	open, _ := p.expect("{")
	var ms []Matcher
	for !isOp(p.peek(), "}") {
		m, err := p.matcher(true)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
		if !isOp(p.peek(), ",") {
			break
		}
		p.next()
	}
	if _, err := p.expect("}"); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(ms, func(m Matcher) bool { return !m.Matches("") }) {
		return nil, p.errorf(open, "a stream selector needs at least one matcher that an empty value fails, such as service=\"x\" or service=~\".+\"")
	}
	return ms, nil
}

// matcher parses name op "value"; in a selector only the string
// operators are allowed.
func (p *parser) matcher(selector bool) (Matcher, error) {
	n := p.next()
	if n.kind != tIdent {
		return Matcher{}, p.errorf(n, "unexpected %s, want a label name", n)
	}
	opTok := p.next()
	op := MatchOp(opTok.text)
	if opTok.kind != tOp || (op != Eq && op != NotEq && op != Re && op != NotRe) {
		return Matcher{}, p.errorf(opTok, "unexpected %s after %s, want = != =~ or !~", opTok, n.text)
	}
	v := p.next()
	if v.kind != tString {
		what := "a quoted string"
		if !selector {
			what += " (or, with > >= < <= == !=, a number)"
		}
		return Matcher{}, p.errorf(v, "unexpected %s, want %s", v, what)
	}
	m := Matcher{Name: n.text, Op: op, Value: v.text}
	if op == Re || op == NotRe {
		re, err := regexp.Compile("^(?:" + v.text + ")$")
		if err != nil {
			return Matcher{}, p.errorf(v, "invalid regular expression %q: %v", v.text, err)
		}
		m.re = re
	}
	return m, nil
}

func (p *parser) lineFilter() (*LineFilter, error) {
	op := p.next()
	v := p.next()
	if v.kind != tString {
		return nil, p.errorf(v, "unexpected %s after %s, want a quoted string", v, op.text)
	}
	f := &LineFilter{Op: op.text, Value: v.text}
	if op.text == "|~" || op.text == "!~" {
		re, err := regexp.Compile(v.text)
		if err != nil {
			return nil, p.errorf(v, "invalid regular expression %q: %v", v.text, err)
		}
		f.re = re
	}
	return f, nil
}

// stage parses what follows a "|": a parser or label filters.
func (p *parser) stage() (Stage, error) {
	t := p.peek()
	if t.kind != tIdent {
		return nil, p.errorf(t, "unexpected %s after |, want json, logfmt or a label filter", t)
	}
	if t.text == "drop" && p.at(1).kind == tIdent {
		p.next()
		d := &Drop{}
		for {
			n := p.next()
			if n.kind != tIdent {
				return nil, p.errorf(n, "unexpected %s, want a label name to drop", n)
			}
			if next := p.peek(); isOp(next, "=") || isOp(next, "=~") {
				return nil, p.errorf(next, "drop with a condition (name=\"value\") is not supported: drop names only")
			}
			d.Names = append(d.Names, n.text)
			if !isOp(p.peek(), ",") {
				return d, nil
			}
			p.next()
		}
	}
	if t.text == "json" || t.text == "logfmt" {
		p.next()
		if n := p.peek(); n.kind == tIdent || isOp(n, "-") {
			return nil, p.errorf(n, "%s takes no parameters here", t.text)
		}
		return &Parser{Kind: t.text}, nil
	}
	if n := p.at(1); n.kind != tOp || !strings.ContainsAny(n.text, "=!<>") {
		return nil, p.errorf(t, "%q is not supported after | (%s)", t.text, Supported)
	}
	f := &LabelFilter{}
	for {
		if err := p.labelFilter(f); err != nil {
			return nil, err
		}
		switch n := p.peek(); {
		case isOp(n, ","), n.kind == tIdent && n.text == "and":
			p.next()
			continue
		case n.kind == tIdent && n.text == "or":
			return nil, p.errorf(n, "\"or\" between label filters is not supported: use a regular expression, name=~\"a|b\"")
		}
		return f, nil
	}
}

// labelFilter parses one condition into f.
func (p *parser) labelFilter(f *LabelFilter) error {
	n, op, v := p.at(0), p.at(1), p.at(2)
	if n.kind == tIdent && op.kind == tOp && v.kind == tNumber {
		switch op.text {
		case ">", ">=", "<", "<=", "==", "!=":
		default:
			return p.errorf(op, "unexpected %s before a number, want > >= < <= == or !=", op)
		}
		x, err := strconv.ParseFloat(v.text, 64)
		if err != nil {
			return p.errorf(v, "invalid number %q", v.text)
		}
		p.i += 3
		f.Numbers = append(f.Numbers, NumFilter{Name: n.text, Op: op.text, Value: x})
		return nil
	}
	if v.kind == tDuration {
		return p.errorf(v, "durations and byte sizes in label filters are not supported: compare with a plain number")
	}
	m, err := p.matcher(false)
	if err != nil {
		return err
	}
	f.Strings = append(f.Strings, m)
	return nil
}

// rangeDuration parses [duration].
func (p *parser) rangeDuration() (time.Duration, error) {
	p.next()
	t := p.next()
	d, err := ParseDuration(t.text)
	if (t.kind != tDuration && t.kind != tNumber) || err != nil || d <= 0 {
		return 0, p.errorf(t, "unexpected %s, want a positive duration such as 5m", t)
	}
	if _, err := p.expect("]"); err != nil {
		return 0, err
	}
	return d, nil
}

// ParseDuration reads a duration as Prometheus writes them: Go's units
// plus d (days), w (weeks) and y (365 days), or plain seconds.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && (isDigit(rest[i]) || rest[i] == '.') {
			i++
		}
		j := i
		for j < len(rest) && isLetter(rest[j]) {
			j++
		}
		if i == 0 || j == i {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		unit := map[string]time.Duration{"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "ms": time.Millisecond,
			"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour}[rest[i:j]]
		if unit == 0 {
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q", s, rest[i:j])
		}
		total += time.Duration(n * float64(unit))
		rest = rest[j:]
	}
	return total, nil
}

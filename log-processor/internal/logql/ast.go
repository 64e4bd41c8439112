// Package logql parses and runs a documented subset of Grafana Loki's
// query language, LogQL, over stored entries: stream selectors over an
// entry's labels, line filters, label filters, and metric queries (counts,
// rates and bytes over time, aggregated by label). Anything outside the
// subset is refused with its position and what is supported, never
// answered wrongly. docs/query.md describes the subset.
package logql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Expr is a parsed query: a *LogQuery (its answer is entries) or a metric
// expression (its answer is series of numbers): *RangeAgg, *VectorAgg,
// *BinaryExpr, *Literal.
type Expr interface {
	String() string
	expr()
}

// MatchOp compares a label, or the line, with a string.
type MatchOp string

// Match operators.
const (
	Eq    MatchOp = "="
	NotEq MatchOp = "!="
	Re    MatchOp = "=~"
	NotRe MatchOp = "!~"
)

// Matcher is one condition of a stream selector, or a string label filter:
// the label Name compared with Value. A regular expression must match the
// whole value, as in Prometheus and Loki.
type Matcher struct {
	Name  string
	Op    MatchOp
	Value string
	re    *regexp.Regexp
}

// Matches reports whether the label's value v passes m (a missing label
// is the empty string).
func (m *Matcher) Matches(v string) bool {
	switch m.Op {
	case Eq:
		return v == m.Value
	case NotEq:
		return v != m.Value
	case Re:
		return m.re.MatchString(v)
	default:
		return !m.re.MatchString(v)
	}
}

func (m *Matcher) String() string { return fmt.Sprintf("%s%s%q", m.Name, m.Op, m.Value) }

// LineFilter keeps entries whose message contains Value (|=), does not
// (!=), matches the regular expression Value anywhere (|~), or does not
// (!~).
type LineFilter struct {
	Op    string // "|=", "!=", "|~", "!~"
	Value string
	re    *regexp.Regexp
}

// Matches reports whether the message passes f.
func (f *LineFilter) Matches(msg string) bool {
	switch f.Op {
	case "|=":
		return strings.Contains(msg, f.Value)
	case "!=":
		return !strings.Contains(msg, f.Value)
	case "|~":
		return f.re.MatchString(msg)
	default:
		return !f.re.MatchString(msg)
	}
}

// NumFilter keeps entries whose label Name is a number comparing with
// Value as Op says (>, >=, <, <=, ==, !=). A label that is missing or no
// number fails it.
type NumFilter struct {
	Name  string
	Op    string
	Value float64
}

// Stage is one step of a log pipeline: a *LineFilter, a *Parser, a
// *LabelFilter or a *Drop.
type Stage interface{ stage() }

// Parser is a parser stage: "json" (the entry's attributes are its labels
// already: nothing to do) or "logfmt" (key=value pairs of the message
// become labels).
type Parser struct{ Kind string }

// LabelFilter keeps entries passing every one of its conditions (joined
// by "," or "and").
type LabelFilter struct {
	Strings []Matcher
	Numbers []NumFilter
}

// Drop removes labels from the entries' labels (Grafana's log volume
// query drops __error__, which no entry here has).
type Drop struct{ Names []string }

func (*Drop) stage()        {}
func (*LineFilter) stage()  {}
func (*Parser) stage()      {}
func (*LabelFilter) stage() {}

// LogQuery is a stream selector and a pipeline: its answer is entries.
type LogQuery struct {
	Selector []Matcher
	Pipeline []Stage
}

// Parsed reports whether the pipeline has a parser stage: then an entry's
// attributes are part of the labels its series and streams are grouped by,
// as Loki groups by the labels a parser extracts.
func (q *LogQuery) Parsed() bool {
	for _, s := range q.Pipeline {
		if _, ok := s.(*Parser); ok {
			return true
		}
	}
	return false
}

// RangeAgg is a function over a range of each series' entries:
// count_over_time, rate, bytes_over_time or bytes_rate.
type RangeAgg struct {
	Op    string
	Log   *LogQuery
	Range time.Duration
}

// VectorAgg aggregates series across labels at each step: sum, count,
// min, max, avg, topk or bottomk, by or without the labels Grouping
// names.
type VectorAgg struct {
	Op       string
	Param    int // k of topk and bottomk
	By       bool
	Without  bool
	Grouping []string
	Inner    Expr
}

// BinaryExpr is arithmetic between two metric expressions (or numbers):
// series with the same labels are paired; a number applies to every
// series.
type BinaryExpr struct {
	Op   string // + - * /
	L, R Expr
}

// Literal is a number, or vector(number): one series without labels.
type Literal struct {
	Value  float64
	Vector bool
}

func (*LogQuery) expr()   {}
func (*RangeAgg) expr()   {}
func (*VectorAgg) expr()  {}
func (*BinaryExpr) expr() {}
func (*Literal) expr()    {}

func (q *LogQuery) String() string {
	var b strings.Builder
	b.WriteString("{")
	for i := range q.Selector {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q.Selector[i].String())
	}
	b.WriteString("}")
	for _, s := range q.Pipeline {
		switch s := s.(type) {
		case *LineFilter:
			fmt.Fprintf(&b, " %s %q", s.Op, s.Value)
		case *Parser:
			fmt.Fprintf(&b, " | %s", s.Kind)
		case *Drop:
			fmt.Fprintf(&b, " | drop %s", strings.Join(s.Names, ", "))
		case *LabelFilter:
			var parts []string
			for i := range s.Strings {
				parts = append(parts, s.Strings[i].String())
			}
			for _, n := range s.Numbers {
				parts = append(parts, fmt.Sprintf("%s %s %s", n.Name, n.Op, number(n.Value)))
			}
			b.WriteString(" | " + strings.Join(parts, ", "))
		}
	}
	return b.String()
}

func (r *RangeAgg) String() string {
	return fmt.Sprintf("%s(%s [%s])", r.Op, r.Log, r.Range)
}

func (v *VectorAgg) String() string {
	var b strings.Builder
	b.WriteString(v.Op)
	switch {
	case v.By:
		fmt.Fprintf(&b, " by (%s)", strings.Join(v.Grouping, ", "))
	case v.Without:
		fmt.Fprintf(&b, " without (%s)", strings.Join(v.Grouping, ", "))
	}
	b.WriteString(" (")
	if v.Op == "topk" || v.Op == "bottomk" {
		fmt.Fprintf(&b, "%d, ", v.Param)
	}
	b.WriteString(v.Inner.String() + ")")
	return b.String()
}

func (e *BinaryExpr) String() string { return fmt.Sprintf("(%s %s %s)", e.L, e.Op, e.R) }

func (l *Literal) String() string {
	if l.Vector {
		return "vector(" + number(l.Value) + ")"
	}
	return number(l.Value)
}

// number writes v as the query language reads it back.
func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

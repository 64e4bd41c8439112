package logql

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Store is what queries read: the stored entries passing a filter, newest
// first (oldest first with Filter.Oldest), one at a time, until fn
// returns false; and their counts by stream and step, for the metric
// queries whose conditions the store can apply alone (storage.Store has
// both).
type Store interface {
	Scan(ctx context.Context, f storage.Filter, fn func(*storage.Record) bool) error
	Buckets(ctx context.Context, f storage.Filter, q storage.BucketQuery, fn func(storage.Bucket) bool) error
}

// Limits bound what one query may hold. A zero field means its default.
type Limits struct {
	// MaxLines bounds a log query's limit.
	MaxLines int
	// MaxSeries bounds the series a metric query holds at once.
	MaxSeries int
	// MaxPoints bounds the steps of a range query, per series.
	MaxPoints int
}

// Defaults for Limits, Loki's own.
const (
	DefaultLimit     = 100
	DefaultMaxLines  = 5000
	DefaultMaxSeries = 500
	DefaultMaxPoints = 11000
)

// ErrLimit is a query past one of the Limits: the client's to narrow.
var ErrLimit = errors.New("query limit")

// Engine runs queries over a Store.
type Engine struct {
	store  Store
	limits Limits
}

// NewEngine returns an Engine reading store within limits.
func NewEngine(store Store, limits Limits) *Engine {
	if limits.MaxLines <= 0 {
		limits.MaxLines = DefaultMaxLines
	}
	if limits.MaxSeries <= 0 {
		limits.MaxSeries = DefaultMaxSeries
	}
	if limits.MaxPoints <= 0 {
		limits.MaxPoints = DefaultMaxPoints
	}
	return &Engine{store: store, limits: limits}
}

// Params are a query's range: from Start to End (both included), at
// steps of Step for a metric query (End alone for an instant one), at most
// Limit entries for a log query, the newest first unless Forward.
type Params struct {
	Start, End time.Time
	Step       time.Duration
	Limit      int
	Forward    bool
}

// AlignedToStep returns p with its start and end moved back to whole
// multiples of the step since the Unix epoch, as Loki's query frontend
// moves them with align_queries_with_step: every step then counts the same
// wall-clock intervals whenever it is asked, and with a step and a range
// of whole minutes, the stores count by minute (storage.ByMinute).
func (p Params) AlignedToStep() Params {
	if step := p.Step.Milliseconds(); step > 0 {
		p.Start = time.UnixMilli(p.Start.UnixMilli() / step * step)
		p.End = time.UnixMilli(p.End.UnixMilli() / step * step)
	}
	return p
}

// Entry is one entry of a stream: its time and its line (the entry as a
// JSON object).
type Entry struct {
	Time time.Time
	Line string
}

// Stream is the entries of one label set.
type Stream struct {
	Labels  map[string]string
	Entries []Entry
}

// Point is one value of a series.
type Point struct {
	T time.Time
	V float64
}

// Series is the values of one label set, at the steps where it has one.
type Series struct {
	Labels map[string]string
	Points []Point
}

// Logs runs a log query: the streams of at most p.Limit entries passing
// it, in [p.Start, p.End], newest first (oldest with p.Forward); streams
// in the order of their first entry.
func (en *Engine) Logs(ctx context.Context, q *LogQuery, p Params) ([]Stream, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > en.limits.MaxLines {
		return nil, fmt.Errorf("%w: limit %d is more than the %d lines a query may return", ErrLimit, limit, en.limits.MaxLines)
	}
	f := Pushdown(q)
	f.Since, f.Until, f.Oldest = p.Start.UnixMilli(), p.End.UnixMilli(), p.Forward
	var out []Stream
	index := map[string]int{}
	n := 0
	parsed := q.Parsed()
	err := en.store.Scan(ctx, f, func(rec *storage.Record) bool {
		r := row{e: &rec.LogEntry}
		if !r.passes(q) {
			return true
		}
		labels := r.labelsFor(q, parsed)
		k := Key(labels)
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, Stream{Labels: labels})
		}
		out[i].Entries = append(out[i].Entries, Entry{Time: time.UnixMilli(rec.Timestamp), Line: Line(&rec.LogEntry)})
		n++
		return n < limit
	})
	return out, err
}

// Line is how an entry reads as a line: the entry as a JSON object.
func Line(e *models.LogEntry) string {
	b, _ := json.Marshal(e) // a LogEntry always marshals
	return string(b)
}

// Pushdown is the part of q's conditions the store can apply itself: a
// superset of what passes q.
func Pushdown(q *LogQuery) storage.Filter {
	var f storage.Filter
	for i := range q.Selector {
		m := &q.Selector[i]
		if m.Op != Eq {
			continue
		}
		switch m.Name {
		case "service":
			f.Service = m.Value
		case "level":
			f.Level = m.Value
		}
	}
	for _, s := range q.Pipeline {
		if lf, ok := s.(*LineFilter); ok && lf.Op == "|=" && lf.Value != "" {
			f.Contains = lf.Value
			break
		}
	}
	return f
}

// Passes reports whether e passes q's selector and pipeline.
func Passes(q *LogQuery, e *models.LogEntry) bool {
	r := row{e: e}
	return r.passes(q)
}

// Labels returns e's stream labels (StreamLabels that are set).
func Labels(e *models.LogEntry) map[string]string {
	r := row{e: e}
	return r.labels(false)
}

// labelsFor returns the row's labels as q names its streams: all of them
// after a parser, less those q drops.
func (r *row) labelsFor(q *LogQuery, parsed bool) map[string]string {
	m := r.labels(parsed)
	for _, s := range q.Pipeline {
		if d, ok := s.(*Drop); ok {
			for _, n := range d.Names {
				delete(m, n)
			}
		}
	}
	return m
}

// passes reports whether the row passes q's selector and pipeline.
func (r *row) passes(q *LogQuery) bool {
	for i := range q.Selector {
		m := &q.Selector[i]
		if !m.Matches(r.get(m.Name)) {
			return false
		}
	}
	for _, s := range q.Pipeline {
		switch s := s.(type) {
		case *LineFilter:
			if !s.Matches(r.e.Message) {
				return false
			}
		case *Parser:
			if s.Kind == "logfmt" {
				r.logfmt()
			}
		case *LabelFilter:
			for i := range s.Strings {
				if !s.Strings[i].Matches(r.get(s.Strings[i].Name)) {
					return false
				}
			}
			for _, nf := range s.Numbers {
				if !nf.passes(r.get(nf.Name)) {
					return false
				}
			}
		}
	}
	return true
}

func (nf NumFilter) passes(v string) bool {
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return false
	}
	switch nf.Op {
	case ">":
		return x > nf.Value
	case ">=":
		return x >= nf.Value
	case "<":
		return x < nf.Value
	case "<=":
		return x <= nf.Value
	case "==":
		return x == nf.Value
	default:
		return x != nf.Value
	}
}

// steps returns the number of steps of p and checks it.
func (en *Engine) steps(p Params) (int, error) {
	if p.End.Before(p.Start) {
		return 0, fmt.Errorf("%w: the end is before the start", ErrLimit)
	}
	if p.Step <= 0 {
		return 0, fmt.Errorf("%w: the step must be positive", ErrLimit)
	}
	n := int64(p.End.Sub(p.Start)/p.Step) + 1
	if n > int64(en.limits.MaxPoints) {
		return 0, fmt.Errorf("%w: %d steps of %s: at most %d points per series; raise the step", ErrLimit, n, p.Step, en.limits.MaxPoints)
	}
	return int(n), nil
}

// grid is the values of series at a range query's steps.
type grid struct {
	n      int
	series []*gridSeries
	index  map[string]int
	max    int
}

type gridSeries struct {
	labels map[string]string
	v      []float64
	has    []bool
}

func newGrid(n, max int) *grid { return &grid{n: n, index: map[string]int{}, max: max} }

func (g *grid) get(labels map[string]string) (*gridSeries, error) {
	k := Key(labels)
	if i, ok := g.index[k]; ok {
		return g.series[i], nil
	}
	if len(g.series) >= g.max {
		return nil, fmt.Errorf("%w: more than %d series; aggregate with sum by (...) or narrow the selector", ErrLimit, g.max)
	}
	s := &gridSeries{labels: labels, v: make([]float64, g.n), has: make([]bool, g.n)}
	g.index[k] = len(g.series)
	g.series = append(g.series, s)
	return s, nil
}

// Metric runs a metric query at each step of p (a range query), or at
// p.End alone when p.Step is zero (an instant query): its series in the
// order of their labels.
func (en *Engine) Metric(ctx context.Context, e Expr, p Params) ([]Series, error) {
	if p.Step == 0 {
		p.Start, p.Step = p.End, time.Second
	}
	n, err := en.steps(p)
	if err != nil {
		return nil, err
	}
	g, err := en.eval(ctx, e, p, n, nil)
	if err != nil {
		return nil, err
	}
	out := make([]Series, 0, len(g.series))
	slices.SortFunc(g.series, func(a, b *gridSeries) int { return cmp.Compare(Key(a.labels), Key(b.labels)) })
	for _, s := range g.series {
		var pts []Point
		for k := range g.n {
			if s.has[k] {
				pts = append(pts, Point{T: p.Start.Add(time.Duration(k) * p.Step), V: s.v[k]})
			}
		}
		if len(pts) > 0 {
			out = append(out, Series{Labels: s.labels, Points: pts})
		}
	}
	return out, nil
}

// scalar is the value of a number literal: nil unless e is one.
func scalar(e Expr) *float64 {
	if l, ok := e.(*Literal); ok && !l.Vector {
		return &l.Value
	}
	return nil
}

// eval evaluates e at n steps. need names the labels the caller keeps of
// e's series (nil: all): a range function's series may then merge those
// that differ only in other labels, which the caller would sum together
// anyway.
func (en *Engine) eval(ctx context.Context, e Expr, p Params, n int, need []string) (*grid, error) {
	switch e := e.(type) {
	case *Literal:
		g := newGrid(n, 1)
		s, _ := g.get(map[string]string{})
		for k := range n {
			s.v[k], s.has[k] = e.Value, true
		}
		return g, nil
	case *RangeAgg:
		return en.rangeAgg(ctx, e, p, n, need)
	case *VectorAgg:
		// Only a sum by labels is the same over merged series: count, min,
		// max, avg and topk tell series apart.
		var inner []string               // nil: all
		if e.Op == "sum" && !e.Without { // sum by (...), or sum alone: by ()
			inner = slices.DeleteFunc(slices.Clone(e.Grouping), func(l string) bool { return need != nil && !slices.Contains(need, l) })
			if inner == nil {
				inner = []string{}
			}
		}
		in, err := en.eval(ctx, e.Inner, p, n, inner)
		if err != nil {
			return nil, err
		}
		return aggregate(e, in, n)
	case *BinaryExpr:
		return en.binary(ctx, e, p, n)
	}
	return nil, fmt.Errorf("%w: a log query where a metric query belongs", ErrLimit)
}

// rangeAgg counts (or sums the message bytes of) each series' entries in
// (t-range, t] at every step t, in one pass over the entries: each adds
// its weight at the first step that sees it and takes it away after the
// last, and a running sum gives every step's value.
func (en *Engine) rangeAgg(ctx context.Context, e *RangeAgg, p Params, n int, need []string) (*grid, error) {
	f := Pushdown(e.Log)
	rng, step := e.Range.Milliseconds(), p.Step.Milliseconds()
	start := p.Start.UnixMilli()
	if step <= 0 || rng <= 0 {
		return nil, fmt.Errorf("%w: the step and the range must be at least a millisecond", ErrLimit)
	}
	// The entries the steps see: (start-range, the last step]. Past the
	// last step, up to the end, no step sees them.
	f.Since, f.Until = start-rng+1, start+int64(n-1)*step
	if w := en.bucketWidth(e, rng, step, p, n); w > 0 {
		return en.rangeAggBuckets(ctx, e, f, p, n, w, need)
	}
	g := newGrid(n+1, en.limits.MaxSeries) // one more slot: the step after the last
	parsed := e.Log.Parsed()
	bytes := e.Op == "bytes_over_time" || e.Op == "bytes_rate"
	var err error
	scanErr := en.store.Scan(ctx, f, func(rec *storage.Record) bool {
		r := row{e: &rec.LogEntry}
		if !r.passes(e.Log) {
			return true
		}
		d := rec.Timestamp - start
		lo := ceilDiv(d, step)
		hi := floorDiv(d+rng-1, step) // the last step t with t-range < ts
		lo, hi = max(lo, 0), min(hi, int64(n-1))
		if lo > hi {
			return true
		}
		var s *gridSeries
		if s, err = g.get(r.labelsFor(e.Log, parsed)); err != nil {
			return false
		}
		w := 1.0
		if bytes {
			w = float64(len(rec.Message))
		}
		s.v[lo] += w
		s.v[hi+1] -= w
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return nil, err
	}
	perSecond := e.Op == "rate" || e.Op == "bytes_rate"
	for _, s := range g.series {
		sum := 0.0
		for k := range n {
			sum += s.v[k]
			// The weights are whole numbers (a message is never empty): a
			// running sum of them is exact, and above zero exactly where
			// the step holds entries.
			s.v[k], s.has[k] = sum, sum > 0
			if perSecond {
				s.v[k] /= e.Range.Seconds()
			}
		}
		s.v, s.has = s.v[:n], s.has[:n]
	}
	g.n = n
	return g, nil
}

// bucketWidth returns the width (ms) of the buckets the store can count
// e's entries in, or 0 when it cannot: e's conditions must all be the
// store's (equality on service and level, one |=) or name stream labels
// only (checked on each bucket's), with no parser, and the range and the
// step multiples of a width that keeps the buckets few.
func (en *Engine) bucketWidth(e *RangeAgg, rng, step int64, p Params, n int) int64 {
	q := e.Log
	for i := range q.Selector {
		if !slices.Contains(StreamLabels, q.Selector[i].Name) {
			return 0
		}
	}
	pushed := false
	for _, s := range q.Pipeline {
		switch s := s.(type) {
		case *Drop:
		case *LineFilter:
			if s.Op != "|=" || s.Value == "" || pushed {
				return 0
			}
			pushed = true
		default:
			return 0
		}
	}
	w := rng
	if n > 1 {
		w = gcd(rng, step)
	}
	if span := p.End.UnixMilli() - p.Start.UnixMilli() + rng; span/w > int64(4*en.limits.MaxPoints) {
		return 0
	}
	return w
}

// maxStreamMemo bounds the streams whose series rangeAggBuckets keeps
// worked out.
const maxStreamMemo = 10_000

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// rangeAggBuckets is rangeAgg over the store's counts by stream and by
// buckets of width w from start-range: the step at k sees the buckets
// k*step/w+1 to k*step/w+range/w. Each series keeps its non-empty
// buckets, in order, with their running sums.
func (en *Engine) rangeAggBuckets(ctx context.Context, e *RangeAgg, f storage.Filter, p Params, n int, w int64, need []string) (*grid, error) {
	rng, step := e.Range.Milliseconds(), p.Step.Milliseconds()
	origin := p.Start.UnixMilli() - rng
	type cell struct {
		j int64
		v float64
	}
	series := map[string][]cell{}
	labelsOf := map[string]map[string]string{}
	bytes := e.Op == "bytes_over_time" || e.Op == "bytes_rate"
	var err error
	// Source and component are counted apart only where they are needed:
	// without them, a service's counts by level read one index alone.
	uses := func(l string) bool {
		return need == nil || slices.Contains(need, l) ||
			slices.ContainsFunc(e.Log.Selector, func(m Matcher) bool { return m.Name == l })
	}
	bq := storage.BucketQuery{Origin: origin, Step: w, Source: uses("source"), Component: uses("component"), Bytes: bytes}
	// A stream's series, worked out at its first bucket (for the first
	// maxStreamMemo streams): a day of every service's volume is tens of
	// thousands of buckets of a few hundred streams.
	type stream struct{ service, level, source, component string }
	type seriesOf struct {
		key string
		ok  bool // the selector takes the stream
	}
	streams := map[stream]seriesOf{}
	scanErr := en.store.Buckets(ctx, f, bq, func(b storage.Bucket) bool {
		st := stream{b.Service, b.Level, b.Source, b.Component}
		so, seen := streams[st]
		if !seen {
			entry := models.LogEntry{Service: b.Service, Level: b.Level, Source: b.Source, Component: b.Component}
			r := row{e: &entry}
			so.ok = !slices.ContainsFunc(e.Log.Selector, func(m Matcher) bool { return !m.Matches(r.get(m.Name)) })
			if so.ok {
				labels := r.labelsFor(e.Log, false)
				so.key = Key(labels)
				if _, ok := series[so.key]; !ok {
					if len(series) >= en.limits.MaxSeries {
						err = fmt.Errorf("%w: more than %d series; aggregate with sum by (...) or narrow the selector", ErrLimit, en.limits.MaxSeries)
						return false
					}
					labelsOf[so.key] = labels
					series[so.key] = nil
				}
			}
			if len(streams) < maxStreamMemo {
				streams[st] = so
			}
		}
		if !so.ok {
			return true
		}
		k := so.key
		v := float64(b.Count)
		if bytes {
			v = float64(b.Bytes)
		}
		series[k] = append(series[k], cell{b.Index, v})
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return nil, err
	}
	g := newGrid(n, en.limits.MaxSeries)
	perSecond := e.Op == "rate" || e.Op == "bytes_rate"
	keys := make([]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the order a scan would not give anyway: a stable one
	for _, k := range keys {
		cells := series[k]
		slices.SortFunc(cells, func(a, b cell) int { return cmp.Compare(a.j, b.j) })
		sums := make([]float64, len(cells)+1) // sums[i]: the first i cells
		for i, c := range cells {
			sums[i+1] = sums[i] + c.v
		}
		s, _ := g.get(labelsOf[k])
		for kk := range n {
			lo := int64(kk)*step/w + 1
			hi := lo + rng/w - 1
			a, _ := slices.BinarySearchFunc(cells, lo, func(c cell, j int64) int { return cmp.Compare(c.j, j) })
			b, _ := slices.BinarySearchFunc(cells, hi+1, func(c cell, j int64) int { return cmp.Compare(c.j, j) })
			if v := sums[b] - sums[a]; v > 0 {
				s.v[kk], s.has[kk] = v, true
				if perSecond {
					s.v[kk] /= e.Range.Seconds()
				}
			}
		}
	}
	return g, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// aggregate groups in's series by v's grouping at each step.
func aggregate(v *VectorAgg, in *grid, n int) (*grid, error) {
	if v.Op == "topk" || v.Op == "bottomk" {
		return topk(v, in, n), nil
	}
	out := newGrid(n, len(in.series)+1)
	counts := map[*gridSeries][]float64{}
	for _, s := range in.series {
		o, err := out.get(group(v, s.labels))
		if err != nil {
			return nil, err
		}
		c := counts[o]
		if c == nil {
			c = make([]float64, n)
			counts[o] = c
		}
		for k := range n {
			if !s.has[k] {
				continue
			}
			x := s.v[k]
			switch {
			case !o.has[k]:
				o.v[k] = x
				if v.Op == "count" {
					o.v[k] = 1
				}
			case v.Op == "sum", v.Op == "avg":
				o.v[k] += x
			case v.Op == "count":
				o.v[k]++
			case v.Op == "min":
				o.v[k] = math.Min(o.v[k], x)
			case v.Op == "max":
				o.v[k] = math.Max(o.v[k], x)
			}
			o.has[k] = true
			c[k]++
		}
	}
	if v.Op == "avg" {
		for o, c := range counts {
			for k := range n {
				if c[k] > 0 {
					o.v[k] /= c[k]
				}
			}
		}
	}
	return out, nil
}

// group returns the labels a series is aggregated under.
func group(v *VectorAgg, labels map[string]string) map[string]string {
	out := map[string]string{}
	switch {
	case v.By:
		for _, n := range v.Grouping {
			if x, ok := labels[n]; ok {
				out[n] = x
			}
		}
	case v.Without:
		for n, x := range labels {
			if !slices.Contains(v.Grouping, n) {
				out[n] = x
			}
		}
	}
	return out
}

// topk keeps, at each step and in each group, the k series with the
// largest (bottomk: smallest) values; a series is kept where it was among
// them.
func topk(v *VectorAgg, in *grid, n int) *grid {
	out := newGrid(n, len(in.series)+1)
	type cand struct {
		s *gridSeries
		x float64
	}
	for k := range n {
		groups := map[string][]cand{}
		for _, s := range in.series {
			if s.has[k] {
				gk := Key(group(v, s.labels))
				groups[gk] = append(groups[gk], cand{s, s.v[k]})
			}
		}
		for _, cs := range groups {
			slices.SortStableFunc(cs, func(a, b cand) int {
				if v.Op == "bottomk" {
					a, b = b, a
				}
				switch {
				case a.x > b.x:
					return -1
				case a.x < b.x:
					return 1
				}
				return 0
			})
			for _, c := range cs[:min(v.Param, len(cs))] {
				o, _ := out.get(c.s.labels)
				o.v[k], o.has[k] = c.x, true
			}
		}
	}
	return out
}

// binary pairs the series of both sides with the same labels (a number
// applies to every series) and applies the operator at each step where
// both have a value.
func (en *Engine) binary(ctx context.Context, e *BinaryExpr, p Params, n int) (*grid, error) {
	l, err := en.eval(ctx, e.L, p, n, nil)
	if err != nil {
		return nil, err
	}
	r, err := en.eval(ctx, e.R, p, n, nil)
	if err != nil {
		return nil, err
	}
	ls, rs := scalar(e.L), scalar(e.R)
	out := newGrid(n, max(len(l.series), len(r.series))+1)
	apply := func(a, b *gridSeries, labels map[string]string) {
		o, _ := out.get(labels)
		for k := range n {
			if a.has[k] && b.has[k] {
				o.v[k], o.has[k] = arith(e.Op, a.v[k], b.v[k]), true
			}
		}
	}
	switch {
	case ls != nil && rs != nil:
		apply(l.series[0], r.series[0], map[string]string{})
	case ls != nil:
		for _, s := range r.series {
			apply(l.series[0], s, s.labels)
		}
	case rs != nil:
		for _, s := range l.series {
			apply(s, r.series[0], s.labels)
		}
	default:
		for _, s := range l.series {
			if i, ok := r.index[Key(s.labels)]; ok {
				apply(s, r.series[i], s.labels)
			}
		}
	}
	return out, nil
}

func arith(op string, a, b float64) float64 {
	switch op {
	case "+":
		return a + b
	case "-":
		return a - b
	case "*":
		return a * b
	}
	return a / b
}

// Package lokiapi answers Grafana Loki's read API (the HTTP API Grafana's
// Loki data source, logcli and other Loki clients call) over the stored
// entries: queries in the LogQL subset of package logql, label names and
// values, series, the live tail over a WebSocket, and valid empty answers
// to the optional calls (index stats and volume, detected labels and
// fields, patterns). Its answers are Loki's JSON shapes; its errors are
// Loki's plain-text 400s.
package lokiapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/logql"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/tail"
)

// Defaults of Config.
const (
	DefaultTimeout = 30 * time.Second
	// DefaultMetadataScan bounds the entries read to answer a label
	// values or series call: the newest in the range.
	DefaultMetadataScan = 100_000
	// maxValues bounds the values of one label (or series) answered.
	maxValues = 1000
	// defaultRange is the range of a call that gives no start: Loki's.
	defaultRange = time.Hour
	// maxFormBytes bounds a POSTed query's form.
	maxFormBytes = 64 << 10
)

// Config describes the API. A zero field means its default.
type Config struct {
	// Timeout bounds each query.
	Timeout time.Duration
	// MetadataScan bounds the entries read for label values and series.
	MetadataScan int
	// AlignWithStep moves a range metric query's start and end back to
	// whole multiples of its step (logql.Params.AlignedToStep), as Loki's
	// align_queries_with_step does.
	AlignWithStep bool
	// Done, when closed, ends the tails (the server is shutting down).
	Done <-chan struct{}
}

// API is Loki's read API over a store's entries.
type API struct {
	cfg    Config
	store  logql.Store
	engine *logql.Engine
	hub    *tail.Hub
	log    *slog.Logger
}

// New returns the API reading store, within limits, tailing hub.
func New(store logql.Store, limits logql.Limits, hub *tail.Hub, cfg Config, logger *slog.Logger) *API {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MetadataScan <= 0 {
		cfg.MetadataScan = DefaultMetadataScan
	}
	return &API{cfg: cfg, store: store, engine: logql.NewEngine(store, limits), hub: hub, log: logger}
}

// Paths of the API, for the caller's mux (GET; the queries take POST too).
const (
	PathQueryRange  = "/loki/api/v1/query_range"
	PathQuery       = "/loki/api/v1/query"
	PathLabels      = "/loki/api/v1/labels"
	PathLabelValues = "/loki/api/v1/label/{name}/values"
	PathSeries      = "/loki/api/v1/series"
	PathTail        = "/loki/api/v1/tail"
)

// badRequest is a query the client must change: Loki answers 400 in
// plain text.
type badRequest struct{ error }

func badf(format string, args ...any) error { return badRequest{fmt.Errorf(format, args...)} }

// fail answers err as Loki does: 400 for the client's mistakes, 503 for
// a store that fails or a query that timed out.
func (a *API) fail(w http.ResponseWriter, err error) {
	var pe *logql.Error
	var br badRequest
	code := http.StatusServiceUnavailable
	switch {
	case errors.As(err, &pe), errors.As(err, &br), errors.Is(err, logql.ErrLimit):
		code = http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("query timed out after %s (--query-timeout): narrow its range or selector", a.cfg.Timeout)
	default:
		a.log.Warn("loki query", "err", err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(err.Error() + "\n"))
}

// form reads the request's parameters, from the query string and, for a
// POST, a bounded form body.
func form(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return badf("invalid parameters: %v", err)
	}
	return nil
}

// QueryRange answers GET and POST /loki/api/v1/query_range: query, start,
// end (or since), step, limit, direction.
func (a *API) QueryRange(w http.ResponseWriter, r *http.Request) {
	if err := form(w, r); err != nil {
		a.fail(w, err)
		return
	}
	start, end, err := rangeOf(r)
	if err != nil {
		a.fail(w, err)
		return
	}
	p, expr, err := params(r, start, end)
	if err != nil {
		a.fail(w, err)
		return
	}
	if p.Step, err = step(r.Form.Get("step"), start, end); err != nil {
		a.fail(w, err)
		return
	}
	a.answer(w, r, expr, p, false)
}

// Query answers GET and POST /loki/api/v1/query: an instant metric query
// at time (now by default).
func (a *API) Query(w http.ResponseWriter, r *http.Request) {
	if err := form(w, r); err != nil {
		a.fail(w, err)
		return
	}
	at, err := parseTime(r.Form.Get("time"), time.Now())
	if err != nil {
		a.fail(w, badf("invalid time: %v", err))
		return
	}
	p, expr, err := params(r, at.Add(-defaultRange), at)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.answer(w, r, expr, p, true)
}

// params reads the query, limit and direction.
func params(r *http.Request, start, end time.Time) (logql.Params, logql.Expr, error) {
	p := logql.Params{Start: start, End: end}
	q := r.Form.Get("query")
	if q == "" {
		return p, nil, badf("query is required")
	}
	expr, err := logql.Parse(q)
	if err != nil {
		return p, nil, err
	}
	if v := r.Form.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return p, nil, badf("invalid limit %q: want a positive whole number", v)
		}
		p.Limit = n
	}
	switch d := r.Form.Get("direction"); strings.ToLower(d) {
	case "", "backward":
	case "forward":
		p.Forward = true
	default:
		return p, nil, badf("invalid direction %q: want forward or backward", d)
	}
	return p, expr, nil
}

// answer runs expr and writes Loki's answer: streams for a log query, a
// matrix for a range metric query, a vector for an instant one.
func (a *API) answer(w http.ResponseWriter, r *http.Request, expr logql.Expr, p logql.Params, instant bool) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
	defer cancel()
	var b []byte
	if lq, ok := expr.(*logql.LogQuery); ok {
		if instant {
			a.fail(w, badf("log queries are answered by %s; %s takes metric queries, such as count_over_time({...}[5m])", PathQueryRange, PathQuery))
			return
		}
		streams, err := a.engine.Logs(ctx, lq, p)
		if err != nil {
			a.fail(w, err)
			return
		}
		b = appendStreams(b, streams)
	} else {
		switch {
		case instant:
			p.Start, p.Step = p.End, 0
		case a.cfg.AlignWithStep:
			p = p.AlignedToStep()
		}
		series, err := a.engine.Metric(ctx, expr, p)
		if err != nil {
			a.fail(w, err)
			return
		}
		b = appendSeries(b, series, instant)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// appendStreams writes a streams result.
func appendStreams(b []byte, streams []logql.Stream) []byte {
	b = append(b, `{"status":"success","data":{"resultType":"streams","result":`...)
	b = appendStreamList(b, streams)
	return append(b, "}}\n"...)
}

// appendStreamList writes streams as a JSON array of
// {"stream":{labels},"values":[["<ns>","<line>"],...]}.
func appendStreamList(b []byte, streams []logql.Stream) []byte {
	b = append(b, '[')
	for i, s := range streams {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"stream":`...)
		b = appendLabels(b, s.Labels)
		b = append(b, `,"values":[`...)
		for j, e := range s.Entries {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, `["`...)
			b = strconv.AppendInt(b, e.Time.UnixNano(), 10)
			b = append(b, `",`...)
			b = appendString(b, e.Line)
			b = append(b, ']')
		}
		b = append(b, "]}"...)
	}
	return append(b, ']')
}

// appendSeries writes a matrix result, or a vector one (each series'
// single point) for an instant query.
func appendSeries(b []byte, series []logql.Series, instant bool) []byte {
	kind := "matrix"
	if instant {
		kind = "vector"
	}
	b = append(b, `{"status":"success","data":{"resultType":"`+kind+`","result":[`...)
	for i, s := range series {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"metric":`...)
		b = appendLabels(b, s.Labels)
		if instant {
			b = append(b, `,"value":`...)
			b = appendPoint(b, s.Points[len(s.Points)-1])
		} else {
			b = append(b, `,"values":[`...)
			for j, p := range s.Points {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendPoint(b, p)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	return append(b, "]}}\n"...)
}

// appendPoint writes [seconds, "value"], as Prometheus does.
func appendPoint(b []byte, p logql.Point) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, float64(p.T.UnixMilli())/1000, 'f', -1, 64)
	b = append(b, `,"`...)
	switch {
	case math.IsInf(p.V, 1):
		b = append(b, "+Inf"...)
	case math.IsInf(p.V, -1):
		b = append(b, "-Inf"...)
	case math.IsNaN(p.V):
		b = append(b, "NaN"...)
	default:
		b = strconv.AppendFloat(b, p.V, 'f', -1, 64)
	}
	return append(b, `"]`...)
}

// appendLabels writes labels as a JSON object, names in order.
func appendLabels(b []byte, labels map[string]string) []byte {
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	slices.Sort(names)
	b = append(b, '{')
	for i, n := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, n)
		b = append(b, ':')
		b = appendString(b, labels[n])
	}
	return append(b, '}')
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// parseTime reads a time as Loki does: nanoseconds since the epoch (ten
// digits or fewer: seconds), seconds with a fraction, or RFC 3339.
func parseTime(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	if strings.Contains(s, ".") {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			sec, frac := math.Modf(f)
			return time.Unix(int64(sec), int64(frac*1e9)), nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if len(strings.TrimPrefix(s, "-")) <= 10 {
			return time.Unix(n, 0), nil
		}
		return time.Unix(0, n), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want Unix nanoseconds, seconds or RFC 3339", s)
	}
	return t, nil
}

// step reads a range query's step: a duration or seconds; by default,
// the range over 250 points (at least a second), as Loki does.
func step(s string, start, end time.Time) (time.Duration, error) {
	if s == "" {
		return max(end.Sub(start)/250, time.Second).Truncate(time.Second), nil
	}
	d, err := logql.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, badf("invalid step %q: want a positive duration (15s, 1m) or seconds", s)
	}
	return d, nil
}

// rangeOf reads start and end (the last hour by default).
func rangeOf(r *http.Request) (start, end time.Time, err error) {
	end, err = parseTime(r.Form.Get("end"), time.Now())
	if err != nil {
		return start, end, badf("invalid end: %v", err)
	}
	start, err = parseTime(r.Form.Get("start"), end.Add(-defaultRange))
	if err != nil {
		return start, end, badf("invalid start: %v", err)
	}
	if s := r.Form.Get("since"); s != "" && r.Form.Get("start") == "" {
		d, err := logql.ParseDuration(s)
		if err != nil {
			return start, end, badf("invalid since: %v", err)
		}
		start = end.Add(-d)
	}
	return start, end, nil
}

// scanLabels calls fn with the stream labels of the newest entries in
// [start, end] (at most MetadataScan) passing every selector in sels (all
// when there are none), until fn returns false.
func (a *API) scanLabels(ctx context.Context, sels []*logql.LogQuery, start, end time.Time, fn func(map[string]string) bool) error {
	var f storage.Filter
	if len(sels) == 1 {
		f = logql.Pushdown(sels[0])
	}
	f.Since, f.Until = start.UnixMilli(), end.UnixMilli()
	n := 0
	return a.store.Scan(ctx, f, func(rec *storage.Record) bool {
		n++
		if len(sels) == 0 || slices.ContainsFunc(sels, func(q *logql.LogQuery) bool { return logql.Passes(q, &rec.LogEntry) }) {
			if !fn(logql.Labels(&rec.LogEntry)) {
				return false
			}
		}
		return n < a.cfg.MetadataScan
	})
}

// selectors parses the log queries named by key (query, or match[]).
func selectors(r *http.Request, key string) ([]*logql.LogQuery, error) {
	var out []*logql.LogQuery
	for _, q := range r.Form[key] {
		if q == "" || q == "{}" {
			continue
		}
		e, err := logql.Parse(q)
		if err != nil {
			return nil, err
		}
		lq, ok := e.(*logql.LogQuery)
		if !ok {
			return nil, badf("%s must be a stream selector, not a metric query", key)
		}
		out = append(out, lq)
	}
	return out, nil
}

// Labels answers GET /loki/api/v1/labels: the stream label names present
// in the range (of the entries passing query, when given).
func (a *API) Labels(w http.ResponseWriter, r *http.Request) {
	a.metadata(w, r, "query", func(labels map[string]string, seen map[string]bool) {
		for n := range labels {
			seen[n] = true
		}
	})
}

// LabelValues answers GET /loki/api/v1/label/{name}/values.
func (a *API) LabelValues(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	a.metadata(w, r, "query", func(labels map[string]string, seen map[string]bool) {
		if v, ok := labels[name]; ok && v != "" {
			seen[v] = true
		}
	})
}

// metadata answers a labels or label values call: the sorted strings add
// collects from the matching entries' labels.
func (a *API) metadata(w http.ResponseWriter, r *http.Request, key string, add func(labels map[string]string, seen map[string]bool)) {
	seen := map[string]bool{}
	ok := a.eachLabels(w, r, []string{key}, func(labels map[string]string) bool {
		add(labels, seen)
		return len(seen) < maxValues
	})
	if !ok {
		return
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	writeJSON(w, map[string]any{"status": "success", "data": out})
}

// Series answers GET and POST /loki/api/v1/series: the label sets of the
// streams passing any match[] in the range.
func (a *API) Series(w http.ResponseWriter, r *http.Request) {
	seen := map[string]bool{}
	out := []map[string]string{}
	ok := a.eachLabels(w, r, []string{"match[]", "match"}, func(labels map[string]string) bool {
		if k := logql.Key(labels); !seen[k] {
			seen[k] = true
			out = append(out, labels)
		}
		return len(out) < maxValues
	})
	if ok {
		writeJSON(w, map[string]any{"status": "success", "data": out})
	}
}

// eachLabels reads a metadata call's range and selectors (the first of
// keys given) and calls fn with the stream labels of its entries (see
// scanLabels); on a mistake or a failure it answers, and returns false.
func (a *API) eachLabels(w http.ResponseWriter, r *http.Request, keys []string, fn func(map[string]string) bool) bool {
	if err := form(w, r); err != nil {
		a.fail(w, err)
		return false
	}
	start, end, err := rangeOf(r)
	if err != nil {
		a.fail(w, err)
		return false
	}
	var sels []*logql.LogQuery
	for _, k := range keys {
		if sels, err = selectors(r, k); err != nil || len(sels) > 0 {
			break
		}
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
		defer cancel()
		err = a.scanLabels(ctx, sels, start, end, fn)
	}
	if err != nil {
		a.fail(w, err)
		return false
	}
	return true
}

// IndexStats answers GET /loki/api/v1/index/stats (Grafana's estimate of
// what a query reads) with zeros: there are no chunks to count.
func (a *API) IndexStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]int{"streams": 0, "chunks": 0, "bytes": 0, "entries": 0})
}

// Volume answers GET /loki/api/v1/index/volume and volume_range with no
// series: Grafana draws its log volume from count_over_time instead.
func (a *API) Volume(w http.ResponseWriter, r *http.Request) {
	kind := "vector"
	if strings.HasSuffix(r.URL.Path, "_range") {
		kind = "matrix"
	}
	writeJSON(w, map[string]any{"status": "success", "data": map[string]any{"resultType": kind, "result": []any{}}})
}

// DetectedLabels answers GET /loki/api/v1/detected_labels with none, in
// Loki's shape; Grafana then lists labels with /labels.
func (a *API) DetectedLabels(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"detectedLabels": []any{}})
}

// DetectedFields answers GET /loki/api/v1/detected_fields with none.
func (a *API) DetectedFields(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"fields": []any{}, "limit": maxValues})
}

// Patterns answers GET /loki/api/v1/patterns with none.
func (a *API) Patterns(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{"status": "success", "data": []any{}})
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v) // maps of strings and numbers always marshal
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// Package loki is the Loki push source kind: POST /loki/api/v1/push, as
// Promtail, Grafana Alloy, the Docker Loki driver, Fluent Bit's and
// Vector's loki outputs and the Loki appenders of logging libraries send
// it (protobuf compressed as a Snappy block, or JSON, plain or gzip).
//
// A stream's labels name its entries' service (service_name, service,
// app, job or container, the first given) and level (level or
// detected_level, when it names one); the other labels, the entry's
// structured metadata and the tenant (X-Scope-OrgID) are kept as
// attributes. A line that is itself a JSON log goes through the one parser
// every source kind uses, and gives what the labels do not. A request is
// queued whole or refused whole with 429; entries the parser's rules
// refuse are counted and answered with 400 after the others are stored,
// as Loki answers entries it refuses.
package loki

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/snappy"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Path is the push route on the ingest listener.
const Path = "/loki/api/v1/push"

// Defaults for the zero fields of Config.
const (
	// DefaultMaxBodyBytes bounds a request, once decompressed: Promtail
	// and Alloy send batches of 1 MiB by default.
	DefaultMaxBodyBytes = 20 << 20
	// DefaultMaxLabels bounds the labels of a stream (Loki's own default
	// is 15; Kubernetes discovery adds many).
	DefaultMaxLabels = 32
	// DefaultMaxLabelBytes bounds a label's name and its value (Loki's
	// bound on values).
	DefaultMaxLabelBytes = 2048
	DefaultMaxRecords    = 10_000
	DefaultSubmitTimeout = 2 * time.Second
)

// Config describes the push endpoint. A zero field means its default.
type Config struct {
	MaxBodyBytes  int64         // a request, once decompressed (413 past it)
	MaxLabels     int           // labels of a stream: past it its entries are field_too_long
	MaxLabelBytes int           // a label's name or value: past it likewise
	MaxRecords    int           // entries in one request (413 past it)
	SubmitTimeout time.Duration // wait for room in the queue before 429
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxLabels <= 0 {
		c.MaxLabels = DefaultMaxLabels
	}
	if c.MaxLabelBytes <= 0 {
		c.MaxLabelBytes = DefaultMaxLabelBytes
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.SubmitTimeout <= 0 {
		c.SubmitTimeout = DefaultSubmitTimeout
	}
	return c
}

// Push is the Loki push source. Run, Stats and Health make it a pipeline
// source; Mount serves it.
type Push struct {
	cfg  Config
	env  push.Env
	path *push.Path

	bufs     push.Buffers
	requests sync.Pool // *request, with its batch and scratch
}

// New returns the Loki push source.
func New(cfg Config, env push.Env, logger *slog.Logger) *Push {
	return &Push{cfg: cfg.withDefaults(), env: env, path: push.NewPath(env.Sink, Path, "loki", logger.With("component", "loki"))}
}

// Mount adds the push route to mux.
func (l *Push) Mount(mux *http.ServeMux) { mux.HandleFunc("POST "+Path, l.serve) }

// Run takes requests until ctx ends, then refuses new ones and returns
// once those in flight are done.
func (l *Push) Run(ctx context.Context) error { return l.path.Serve(ctx) }

// Stats returns a row per token.
func (l *Push) Stats() []intake.Stats { return l.path.Stats() }

// Health says whether it takes requests.
func (l *Push) Health() intake.Health { return l.path.Health() }

func (l *Push) serve(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	json := false
	switch mt {
	case "application/json":
		json = true
	case "", "application/x-protobuf", "application/protobuf", "application/octet-stream":
		// Loki reads whatever is not JSON as Snappy-compressed protobuf.
	default:
		http.Error(w, fmt.Sprintf("Content-Type %q: send application/x-protobuf (Snappy-compressed) or application/json", mt), http.StatusUnsupportedMediaType)
		return
	}
	token, ok := l.env.Auth.Check(r, push.Basic)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="log-processor loki", Basic realm="log-processor loki"`)
		http.Error(w, "unauthorized: send Authorization: Bearer <ingest token>, or Basic with the token as the password", http.StatusUnauthorized)
		return
	}
	if !l.path.Enter() {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer l.path.Leave()
	slot, err := l.env.Gate.Enter()
	if err != nil {
		l.refuse(w, token, err)
		return
	}
	defer slot.Leave()
	if strings.EqualFold(strings.TrimSpace(r.Header.Get("Content-Encoding")), "snappy") {
		r.Header.Del("Content-Encoding") // the block format every protobuf body has
	}
	body, err := push.ReadBody(r, l.cfg.MaxBodyBytes, slot, l.bufs.Get())
	defer func() { l.bufs.Put(body) }()
	if err != nil {
		l.refuse(w, token, err)
		return
	}
	msg := body
	if !json {
		if msg, err = l.unsnappy(body, slot); err != nil {
			l.refuse(w, token, err)
			return
		}
	}
	req := l.request(token, r, slot)
	defer l.done(req)
	if json {
		err = decodeJSON(msg, &req.sc, req)
	} else {
		err = decodeProto(msg, &req.sc, req)
	}
	if err == nil {
		err = req.in.Submit(r.Context(), &req.batch, l.cfg.SubmitTimeout)
	}
	if err != nil {
		l.refuse(w, token, err)
		return
	}
	l.path.Done(token, false)
	if msg := refused(&req.batch); msg != "" {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// unsnappy decodes a Snappy block within the body bound, reserving its
// size before it is inflated: a bomb is refused by the length it claims.
func (l *Push) unsnappy(body []byte, slot *push.Slot) ([]byte, error) {
	n, err := snappy.DecodedLen(body)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: not a Snappy block: %v", errMalformed, err)
	case int64(n) > l.cfg.MaxBodyBytes:
		return nil, push.ErrTooLarge
	case !slot.Take(int64(n)):
		return nil, push.ErrBusy
	}
	msg, err := snappy.Decode(make([]byte, n), body)
	if err != nil {
		return nil, fmt.Errorf("%w: a corrupt Snappy block: %v", errMalformed, err)
	}
	return msg, nil
}

// refused says which entries the parser's rules refused, or "".
func refused(b *intake.Batch) string {
	n, reasons := b.Refused()
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d entries refused (%s), the other %d stored: see docs/api.md, rejection reasons", n, reasons, len(b.Entries))
}

// refuse answers a request that was not taken, as Loki would.
func (l *Push) refuse(w http.ResponseWriter, token string, err error) {
	switch {
	case errors.Is(err, push.ErrBusy), errors.Is(err, intake.ErrBusy), errors.Is(err, queue.ErrFull):
		l.path.Done(token, true)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "no room for the request now (the queue or the in-flight budget is full); retry", http.StatusTooManyRequests)
	case errors.Is(err, queue.ErrUnconfirmed):
		l.path.Done(token, true)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the entries were not confirmed stored in time (--ack-timeout); retry", http.StatusServiceUnavailable)
	case errors.Is(err, intake.ErrTooMany):
		http.Error(w, fmt.Sprintf("more than %d entries in one request (--ingest-max-records): send smaller batches", l.cfg.MaxRecords), http.StatusRequestEntityTooLarge)
	case errors.Is(err, queue.ErrTooLarge):
		http.Error(w, "more entries than the queue holds at once (--queue-size, --queue-max-bytes): send smaller batches", http.StatusRequestEntityTooLarge)
	case errors.Is(err, push.ErrTooLarge):
		http.Error(w, fmt.Sprintf("body over %d bytes once decompressed (--loki-max-body-bytes)", l.cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
	case errors.Is(err, push.ErrEncoding):
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
	default:
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// request is one push request's state: its intake and batch, the parser
// settings, and the stream being read.
type request struct {
	l      *Push
	in     *intake.Intake
	batch  intake.Batch
	sc     scratch
	p      parser.Parser // the sink's settings, with the token's name as the default service
	ps     parser.Parser // for the stream's JSON lines: its service as the default, and no floor when it names a level
	tenant []byte
	now    time.Time
	cur    stream
	ab     attrs  // reused to build attributes
	kept   []pair // reused: an entry's metadata besides its ids
	one    []byte // reused: a text entry's strings, before their one copy
}

// stream is what a stream's labels say about its entries.
type stream struct {
	service string
	level   parser.Level
	attrs   models.Attrs  // the other labels and the tenant, as a JSON object; "" for none
	refuse  parser.Reason // OK, or why every entry of the stream is refused
}

func (l *Push) request(token string, r *http.Request, slot *push.Slot) *request {
	req, _ := l.requests.Get().(*request)
	if req == nil {
		req = &request{l: l}
	}
	req.in = l.path.Requests(token, r.RemoteAddr)
	req.p = l.env.Sink.Parser()
	req.p.DefaultService = token
	req.batch.MaxEntries, req.batch.Reserve = l.cfg.MaxRecords, slot.Take
	req.tenant = []byte(r.Header.Get("X-Scope-OrgID"))
	req.now = time.Now()
	return req
}

// done lets req go for reuse.
func (l *Push) done(req *request) {
	req.batch.Reset()
	req.in, req.cur, req.tenant = nil, stream{}, nil
	// The pairs point into the request's body: let it go.
	clear(req.sc.labels[:cap(req.sc.labels)])
	clear(req.sc.metadata[:cap(req.sc.metadata)])
	clear(req.kept[:cap(req.kept)])
	if cap(req.batch.Entries) <= 1024 && cap(req.ab.b) <= 64<<10 && cap(req.one) <= 64<<10 && cap(req.sc.labels) <= 256 && cap(req.sc.metadata) <= 256 {
		l.requests.Put(req)
	}
}

// serviceLabels name a stream's service, the first given deciding.
var serviceLabels = [...]string{"service_name", "service", "app", "job", "container"}

// levelLabels name its level, the first that names one deciding.
var levelLabels = [...]string{"level", "detected_level"}

// stream takes a stream's labels.
func (req *request) stream(labels []pair) error {
	cfg := req.l.cfg
	req.cur = stream{}
	if len(labels) > cfg.MaxLabels {
		req.cur.refuse = parser.FieldTooLong
		return nil
	}
	service, level := -1, -1
	for i, p := range labels {
		switch {
		case len(p.name) > cfg.MaxLabelBytes || len(p.value) > cfg.MaxLabelBytes:
			req.cur.refuse = parser.FieldTooLong
		case !utf8.Valid(p.name) || !utf8.Valid(p.value):
			req.cur.refuse = parser.InvalidUTF8
		case hasNUL(p.name) || hasNUL(p.value):
			req.cur.refuse = parser.NulCharacter
		}
		if req.cur.refuse != parser.OK {
			return nil
		}
		if len(p.value) > 0 && (service < 0 || rank(serviceLabels[:], p.name) < rank(serviceLabels[:], labels[service].name)) &&
			rank(serviceLabels[:], p.name) < len(serviceLabels) {
			service = i
		}
		if lv, ok := parser.LevelNamed(string(p.value)); ok && rank(levelLabels[:], p.name) < len(levelLabels) &&
			(level < 0 || rank(levelLabels[:], p.name) < rank(levelLabels[:], labels[level].name)) {
			level, req.cur.level = i, lv
		}
	}
	if service >= 0 {
		req.cur.service = string(labels[service].value)
	}
	// The other labels, and the tenant, as attributes.
	a := req.attrsBuf()
	for i, p := range labels {
		if i != service && i != level {
			a.member(p.name, p.value)
		}
	}
	if len(req.tenant) > 0 {
		a.member([]byte("tenant"), req.tenant)
	}
	req.cur.attrs = a.done()
	req.ps = req.p
	if req.cur.service != "" {
		req.ps.DefaultService = req.cur.service
	}
	if req.cur.level != 0 {
		req.ps.MinLevel = parser.LevelTrace // the label's level decides what is kept
	}
	return nil
}

// rank is name's index in names, or len(names).
func rank(names []string, name []byte) int {
	for i, n := range names {
		if string(name) == n {
			return i
		}
	}
	return len(names)
}

// hasNUL reports whether b holds NUL, which PostgreSQL cannot store.
func hasNUL(b []byte) bool { return bytes.IndexByte(b, 0) >= 0 }

// entry takes one entry of the current stream into the batch.
func (req *request) entry(ns int64, line []byte, metadata []pair) error {
	e, r := req.build(ns, line, metadata)
	return req.in.Add(&req.batch, e, r, req.now)
}

func (req *request) build(ns int64, line []byte, metadata []pair) (models.LogEntry, parser.Reason) {
	cur := &req.cur
	if cur.refuse != parser.OK {
		return models.LogEntry{}, cur.refuse
	}
	ms := ns / 1e6
	var trace, span []byte
	kept := req.kept[:0] // the metadata besides the trace and span ids
	for _, p := range metadata {
		switch {
		case !utf8.Valid(p.name) || !utf8.Valid(p.value):
			return models.LogEntry{}, parser.InvalidUTF8
		case hasNUL(p.name) || hasNUL(p.value):
			return models.LogEntry{}, parser.NulCharacter
		case string(p.name) == "trace_id":
			trace = p.value
		case string(p.name) == "span_id":
			span = p.value
		default:
			kept = append(kept, p)
		}
	}
	req.kept = kept
	// A line that is a JSON log: the parser reads it, the labels win.
	if first := firstByte(line); first == '{' {
		e, r := req.ps.Parse(line, req.now)
		if r == parser.BelowMinLevel {
			return e, r
		}
		if r.IsEntry() {
			if cur.service != "" {
				e.Service = cur.service
			}
			if cur.level != 0 {
				if !req.p.Keeps(cur.level) {
					return models.LogEntry{}, parser.BelowMinLevel
				}
				e.Level, r = cur.level.String(), parser.OK
			}
			e.Timestamp = ms
			if cur.attrs != "" || len(kept) > 0 {
				e.Attrs = req.merge(cur.attrs, kept, e.Attrs)
			}
			setIDs(&e, trace, span)
			if c := req.p.Check(&e, req.now); c != parser.OK {
				return models.LogEntry{}, c
			}
			return e, r
		}
		// JSON that is no log, or a log the parser refuses: the line is
		// kept as text.
	}
	// A text line: its message, merged attributes and ids in one
	// allocation.
	l := parser.Line{Time: ms, Level: cur.level, Service: cur.service, Attrs: cur.attrs}
	one := req.one[:0]
	if len(kept) > 0 {
		a := req.attrsBuf()
		a.members(cur.attrs)
		for _, p := range kept {
			a.member(p.name, p.value)
		}
		one = a.close(one)
	}
	na := len(one)
	one = append(append(append(one, line...), trace...), span...)
	req.one = one
	all := string(one)
	if len(kept) > 0 {
		l.Attrs = models.Attrs(all[:na])
	}
	l.Message, all = all[na:na+len(line)], all[na+len(line):]
	l.TraceID, l.SpanID = all[:len(trace)], all[len(trace):]
	return req.p.Text(l, req.now)
}

func setIDs(e *models.LogEntry, trace, span []byte) {
	if trace != nil && e.TraceID == "" {
		e.TraceID = string(trace)
	}
	if span != nil && e.SpanID == "" {
		e.SpanID = string(span)
	}
}

func firstByte(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c
		}
	}
	return 0
}

// merge makes one attributes object of the stream's, the entry's
// structured metadata and the line's own.
func (req *request) merge(stream models.Attrs, metadata []pair, line models.Attrs) models.Attrs {
	a := req.attrsBuf()
	a.members(stream)
	for _, p := range metadata {
		a.member(p.name, p.value)
	}
	a.members(line)
	return a.done()
}

// attrsBuf returns the request's attributes builder, empty.
func (req *request) attrsBuf() *attrs {
	limit := req.p.MaxAttrsBytes
	if limit <= 0 {
		limit = parser.DefaultMaxAttrsBytes
	}
	req.ab = attrs{b: append(req.ab.b[:0], '{'), limit: limit}
	return &req.ab
}

// attrs builds an attributes object within a bound, as the parser does:
// members that do not fit are left out and the object is marked
// "_truncated": true.
type attrs struct {
	b     []byte
	limit int
	full  bool
}

// member adds "name":"value"; both are valid UTF-8.
func (a *attrs) member(name, value []byte) {
	if a.full {
		return
	}
	n := len(a.b)
	if n > 1 {
		a.b = append(a.b, ',')
	}
	a.b = parser.AppendString(a.b, name)
	a.b = append(a.b, ':')
	a.b = parser.AppendString(a.b, value)
	if len(a.b) > a.limit {
		a.b, a.full = a.b[:n], true
	}
}

// members adds the members of the object o, whole or not at all.
func (a *attrs) members(o models.Attrs) {
	m := ""
	if len(o) >= 2 {
		m = strings.TrimSpace(string(o[1 : len(o)-1]))
	}
	if m == "" || a.full {
		return
	}
	if len(a.b)+1+len(m) > a.limit {
		a.full = true
		return
	}
	if len(a.b) > 1 {
		a.b = append(a.b, ',')
	}
	a.b = append(a.b, m...)
}

// close appends the object, closed, to dst; nothing when it holds
// nothing.
func (a *attrs) close(dst []byte) []byte {
	if a.full {
		if len(a.b) > 1 {
			a.b = append(a.b, ',')
		}
		a.b = append(a.b, `"_truncated":true`...)
	}
	if len(a.b) == 1 {
		return dst
	}
	return append(append(dst, a.b...), '}')
}

// done closes the object and returns it, or "" when it holds nothing.
func (a *attrs) done() models.Attrs {
	return models.Attrs(a.close(nil))
}

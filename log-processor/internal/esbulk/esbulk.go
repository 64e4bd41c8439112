// Package esbulk is the Elasticsearch push source kind: the _bulk API, as
// Filebeat, Logstash, Fluent Bit's es output, Vector's elasticsearch sink
// and the Elasticsearch clients send it, and the few calls those make
// before they send (the version document, the license, templates and
// policies), answered as an Elasticsearch 8 cluster would, as no-ops.
//
// Each document goes through the one parser every source kind uses
// (Filebeat's ECS documents, and any JSON log); a document with no service
// takes its index's name. A request is queued whole or refused whole with
// 429; a document the parser refuses is a per-item 400 that does not fail
// the others (shippers send it to their own dead-letter queue rather than
// retry it).
package esbulk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
)

// Defaults for the zero fields of Config.
const (
	// DefaultMaxBodyBytes bounds a request, once decompressed: room for
	// Vector's 10 MB batches and Filebeat's and Logstash's smaller ones.
	DefaultMaxBodyBytes  = 20 << 20
	DefaultMaxRecords    = 10_000
	DefaultSubmitTimeout = 2 * time.Second
)

// Path is the bulk route (also /{index}/_bulk, and PUT).
const Path = "/_bulk"

// Version is the Elasticsearch version the processor says it is: an 8.x,
// which the current shippers and clients accept.
const Version = "8.19.0"

// Config describes the _bulk endpoint. A zero field means its default.
type Config struct {
	MaxBodyBytes  int64         // a request, once decompressed (413 past it)
	MaxRecords    int           // documents in one request (413 past it)
	SubmitTimeout time.Duration // wait for room in the queue before 429
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.SubmitTimeout <= 0 {
		c.SubmitTimeout = DefaultSubmitTimeout
	}
	return c
}

// Bulk is the _bulk source. Run, Stats and Health make it a pipeline
// source; Mount serves it and the start-up calls.
type Bulk struct {
	cfg  Config
	env  push.Env
	path *push.Path
	log  *slog.Logger
	seq  atomic.Int64 // _seq_no of the documents taken
	ids  *ids

	bufs   push.Buffers
	states sync.Pool // *state
}

// New returns the _bulk source.
func New(cfg Config, env push.Env, logger *slog.Logger) *Bulk {
	log := logger.With("component", "esbulk")
	return &Bulk{cfg: cfg.withDefaults(), env: env, path: push.NewPath(env.Sink, Path, "es", log), log: log, ids: newIDs()}
}

// Run takes requests until ctx ends, then refuses new ones and returns
// once those in flight are done.
func (b *Bulk) Run(ctx context.Context) error { return b.path.Serve(ctx) }

// Stats returns a row per token.
func (b *Bulk) Stats() []intake.Stats { return b.path.Stats() }

// Health says whether it takes requests.
func (b *Bulk) Health() intake.Health { return b.path.Health() }

// auth is how Elasticsearch clients carry a token: Bearer, ApiKey
// base64(id:token), or Basic with the token as the password.
const auth = push.Basic | push.APIKey

// Mount adds the _bulk routes and the start-up calls to mux. The bulk
// route is /{index}/{op} with op checked here, so that the start-up
// calls' literal routes (PUT /_index_template/{name}, ...) are more
// specific than it rather than in conflict with it.
func (b *Bulk) Mount(mux *http.ServeMux) {
	for _, m := range []string{"POST", "PUT"} {
		mux.HandleFunc(m+" /_bulk", b.product(b.serveBulk))
		mux.HandleFunc(m+" /{index}/{op}", b.product(func(w http.ResponseWriter, r *http.Request, token string) {
			if r.PathValue("op") != "_bulk" {
				noHandler(w, r)
				return
			}
			b.serveBulk(w, r, token)
		}))
	}
	mux.HandleFunc(Path, b.product(func(w http.ResponseWriter, r *http.Request, _ string) {
		w.Header().Set("Allow", "POST, PUT")
		writeError(w, http.StatusMethodNotAllowed, "illegal_argument_exception",
			"Incorrect HTTP method for uri ["+r.URL.Path+"] and method ["+r.Method+"], allowed: [POST, PUT]")
	}))
	for _, s := range shims {
		mux.HandleFunc(s.pattern, b.product(s.serve))
	}
}

// product marks every answer as Elasticsearch's, as the official clients
// check before they send anything, and asks for a token where tokens are
// set.
func (b *Bulk) product(h func(w http.ResponseWriter, r *http.Request, token string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		token, ok := b.env.Auth.Check(r, auth)
		if !ok {
			w.Header().Set("WWW-Authenticate", `ApiKey, Basic realm="log-processor", Bearer`)
			writeError(w, http.StatusUnauthorized, "security_exception",
				"missing or wrong credentials: send Authorization: Bearer <ingest token>, ApiKey base64(id:<ingest token>) or Basic with the token as the password")
			return
		}
		h(w, r, token)
	}
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers an Elasticsearch error document.
func writeError(w http.ResponseWriter, code int, typ, reason string) {
	cause := map[string]string{"type": typ, "reason": reason}
	writeJSON(w, code, map[string]any{"error": map[string]any{"root_cause": []any{cause}, "type": typ, "reason": reason}, "status": code})
}

// action is a bulk action line's verb and metadata.
type action struct {
	verb  string // index, create, delete, update
	index string
	id    string
}

// errMalformed: an action line that is not one.
var errMalformed = errors.New("malformed action/metadata line")

// parseAction reads an action line, {"index":{"_index":"x","_id":"y"}},
// without allocating but for a new index name or an id; prev is the
// previous action, whose index name is reused when it is the same.
func parseAction(line []byte, prev *action) (action, error) {
	var a action
	n := 0
	var err error
	r := parser.Members(line, func(verb, meta []byte) bool {
		n++
		switch string(verb) { // constant strings: no copy of the line's bytes
		case "index":
			a.verb = "index"
		case "create":
			a.verb = "create"
		case "delete":
			a.verb = "delete"
		case "update":
			a.verb = "update"
		default:
			err = fmt.Errorf("%w: unknown action [%s]", errMalformed, verb)
			return false
		}
		if parser.Members(meta, func(key, v []byte) bool {
			switch string(key) {
			case "_index":
				if text, ok := parser.StringOf(v); ok {
					if string(text) == prev.index {
						a.index = prev.index
					} else {
						a.index = string(text)
					}
				}
			case "_id":
				if text, ok := parser.StringOf(v); ok {
					a.id = string(text)
				}
			}
			return true
		}) != parser.OK {
			err = fmt.Errorf("%w: the metadata of [%s] is no object", errMalformed, verb)
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return action{}, err
	case r != parser.OK:
		return action{}, errMalformed
	case n != 1:
		return action{}, fmt.Errorf("%w: expected one of index, create, delete or update", errMalformed)
	}
	return a, nil
}

// item is one document's answer, in request order.
type item struct {
	action
	status int
	result string // created, noop
	errTyp string
	reason string
	seq    int64
}

// maxPooledEntries bounds the batches kept for reuse.
const maxPooledEntries = 1024

func (b *Bulk) serveBulk(w http.ResponseWriter, r *http.Request, token string) {
	start := time.Now()
	if !b.path.Enter() {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "node_closed_exception", "shutting down")
		return
	}
	defer b.path.Leave()
	slot, err := b.env.Gate.Enter()
	if err != nil {
		b.refuse(w, token, err)
		return
	}
	defer slot.Leave()
	body, err := push.ReadBody(r, b.cfg.MaxBodyBytes, slot, b.bufs.Get())
	defer func() { b.bufs.Put(body) }()
	if err != nil {
		b.refuse(w, token, err)
		return
	}
	in := b.path.Requests(token, r.RemoteAddr)
	st, _ := b.states.Get().(*state)
	if st == nil {
		st = new(state)
	}
	defer b.putState(st)
	st.batch.MaxEntries, st.batch.Reserve = b.cfg.MaxRecords, slot.Take
	show := filterPath(r.URL.Query().Get("filter_path"))
	items, err := b.parse(in, &st.batch, st.items[:0], body, token, r.PathValue("index"), show&showID != 0, time.Now())
	st.items = items
	if err != nil {
		b.refuse(w, token, err)
		return
	}
	if err := in.Submit(r.Context(), &st.batch, b.cfg.SubmitTimeout); err != nil {
		b.refuse(w, token, err)
		return
	}
	b.path.Done(token, false)
	b.answer(w, items, time.Since(start), show)
}

// state is what a request reuses: its batch and its items.
type state struct {
	batch intake.Batch
	items []item
}

// putState keeps st for another request, unless it grew large.
func (b *Bulk) putState(st *state) {
	st.batch.Reset()
	clear(st.items)
	if cap(st.batch.Entries) <= maxPooledEntries && cap(st.items) <= maxPooledEntries {
		b.states.Put(st)
	}
}

// parse reads the action and document lines of body into batch and
// appends each action's item to items. defIndex is the URL's index; ids
// says whether the answer shows the ids made for documents given none.
func (b *Bulk) parse(in *intake.Intake, batch *intake.Batch, items []item, body []byte, token, defIndex string, ids bool, now time.Time) ([]item, error) {
	var pending *action // an action whose document line comes next
	var prev action
	var prevLine []byte // the previous action line, read as prev
	line := 0
	for l := range intake.Lines(body) {
		line++
		if pending == nil {
			// Shippers repeat one action line for every document: the
			// same bytes mean the same action, read once.
			a := prev
			if prevLine == nil || !bytes.Equal(l, prevLine) {
				var err error
				if a, err = parseAction(l, &prev); err != nil {
					return items, fmt.Errorf("%w [%d]", err, line)
				}
				if a.index == "" {
					a.index = defIndex
				}
			}
			prev, prevLine = a, l
			if a.verb == "delete" { // no document line
				items = append(items, item{action: a, status: http.StatusBadRequest, errTyp: "action_request_validation_exception",
					reason: "delete is not supported: this is a log pipeline, it stores and never deletes"})
				continue
			}
			pending = &a
			continue
		}
		a := *pending
		pending = nil
		if a.verb == "update" {
			items = append(items, item{action: a, status: http.StatusBadRequest, errTyp: "action_request_validation_exception",
				reason: "update is not supported: send the document with index or create"})
			continue
		}
		// A document's own _id is its identity: sent again (a retried
		// request), it is stored once. An id made here is not.
		if a.id != "" {
			batch.SetKey(token + "\x00" + a.index + "\x00" + a.id)
		} else {
			batch.SetKey("")
		}
		if a.id == "" && ids {
			a.id = b.ids.next()
		}
		r, err := in.ParseAs(batch, l, a.index, now) // no index: the token's name
		if err != nil {
			return items, err
		}
		it := item{action: a}
		switch {
		case r.IsEntry():
			it.status, it.result, it.seq = http.StatusCreated, "created", b.seq.Add(1)
		case r.IsError():
			it.status, it.errTyp, it.reason = http.StatusBadRequest, "document_parsing_exception", r.String()+": "+reasonText(r)
		default: // a control document or one below --min-level: taken, not kept
			it.status, it.result = http.StatusOK, "noop"
		}
		items = append(items, it)
	}
	if pending != nil {
		return items, fmt.Errorf("%w [%d]: the last action has no document", errMalformed, line)
	}
	return items, nil
}

// reasonText explains a rejection reason.
func reasonText(r parser.Reason) string {
	switch r {
	case parser.InvalidLevel:
		return "a level that is no known level name or number"
	case parser.InvalidTimestamp, parser.TimestampOutOfRange:
		return "a time that is no time, or more than the allowed skew from now"
	case parser.MissingMessage:
		return "no message under any of its names"
	case parser.FieldTooLong:
		return "a field longer than its bound"
	}
	return "the document is no log entry the processor can store"
}

// shown are the members of a bulk response a request's filter_path asks
// for.
type shown uint8

const (
	showTook shown = 1 << iota
	showErrors
	showIndex  // items.*._index
	showID     // items.*._id
	showStatus // items.*.status
	showError  // items.*.error
	showResult // items.*.result and the rest of a success: _version, _shards, _seq_no, _primary_term
	showAll    = showTook | showErrors | showIndex | showID | showStatus | showError | showResult
)

// filterPath reads the filter_path shippers send to keep the response
// small (Filebeat's and Logstash's errors,items.*.error,items.*.status):
// top-level members and item fields by name. Any pattern it does not know
// shows everything, which is always a superset of what was asked.
func filterPath(q string) shown {
	if q == "" {
		return showAll
	}
	var s shown
	for p := range strings.SplitSeq(q, ",") {
		switch strings.TrimSpace(p) {
		case "took":
			s |= showTook
		case "errors":
			s |= showErrors
		case "items", "items.*", "items.*.*", "items.**":
			s |= showIndex | showID | showStatus | showError | showResult
		case "items.*._index":
			s |= showIndex
		case "items.*._id":
			s |= showID
		case "items.*.status":
			s |= showStatus
		case "items.*.error", "items.*.error.*", "items.*.error.type", "items.*.error.reason":
			s |= showError
		case "items.*.result", "items.*._version", "items.*._seq_no", "items.*._shards", "items.*._primary_term":
			s |= showResult
		default:
			return showAll
		}
	}
	return s
}

// answer writes the bulk response: every item, in order, with the members
// show asks for.
func (b *Bulk) answer(w http.ResponseWriter, items []item, took time.Duration, show shown) {
	errorsSeen := false
	for _, it := range items {
		if it.status >= 300 {
			errorsSeen = true
		}
	}
	out := make([]byte, 0, 64+192*len(items))
	out = append(out, '{')
	comma := func() {
		if out[len(out)-1] != '{' {
			out = append(out, ',')
		}
	}
	if show&showTook != 0 {
		out = append(out, `"took":`...)
		out = strconv.AppendInt(out, took.Milliseconds(), 10)
	}
	if show&showErrors != 0 {
		comma()
		out = strconv.AppendBool(append(out, `"errors":`...), errorsSeen)
	}
	if show&(showIndex|showID|showStatus|showError|showResult) != 0 {
		comma()
		out = append(out, `"items":[`...)
		for i, it := range items {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"`...)
			out = append(out, it.verb...)
			out = append(out, `":{`...)
			if show&showIndex != 0 {
				out = parser.AppendString(append(out, `"_index":`...), it.index)
			}
			if show&showID != 0 {
				comma()
				out = parser.AppendString(append(out, `"_id":`...), it.id)
			}
			if show&showStatus != 0 {
				comma()
				out = strconv.AppendInt(append(out, `"status":`...), int64(it.status), 10)
			}
			switch {
			case it.errTyp != "" && show&showError != 0:
				comma()
				out = append(out, `"error":{"type":"`...)
				out = append(out, it.errTyp...)
				out = parser.AppendString(append(out, `","reason":`...), it.reason)
				out = append(out, '}')
			case it.errTyp == "" && show&showResult != 0:
				comma()
				out = append(out, `"_version":1,"result":"`...)
				out = append(out, it.result...)
				out = append(out, `","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":`...)
				out = strconv.AppendInt(out, it.seq, 10)
				out = append(out, `,"_primary_term":1`...)
			}
			out = append(out, "}}"...)
		}
		out = append(out, ']')
	}
	out = append(out, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out)
}

// refuse answers a request that was not taken, as Elasticsearch would.
func (b *Bulk) refuse(w http.ResponseWriter, token string, err error) {
	switch {
	case errors.Is(err, push.ErrBusy), errors.Is(err, intake.ErrBusy), errors.Is(err, queue.ErrFull):
		b.path.Done(token, true)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "es_rejected_execution_exception",
			"no room for the request now (the queue or the in-flight budget is full); retry")
	case errors.Is(err, queue.ErrUnconfirmed):
		b.path.Done(token, true)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "es_rejected_execution_exception",
			"the documents were not confirmed stored in time (--ack-timeout); retry")
	case errors.Is(err, intake.ErrTooMany):
		writeError(w, http.StatusRequestEntityTooLarge, "illegal_argument_exception",
			fmt.Sprintf("more than %d documents in one request (--ingest-max-records): send smaller batches", b.cfg.MaxRecords))
	case errors.Is(err, queue.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "illegal_argument_exception", "more documents than the queue holds at once: send smaller batches")
	case errors.Is(err, push.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "content_too_long_exception",
			fmt.Sprintf("body over %d bytes once decompressed (--es-max-body-bytes)", b.cfg.MaxBodyBytes))
	case errors.Is(err, push.ErrEncoding):
		writeError(w, http.StatusUnsupportedMediaType, "illegal_argument_exception", err.Error())
	default:
		writeError(w, http.StatusBadRequest, "illegal_argument_exception", err.Error())
	}
}

// ids makes document ids as Elasticsearch's look: 20 characters of
// URL-safe base64, from a random prefix drawn once and a counter, so that
// a document costs no call for randomness.
type ids struct {
	prefix [7]byte
	n      atomic.Uint64
}

func newIDs() *ids {
	g := new(ids)
	_, _ = rand.Read(g.prefix[:])
	g.n.Store(uint64(time.Now().UnixMicro()))
	return g
}

func (g *ids) next() string {
	var raw [15]byte
	copy(raw[:], g.prefix[:])
	binary.BigEndian.PutUint64(raw[7:], g.n.Add(1))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
)

// HTTP is the POST /ingest source: each request's lines are parsed into a
// batch and queued whole, or refused whole. Run, Stats and Health make it
// a pipeline source; Mount serves it.
type HTTP struct {
	cfg  Config
	env  Env
	path *push.Path
	log  *slog.Logger

	bufs    push.Buffers
	batches sync.Pool // *intake.Batch
}

// NewHTTP returns the POST /ingest source.
func NewHTTP(cfg Config, env Env, logger *slog.Logger) *HTTP {
	log := logger.With("component", "ingest")
	return &HTTP{cfg: cfg.withDefaults(), env: env, path: push.NewPath(env.Sink, PathHTTP, "http", log), log: log}
}

// Mount adds the source's route to mux.
func (h *HTTP) Mount(mux *http.ServeMux) { mux.HandleFunc("POST "+PathHTTP, h.serve) }

// Run takes requests until ctx ends, then refuses new ones and returns
// once those in flight are done: after it, nothing is submitted.
func (h *HTTP) Run(ctx context.Context) error { return h.path.Serve(ctx) }

// Stats returns a row per token.
func (h *HTTP) Stats() []intake.Stats { return h.path.Stats() }

// Health says whether it takes requests.
func (h *HTTP) Health() intake.Health { return h.path.Health() }

// Result is the answer to POST /ingest: every line is in one of its
// counts.
type Result struct {
	Accepted int               `json:"accepted"`           // entries queued for storage
	Rejected map[string]uint64 `json:"rejected,omitempty"` // lines refused, by reason
	Ignored  int               `json:"ignored,omitempty"`  // control lines: neither a level nor a message
	// BelowMinLevel counts valid lines below --min-level, not stored.
	BelowMinLevel int `json:"below_min_level,omitempty"`
	// DefaultLevel counts the accepted entries that named no level and
	// were given --default-level.
	DefaultLevel int `json:"default_level,omitempty"`
}

// maxPooledEntries bounds the batches kept for reuse: one that held more
// entries goes back to the garbage collector.
const maxPooledEntries = 1024

func (h *HTTP) serve(w http.ResponseWriter, r *http.Request) {
	token, ok := h.env.Auth.Check(r, push.Basic)
	if !ok {
		push.Unauthorized(w, "log-processor ingest", "push with Authorization: Bearer <ingest token>")
		return
	}
	if !h.path.Enter() {
		push.Busy(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer h.path.Leave()
	slot, err := h.env.Gate.Enter()
	if err != nil {
		h.path.Done(token, true)
		push.Busy(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer slot.Leave()
	body, err := push.ReadBody(r, h.cfg.MaxBodyBytes, slot, h.bufs.Get())
	defer func() { h.bufs.Put(body) }()
	if err != nil {
		h.refuse(w, token, err)
		return
	}
	now := time.Now()
	in := h.path.Requests(token, r.RemoteAddr)
	b, _ := h.batches.Get().(*intake.Batch)
	if b == nil {
		b = new(intake.Batch)
	}
	defer func() {
		b.Reset()
		if cap(b.Entries) <= maxPooledEntries {
			h.batches.Put(b)
		}
	}()
	b.MaxEntries, b.Reserve = h.cfg.MaxRecords, slot.Take
	if key, err := idempotencyKey(r.Header.Get("Idempotency-Key")); err != nil {
		h.refuse(w, token, err)
		return
	} else if key != "" {
		b.SetKey(token + "\x00" + key) // one token's keys never meet another's
	}
	if err := ParseBody(in, b, body, now); err != nil {
		h.refuse(w, token, err)
		return
	}
	if err := in.Submit(r.Context(), b, h.cfg.SubmitTimeout); err != nil {
		h.refuse(w, token, err)
		return
	}
	h.path.Done(token, false)
	res := Result{Accepted: len(b.Entries), Ignored: int(b.Outcomes[parser.Control]),
		BelowMinLevel: int(b.Outcomes[parser.BelowMinLevel]), DefaultLevel: int(b.Outcomes[parser.DefaultLevel])}
	for reason, n := range b.Outcomes {
		if r := parser.Reason(reason); n > 0 && r.IsError() {
			if res.Rejected == nil {
				res.Rejected = map[string]uint64{}
			}
			res.Rejected[r.String()] = n
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// maxIdempotencyKey bounds an Idempotency-Key's length.
const maxIdempotencyKey = 255

// errBadKey: an Idempotency-Key that is no key.
var errBadKey = errors.New("Idempotency-Key: want 1-255 visible ASCII characters, optionally in double quotes")

// idempotencyKey reads an Idempotency-Key header (the IETF draft's, a
// structured-field string, "..."; bare tokens as Stripe's clients send
// are taken too): the key, "" when there is none, or errBadKey.
func idempotencyKey(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || len(v) > maxIdempotencyKey {
		return "", errBadKey
	}
	for i := range len(v) {
		if v[i] < 0x21 || v[i] > 0x7e {
			return "", errBadKey
		}
	}
	return v, nil
}

// errNotArray: a body that starts with [ is not a JSON array.
var errNotArray = errors.New("body starts with [ but is not a JSON array")

// ParseBody parses each non-blank line of body, or each element when body
// is a JSON array, into b: nil, or intake.ErrTooMany, intake.ErrBusy, or
// errNotArray.
func ParseBody(in *intake.Intake, b *intake.Batch, body []byte, now time.Time) error {
	var err error
	if first := firstByte(body); first == '[' {
		r := parser.Elements(body, func(el []byte) bool {
			_, err = in.Parse(b, el, now)
			return err == nil
		})
		if err == nil && r != parser.OK {
			err = fmt.Errorf("%w (%s)", errNotArray, r)
		}
		return err
	}
	for line := range intake.Lines(body) {
		if _, err = in.Parse(b, line, now); err != nil {
			return err
		}
	}
	return nil
}

func firstByte(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c
		}
	}
	return 0
}

// refuse answers a request that was not taken, with the status its cause
// calls for; a retryable refusal (503) is counted as the token's refused
// request.
func (h *HTTP) refuse(w http.ResponseWriter, token string, err error) {
	switch {
	case errors.Is(err, push.ErrBusy), errors.Is(err, intake.ErrBusy):
		h.path.Done(token, true)
		push.Busy(w, http.StatusServiceUnavailable, push.ErrBusy.Error())
	case errors.Is(err, queue.ErrFull):
		h.path.Done(token, true)
		push.Busy(w, http.StatusServiceUnavailable, "queue full: none of the request's entries was taken; retry")
	case errors.Is(err, queue.ErrUnconfirmed):
		h.path.Done(token, true)
		push.Busy(w, http.StatusServiceUnavailable, "the entries were not confirmed stored in time (--ack-timeout); retry")
	case errors.Is(err, queue.ErrTooLarge):
		http.Error(w, "more entries than the queue holds at once (--queue-size, --queue-max-bytes): send smaller batches", http.StatusRequestEntityTooLarge)
	case errors.Is(err, intake.ErrTooMany):
		http.Error(w, fmt.Sprintf("more than %d lines in one request (--ingest-max-records): send smaller batches", h.cfg.MaxRecords), http.StatusRequestEntityTooLarge)
	case errors.Is(err, push.ErrTooLarge):
		http.Error(w, fmt.Sprintf("body over %d bytes once decoded (--ingest-max-body-bytes): send smaller batches", h.cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
	case errors.Is(err, push.ErrEncoding):
		http.Error(w, err.Error(), http.StatusUnsupportedMediaType)
	default:
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

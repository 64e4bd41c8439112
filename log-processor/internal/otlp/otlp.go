// Package otlp is the OpenTelemetry push source kind: logs exported over
// OTLP/HTTP (POST /v1/logs, binary protobuf or JSON) and OTLP/gRPC
// (opentelemetry.proto.collector.logs.v1.LogsService/Export), as every
// OpenTelemetry SDK, the Collector, Fluent Bit, Vector and Alloy send them.
//
// A request's records become OTLP/JSON records (a protobuf request is
// walked in place, without decoding it into structures) and go through the
// one parser every source kind uses, so an OpenTelemetry record maps to an
// entry the same way whichever path it came by (docs/sources.md has the
// table). A request is queued whole or refused whole: records the parser
// refuses are answered as a partial success (not to be retried), a full
// queue with a retryable status (503 or gRPC Unavailable, with a delay), so
// a retry neither loses nor doubles records.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"sync"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
)

// Defaults for the zero fields of Config.
const (
	// DefaultMaxBodyBytes bounds a request, once decompressed: the OTLP
	// specification's recommended 20 MiB.
	DefaultMaxBodyBytes = 20 << 20
	// DefaultMaxRecords bounds the records of one request.
	DefaultMaxRecords = 10_000
	// DefaultSubmitTimeout is how long a request waits for room in the
	// queue before it is refused, retryably.
	DefaultSubmitTimeout = 2 * time.Second
	// DefaultGRPCMaxMessageBytes bounds a gRPC request (gRPC's own default).
	DefaultGRPCMaxMessageBytes = 4 << 20
	// DefaultGRPCMaxStreams bounds the gRPC calls in flight on one
	// connection.
	DefaultGRPCMaxStreams = 64
)

// Path is where OTLP/HTTP clients send logs: they append it to the
// endpoint they are given.
const Path = "/v1/logs"

// Content types of OTLP/HTTP.
const (
	ctProtobuf = "application/x-protobuf"
	ctJSON     = "application/json"
)

// Config describes the OTLP endpoints. A zero field means its default.
type Config struct {
	MaxBodyBytes        int64         // a request, once decompressed (413 past it)
	MaxRecords          int           // records in one request (413, or InvalidArgument, past it)
	SubmitTimeout       time.Duration // wait for room in the queue before a retryable refusal
	GRPCMaxMessageBytes int           // a gRPC request message
	GRPCMaxStreams      uint32        // gRPC calls at once on one connection
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
	if c.GRPCMaxMessageBytes <= 0 {
		c.GRPCMaxMessageBytes = DefaultGRPCMaxMessageBytes
	}
	if c.GRPCMaxStreams == 0 {
		c.GRPCMaxStreams = DefaultGRPCMaxStreams
	}
	return c
}

// exporter is what OTLP/HTTP and OTLP/gRPC share: the per-token
// accounting of one path, and turning a request into a submitted batch.
type exporter struct {
	cfg  Config
	env  push.Env
	path *push.Path

	bufs    push.Buffers
	frames  sync.Pool // *[]byte: a record's OTLP/JSON, rebuilt per record
	batches sync.Pool // *intake.Batch
}

func newExporter(cfg Config, env push.Env, path, proto string, logger *slog.Logger) *exporter {
	return &exporter{cfg: cfg.withDefaults(), env: env, path: push.NewPath(env.Sink, path, proto, logger)}
}

// outcome is what became of an export request's records.
type outcome struct {
	rejected uint64 // refused by the parser: a partial success
	reasons  string // "invalid_level 2, field_too_long 1"
}

// errBadRequest wraps what makes a request permanently bad (400, or gRPC
// InvalidArgument).
var errBadRequest = errors.New("bad request")

// export parses msg (protobuf, or OTLP/JSON when json is set) as token's,
// holding what it keeps within slot, and submits its entries whole. It
// returns queue.ErrFull, queue.ErrUnconfirmed or push.ErrBusy (retryable),
// intake.ErrTooMany or queue.ErrTooLarge (too large), errBadRequest, or
// nil with the outcome.
func (x *exporter) export(ctx context.Context, msg []byte, json bool, token, remote string, slot *push.Slot) (outcome, error) {
	now := time.Now()
	in := x.path.Requests(token, remote)
	b, _ := x.batches.Get().(*intake.Batch)
	if b == nil {
		b = new(intake.Batch)
	}
	defer func() {
		b.Reset()
		if cap(b.Entries) <= 1024 {
			x.batches.Put(b)
		}
	}()
	b.MaxEntries, b.Reserve = x.cfg.MaxRecords, slot.Take
	var err error
	if json {
		var r parser.Reason
		r, err = in.ParseExport(b, msg, now)
		switch {
		case err != nil:
		case r == parser.InvalidJSON || r == parser.NotObject || r == parser.InvalidUTF8 || r == parser.TooDeep:
			return outcome{}, fmt.Errorf("%w: not an OTLP/JSON export: %s", errBadRequest, r)
		case r != parser.Multi:
			return outcome{}, nil // a JSON object with no records: an empty export
		}
	} else {
		fp, _ := x.frames.Get().(*[]byte)
		if fp == nil {
			fp = new([]byte)
		}
		*fp, err = Records(msg, (*fp)[:0], func(frame []byte) bool {
			_, err = in.Parse(b, frame, now)
			return err == nil
		})
		if cap(*fp) <= 64<<10 {
			x.frames.Put(fp)
		}
		if errors.Is(err, errMalformed) {
			return outcome{}, fmt.Errorf("%w: %v", errBadRequest, err)
		}
	}
	if err != nil {
		return outcome{}, err
	}
	if err := in.Submit(ctx, b, x.cfg.SubmitTimeout); err != nil {
		return outcome{}, err
	}
	var o outcome
	if n, reasons := b.Refused(); n > 0 {
		o.rejected = n
		o.reasons = fmt.Sprintf("%d log records refused (%s): see docs/api.md, rejection reasons", n, reasons)
	}
	return o, nil
}

// response is the ExportLogsServiceResponse for o.
func (o outcome) response() *collogspb.ExportLogsServiceResponse {
	if o.rejected == 0 {
		return &collogspb.ExportLogsServiceResponse{}
	}
	return &collogspb.ExportLogsServiceResponse{PartialSuccess: &collogspb.ExportLogsPartialSuccess{
		RejectedLogRecords: int64(o.rejected), ErrorMessage: o.reasons}}
}

// HTTP is the OTLP/HTTP source (POST /v1/logs on the ingest listener).
// Run, Stats and Health make it a pipeline source; Mount serves it.
type HTTP struct {
	*exporter
	log *slog.Logger
}

// NewHTTP returns the OTLP/HTTP source.
func NewHTTP(cfg Config, env push.Env, logger *slog.Logger) *HTTP {
	log := logger.With("component", "otlp")
	return &HTTP{exporter: newExporter(cfg, env, Path, "otlp", log), log: log}
}

// Mount adds the source's route to mux.
func (h *HTTP) Mount(mux *http.ServeMux) { mux.HandleFunc("POST "+Path, h.serve) }

// Run takes requests until ctx ends, then refuses new ones and returns
// once those in flight are done.
func (h *HTTP) Run(ctx context.Context) error { return h.path.Serve(ctx) }

// Stats returns a row per token.
func (h *HTTP) Stats() []intake.Stats { return h.path.Stats() }

// Health says whether it takes requests.
func (h *HTTP) Health() intake.Health { return h.path.Health() }

func (h *HTTP) serve(w http.ResponseWriter, r *http.Request) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var json bool
	switch mt {
	case ctProtobuf, "application/protobuf":
	case ctJSON:
		json = true
	default:
		// The answer is in protobuf, OTLP's default: the client said
		// nothing we can read.
		writeStatus(w, false, http.StatusUnsupportedMediaType,
			fmt.Sprintf("Content-Type %q: send %s or %s", mt, ctProtobuf, ctJSON))
		return
	}
	token, ok := h.env.Auth.Check(r, push.Basic)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="log-processor otlp"`)
		writeStatus(w, json, http.StatusUnauthorized, "unauthorized: send Authorization: Bearer <ingest token>")
		return
	}
	if !h.path.Enter() {
		w.Header().Set("Retry-After", "5")
		writeStatus(w, json, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer h.path.Leave()
	slot, err := h.env.Gate.Enter()
	if err != nil {
		h.refuse(w, json, token, err)
		return
	}
	defer slot.Leave()
	body, err := push.ReadBody(r, h.cfg.MaxBodyBytes, slot, h.bufs.Get())
	defer func() { h.bufs.Put(body) }()
	if err != nil {
		h.refuse(w, json, token, err)
		return
	}
	o, err := h.export(r.Context(), body, json, token, r.RemoteAddr, slot)
	if err != nil {
		h.refuse(w, json, token, err)
		return
	}
	h.path.Done(token, false)
	writeMessage(w, json, http.StatusOK, o.response())
}

// refuse answers a request that was not taken.
func (h *HTTP) refuse(w http.ResponseWriter, json bool, token string, err error) {
	switch {
	case errors.Is(err, push.ErrBusy), errors.Is(err, intake.ErrBusy), errors.Is(err, queue.ErrFull):
		h.path.Done(token, true)
		w.Header().Set("Retry-After", "1")
		writeStatus(w, json, http.StatusServiceUnavailable, "no room for the request now (the queue or the in-flight budget is full); retry")
	case errors.Is(err, queue.ErrUnconfirmed):
		h.path.Done(token, true)
		w.Header().Set("Retry-After", "1")
		writeStatus(w, json, http.StatusServiceUnavailable, notStored)
	case errors.Is(err, intake.ErrTooMany):
		writeStatus(w, json, http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d log records in one request (--ingest-max-records): send smaller batches", h.cfg.MaxRecords))
	case errors.Is(err, queue.ErrTooLarge):
		writeStatus(w, json, http.StatusRequestEntityTooLarge, "more records than the queue holds at once (--queue-size, --queue-max-bytes): send smaller batches")
	case errors.Is(err, push.ErrTooLarge):
		writeStatus(w, json, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes once decompressed (--otlp-max-body-bytes)", h.cfg.MaxBodyBytes))
	case errors.Is(err, push.ErrEncoding):
		writeStatus(w, json, http.StatusUnsupportedMediaType, err.Error())
	default:
		writeStatus(w, json, http.StatusBadRequest, err.Error())
	}
}

// notStored is the answer to a request whose records were queued but not
// confirmed stored in time (--ack stored).
const notStored = "the records were not confirmed stored in time (--ack-timeout); retry"

// writeMessage writes m in the request's encoding.
func writeMessage(w http.ResponseWriter, json bool, code int, m proto.Message) {
	var b []byte
	var err error
	if json {
		w.Header().Set("Content-Type", ctJSON)
		b, err = protojson.Marshal(m)
	} else {
		w.Header().Set("Content-Type", ctProtobuf)
		b, err = proto.Marshal(m)
	}
	if err != nil {
		http.Error(w, "encode the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeStatus answers a failure with a google.rpc.Status, as OTLP/HTTP
// has it.
func writeStatus(w http.ResponseWriter, json bool, code int, msg string) {
	writeMessage(w, json, code, &spb.Status{Message: msg})
}

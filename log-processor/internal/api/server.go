// Package api serves the processor's HTTP endpoints: liveness, readiness,
// stats and the query of stored logs.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/logql"
	"github.com/logpipeline/log-processing-service/log-processor/internal/lokiapi"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/tail"
	"github.com/logpipeline/log-processing-service/pkg/bearer"
)

// Pipeline is what the API reads of the pipeline: its counters and its
// readiness; and the replay of dead letters.
type Pipeline interface {
	StatsWithTotals(ctx context.Context) pipeline.Stats
	Ready() pipeline.Readiness
	Replay(ctx context.Context, f storage.RejectedFilter) (pipeline.Replayed, error)
}

// Store is what the API reads of storage (storage.Store has it).
type Store interface {
	Query(ctx context.Context, f storage.Filter) ([]storage.Record, error)
	Scan(ctx context.Context, f storage.Filter, fn func(*storage.Record) bool) error
	Buckets(ctx context.Context, f storage.Filter, q storage.BucketQuery, fn func(storage.Bucket) bool) error
	ListRejected(ctx context.Context, f storage.RejectedFilter) ([]storage.Rejected, error)
}

// DefaultMaxQueries bounds the /logs queries served at once when
// Options.MaxQueries is zero.
const DefaultMaxQueries = 4

// Options switch on optional routes. The zero value serves none of them.
type Options struct {
	// Pprof serves the Go profiler under /debug/pprof/. Profiles reveal
	// internals and cost CPU while taken: enable it only where the API is
	// not exposed to others, or set Token.
	Pprof bool
	// Token, if set, is the bearer token /logs, /logs/rejected and
	// /debug/pprof/ require (Authorization: Bearer TOKEN). Health,
	// readiness and stats stay open for probes.
	Token string
	// MaxQueries bounds the /logs queries served at once; beyond it a
	// request gets 503 with Retry-After, so that queries cannot starve
	// ingestion. Zero means DefaultMaxQueries.
	MaxQueries int
	// Metrics, when set, serves GET /metrics.
	Metrics http.Handler
	// Done, when closed, ends the tail streams: close it as the server
	// shuts down, which does not wait for streams to end by themselves.
	Done <-chan struct{}
	// Query bounds the Loki read API's queries (its Done is Done's).
	Query lokiapi.Config
	// QueryLimits bounds what one LogQL query holds.
	QueryLimits logql.Limits
}

// NewHandler returns the API's routes:
//
//	GET /healthz  200 "ok" while the process runs (liveness)
//	GET /readyz   200 when every source is connected and storage writes, else 503; JSON body
//	GET /stats    the pipeline's counters as JSON
//	GET /logs     stored entries, newest first, filtered by the query string (token)
//	GET /logs/rejected  the newest entries storage refused, newest first (token)
//	POST /logs/rejected/replay  submits chosen dead letters again (token)
//	/loki/api/v1/...  Loki's read API, for Grafana and Loki's clients (token)
//	/debug/pprof/ the Go profiler, with Options.Pprof (token)
//
// Routes marked (token) require Options.Token when it is set.
//
// The tail follows hub, which the pipeline publishes stored entries to.
func NewHandler(p Pipeline, store Store, hub *tail.Hub, opts Options, logger *slog.Logger) http.Handler {
	if opts.MaxQueries <= 0 {
		opts.MaxQueries = DefaultMaxQueries
	}
	guard := func(h http.HandlerFunc) http.HandlerFunc { return requireToken(opts.Token, h, false) }
	mux := http.NewServeMux()
	if opts.Pprof {
		mux.HandleFunc("GET /debug/pprof/", guard(pprof.Index))
		mux.HandleFunc("GET /debug/pprof/cmdline", guard(pprof.Cmdline))
		mux.HandleFunc("GET /debug/pprof/profile", guard(pprof.Profile))
		mux.HandleFunc("GET /debug/pprof/symbol", guard(pprof.Symbol))
		mux.HandleFunc("GET /debug/pprof/trace", guard(pprof.Trace))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "text/html") { // a browser: the dashboard
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:")
			_, _ = w.Write(dashboard)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(index))
	})
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	mux.HandleFunc("GET /logs/tail", requireToken(opts.Token, serveTail(hub, opts.Done, logger), true))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		rd := p.Ready()
		code := http.StatusOK
		if rd.Status != "ready" {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, rd, logger)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, p.StatsWithTotals(r.Context()), logger)
	})
	queries := make(chan struct{}, opts.MaxQueries) // a slot per query being served
	// enter takes a query slot, or answers 503 and returns false.
	enter := func(w http.ResponseWriter) bool {
		select {
		case queries <- struct{}{}:
			return true
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many /logs queries at once; retry shortly", http.StatusServiceUnavailable)
			return false
		}
	}
	query := func(h http.HandlerFunc) http.HandlerFunc { // a query: guarded, and one of the queries at once
		return guard(func(w http.ResponseWriter, r *http.Request) {
			if !enter(w) {
				return
			}
			defer func() { <-queries }()
			h(w, r)
		})
	}
	mux.HandleFunc("GET /logs", query(func(w http.ResponseWriter, r *http.Request) {
		f, err := ParseFilter(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		recs, err := store.Query(r.Context(), f)
		if err != nil {
			logger.Warn("query logs", "err", err)
			http.Error(w, "query failed: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, recs, logger)
	}))
	mux.HandleFunc("GET /logs/rejected", guard(func(w http.ResponseWriter, r *http.Request) {
		f, err := ParseRejectedFilter(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rej, err := store.ListRejected(r.Context(), f)
		if err != nil {
			http.Error(w, "query failed: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusOK, rej, logger)
	}))
	mux.HandleFunc("POST /logs/rejected/replay", query(func(w http.ResponseWriter, r *http.Request) {
		f, err := ParseRejectedFilter(r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out, err := p.Replay(r.Context(), f)
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, out, logger)
		case errors.Is(err, pipeline.ErrNoIngest):
			http.Error(w, err.Error(), http.StatusConflict)
		case errors.Is(err, queue.ErrTooLarge):
			http.Error(w, "the chosen dead letters hold more entries than the queue can take at once: choose fewer (limit=, id=)", http.StatusRequestEntityTooLarge)
		default: // the queue is full, the store is failing or did not confirm in time: nothing was let go
			logger.Warn("replay dead letters", "err", err)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "replay not confirmed, nothing let go; retry: "+err.Error(), http.StatusServiceUnavailable)
		}
	}))
	opts.Query.Done = opts.Done
	loki := lokiapi.New(store, opts.QueryLimits, hub, opts.Query, logger.With("component", "loki-api"))
	for _, method := range []string{"GET ", "POST "} {
		mux.HandleFunc(method+lokiapi.PathQueryRange, query(loki.QueryRange))
		mux.HandleFunc(method+lokiapi.PathQuery, query(loki.Query))
		mux.HandleFunc(method+lokiapi.PathLabels, query(loki.Labels))
		mux.HandleFunc(method+lokiapi.PathLabelValues, query(loki.LabelValues))
		mux.HandleFunc(method+lokiapi.PathSeries, query(loki.Series))
	}
	mux.HandleFunc("GET "+lokiapi.PathTail, guard(loki.Tail))
	mux.HandleFunc("GET /loki/api/v1/index/stats", guard(loki.IndexStats))
	mux.HandleFunc("GET /loki/api/v1/index/volume", guard(loki.Volume))
	mux.HandleFunc("GET /loki/api/v1/index/volume_range", guard(loki.Volume))
	mux.HandleFunc("GET /loki/api/v1/detected_labels", guard(loki.DetectedLabels))
	mux.HandleFunc("GET /loki/api/v1/detected_fields", guard(loki.DetectedFields))
	mux.HandleFunc("GET /loki/api/v1/patterns", guard(loki.Patterns))
	return mux
}

// index is the answer to GET /: what else there is to ask.
const index = `log-processor API

GET /healthz         liveness: 200 "ok" while the process runs
GET /readyz          readiness: 200 when every source is connected and storage writes, else 503
GET /stats           every counter, as JSON
GET /logs            stored entries, newest first: ?service= &level= &since= &until= &contains= &limit=
GET /logs/rejected   dead letters, newest first: ?reason= &source= &id= &before= &limit=
POST /logs/rejected/replay  submits the dead letters chosen as for GET again; lets go of those now stored
GET /logs/tail       entries as they are stored, as Server-Sent Events (?format=ndjson for lines); same filters as /logs
GET /metrics         Prometheus metrics
GET /loki/api/v1/... Loki's read API (query_range, query, labels, label/NAME/values, series, tail): point Grafana's Loki data source here
GET / (a browser)    the dashboard
GET /debug/pprof/    the Go profiler, with --pprof

/logs, /logs/rejected (and its replay), /loki/api/v1/ and /debug/pprof/ need "Authorization: Bearer <token>"
(or Basic with the token as the password) when an API token is set.
`

// requireToken answers 401 unless the request carries token as a bearer
// token (or, with inQuery, as ?token=, for a browser's EventSource, which
// cannot set headers); with no token set it serves every request.
func requireToken(token string, h http.HandlerFunc, inQuery bool) http.HandlerFunc {
	if token == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		got := bearer.From(r, inQuery)
		if _, pw, ok := r.BasicAuth(); ok && got == "" { // Grafana's data sources send Basic
			got = pw
		}
		if !bearer.Equal(got, token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="log-processor"`)
			http.Error(w, "unauthorized: this endpoint needs Authorization: Bearer <api token>", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any, logger *slog.Logger) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		logger.Error("encode response", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// Timeouts of the API server: a client that connects and sends nothing, or
// reads nothing, is cut off.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// NewServer returns an http.Server for h with every timeout set.
func NewServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

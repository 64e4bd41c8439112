// Package cli is the log-processor command: it parses flags, builds the
// pipeline and the HTTP API, runs them until the context ends, and stops
// them in reverse order.
package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/logpipeline/log-processing-service/log-processor/internal/api"
	"github.com/logpipeline/log-processing-service/log-processor/internal/bus"
	"github.com/logpipeline/log-processing-service/log-processor/internal/bus/embedded"
	"github.com/logpipeline/log-processing-service/log-processor/internal/esbulk"
	"github.com/logpipeline/log-processing-service/log-processor/internal/ingest"
	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/logql"
	"github.com/logpipeline/log-processing-service/log-processor/internal/loki"
	"github.com/logpipeline/log-processing-service/log-processor/internal/lokiapi"
	"github.com/logpipeline/log-processing-service/log-processor/internal/metrics"
	"github.com/logpipeline/log-processing-service/log-processor/internal/otlp"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/receiver"
	"github.com/logpipeline/log-processing-service/log-processor/internal/redact"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/memory"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/sqlite"
	"github.com/logpipeline/log-processing-service/log-processor/internal/tail"
	"github.com/logpipeline/log-processing-service/log-processor/internal/workerpool"
	"github.com/logpipeline/log-processing-service/pkg/buildinfo"
	"github.com/logpipeline/log-processing-service/pkg/logging"
)

// DefaultHTTPAddr is where the API listens unless --http-addr says otherwise.
const DefaultHTTPAddr = ":9090"

// httpShutdownTimeout bounds the API server's graceful stop.
const httpShutdownTimeout = 5 * time.Second

// UsageError is a problem with the command line. The command exits with
// status 2 for it, after printing it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ExitCode maps an error from Run to the process exit status.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// config is everything the command line sets.
type config struct {
	pipeline  pipeline.Config
	sink      intake.SinkConfig
	receiver  receiver.Config   // settings every dialed source shares
	dialed    []receiver.Config // one per dialed source: --urls, then the config file's
	urls      []string          // --urls as given
	tail      tail.Config
	gate      push.GateConfig
	httpAddr  string
	api       api.Options
	logLevel  string
	logFormat string

	apiTokenFile string

	version    bool   // --version: print it and exit
	configPath string // --config
	checkOnly  bool   // --check-config: validate and exit
	file       fileConfig
	ingestAddr string
	ingest     ingest.Config
	otlp       otlp.Config
	es         esbulk.Config
	loki       loki.Config
	otlpGRPC   string // --otlp-grpc-addr
	tokens     []push.Token
	ingestCert string
	ingestKey  string
	ingestTLS  *tls.Config // from ingestCert and ingestKey
	tokenFiles []string    // NAME=PATH
	ack        string      // --ack

	storage   string // memory, sqlite or postgres
	dsn       string
	instance  string
	memory    memory.Config
	batch     storage.BatchConfig
	retention time.Duration
	// keepRejected is how long the SQL backends keep dead letters.
	keepRejected time.Duration
	searchIndex  bool // --search-index

	bus busConfig
}

// Defaults of the dead-letter flags.
const (
	defaultKeepRejected     = 7 * 24 * time.Hour
	defaultRejectedMaxBytes = 16 << 10
)

// openTimeout bounds opening the database and the bus at start.
const openTimeout = 30 * time.Second

// openStore opens the storage backend the flags chose, within ctx.
func openStore(ctx context.Context, cfg config, logger *slog.Logger) (storage.Store, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	logger = logger.With("component", "storage", "backend", cfg.storage)
	ret := storage.Retention{Keep: cfg.retention}
	switch cfg.storage {
	case "sqlite":
		return sqlite.Open(ctx, sqlite.Config{Path: cfg.dsn, Batch: cfg.batch, Retention: ret, KeepRejected: cfg.keepRejected,
			SearchIndex: cfg.searchIndex}, logger)
	case "postgres":
		return postgres.Open(ctx, postgres.Config{DSN: cfg.dsn, Instance: cfg.instance, Batch: cfg.batch, Retention: ret,
			KeepRejected: cfg.keepRejected, SearchIndex: cfg.searchIndex}, logger)
	}
	return memory.New(cfg.memory), nil
}

// openBus connects to NATS and makes sure of the stream, within ctx.
func openBus(ctx context.Context, cfg config, logger *slog.Logger) (*bus.Bus, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	b, err := bus.Open(ctx, cfg.bus.bus, logger.With("component", "bus"))
	if err != nil {
		return nil, err
	}
	st := b.Status()
	logger.Info("bus open", "component", "bus", "servers", st.Servers, "stream", st.Stream, "consumer", st.Consumer, "role", cfg.pipeline.Role)
	return b, nil
}

// Run runs the processor with the arguments args (without the program name)
// until ctx ends, then drains. --help prints the usage to stdout and
// returns nil.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, nil, args, stdout, stderr, nil, nil)
}

// RunUntil is Run with a second stop: when abandon is closed while the
// processor drains (a second Ctrl+C), the drain is abandoned, and its
// report still says what was lost. abandon may be nil.
// It also sets the Go runtime's soft memory limit from the processor's
// bounds (see memoryLimit): it is the binary's entry point, and the limit
// is the process's. Run leaves the runtime as it is.
func RunUntil(ctx context.Context, abandon <-chan struct{}, args []string, stdout, stderr io.Writer) error {
	return run(ctx, abandon, args, stdout, stderr, nil, applyMemoryLimit)
}

// closers are what run has started, closed in reverse order when it
// returns, whichever way it returns.
type closers []func()

func (c *closers) add(f func()) { *c = append(*c, f) }

func (c closers) close() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

// served is a server's end: which one, and why.
type served struct {
	name string
	err  error
}

// run is RunUntil with a hook called with each listener's address once it
// listens (the API's first), and limit, when not nil, called with the
// configuration before anything starts.
func run(ctx context.Context, abandon <-chan struct{}, args []string, stdout, stderr io.Writer, listening func(net.Addr),
	limit func(*config, *slog.Logger)) error {
	cfg, err := parse(args, stdout)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.version {
		fmt.Fprintln(stdout, "log-processor", buildinfo.Read())
		return nil
	}
	logger, err := logging.New(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return &UsageError{err}
	}
	if cfg.checkOnly {
		printPlan(stdout, cfg)
		return nil
	}
	if limit != nil {
		limit(&cfg, logger)
	}
	for _, name := range cfg.file.insecure {
		logger.Warn("source skips TLS certificate verification (insecure_skip_verify): anyone on the path can read and forge its logs", "component", "receiver", "source", name)
	}
	var started closers
	defer started.close()

	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("listen for API: %w", err)
	}
	started.add(func() { ln.Close() })
	var iln net.Listener
	if cfg.ingestAddr != "" {
		if iln, err = net.Listen("tcp", cfg.ingestAddr); err != nil {
			return fmt.Errorf("listen for ingest: %w", err)
		}
		if cfg.ingestTLS != nil {
			iln = tls.NewListener(iln, cfg.ingestTLS)
		}
		started.add(func() { iln.Close() })
	}
	var gln net.Listener
	if cfg.otlpGRPC != "" {
		if gln, err = net.Listen("tcp", cfg.otlpGRPC); err != nil {
			return fmt.Errorf("listen for OTLP/gRPC: %w", err)
		}
		started.add(func() { gln.Close() })
	}
	store, err := openStore(ctx, cfg, logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("open storage: %w", err)
	}
	storeOwned := false // by the pipeline's Run, once it runs
	started.add(func() {
		if !storeOwned {
			_ = store.Close(context.Background())
		}
	})
	logger.Info("storage open", "backend", cfg.storage, "dsn", redact.DSN(cfg.dsn))
	if cfg.bus.kind == "embedded" {
		srv, err := embedded.Start(embedded.Config{Dir: cfg.bus.dataDir, MaxBytes: cfg.bus.bus.MaxBytes,
			SyncInterval: cfg.bus.syncInterval, Name: cfg.instance}, logger.With("component", "bus", "server", "embedded"))
		if err != nil {
			return err
		}
		started.add(srv.Close) // after the bus's connection is closed
		cfg.bus.bus.InProcess = srv
		logger.Info("embedded bus started", "component", "bus", "dir", srv.Dir(), "sync_interval", cfg.bus.syncInterval)
	}
	if cfg.bus.kind != "memory" {
		b, err := openBus(ctx, cfg, logger)
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped while starting
			}
			return err
		}
		started.add(b.Close) // after the pipeline has drained into it
		cfg.pipeline.Bus = b
	}
	hub := tail.NewHub(cfg.tail)
	sink := intake.NewSink(cfg.sink)
	cfg.pipeline.Sink, cfg.pipeline.Tail = sink, hub
	var ingestMux *http.ServeMux
	cfg.pipeline.Sources, ingestMux = buildSources(&cfg, sink, gln, logger)
	p, err := pipeline.New(cfg.pipeline, store, logger)
	if err != nil {
		return err
	}

	cfg.api.Metrics = metrics.Handler(metrics.NewRegistry(p, buildinfo.Read(), true))
	tailDone := make(chan struct{})
	cfg.api.Done = tailDone
	srv := api.NewServer(api.NewHandler(p, store, hub, cfg.api, logger), logger.With("component", "api"))
	srv.RegisterOnShutdown(func() { close(tailDone) }) // tail streams end with the server
	servers := []*http.Server{srv}
	ends := make(chan served, 2) // sent once by each serving goroutine
	go func() { ends <- served{"API", srv.Serve(ln)} }()
	logger.Info("HTTP API listening", "addr", ln.Addr().String(), "sources", len(cfg.dialed), "token_required", cfg.api.Token != "")
	if cfg.api.Token == "" && !loopback(ln.Addr()) {
		logger.Warn("the API serves stored logs to anyone who can reach this address; "+
			"set "+apiTokenEnv+" (or --api-token-file) to require a token, or listen on 127.0.0.1", "component", "api", "addr", ln.Addr().String())
	}
	if listening != nil {
		listening(ln.Addr())
	}
	if ingestMux != nil {
		isrv := api.NewServer(ingestMux, logger.With("component", "ingest"))
		servers = append(servers, isrv)
		go func() { ends <- served{"ingest", isrv.Serve(iln)} }()
		logger.Info("ingest listening", "addr", iln.Addr().String(), "tls", cfg.ingestTLS != nil, "tokens", len(cfg.tokens),
			"paths", strings.Join(pushPaths, " "), "component", "ingest")
		if len(cfg.tokens) == 0 && !loopback(iln.Addr()) {
			logger.Warn("the ingest address accepts logs from anyone who can reach it; give tokens (ingest-tokens in --config, "+
				"--ingest-token-file or $"+ingestTokenEnv+")", "component", "ingest")
		}
		if listening != nil {
			listening(iln.Addr())
		}
	}
	if gln != nil {
		logger.Info("OTLP/gRPC listening", "addr", gln.Addr().String(), "tls", cfg.ingestTLS != nil, "component", "otlp")
		if listening != nil {
			listening(gln.Addr())
		}
	}

	// The pipeline stops when ctx ends, or early if a server fails.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1) // sent once by the pipeline goroutine
	storeOwned = true
	go func() { runErr <- p.Run(pctx, abandon) }()
	open := len(servers)
	select {
	case end := <-ends:
		// A server stopped serving before the pipeline was told to stop.
		open--
		cancel()
		err = errors.Join(fmt.Errorf("serve %s: %w", end.name, end.err), <-runErr)
	case err = <-runErr:
	}

	sctx, scancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer scancel()
	for _, s := range servers {
		if serr := s.Shutdown(sctx); serr != nil {
			// A client holding a connection it never sent a request on
			// keeps Shutdown waiting; that is no failure of ours.
			logger.Warn("HTTP server: connections still open at shutdown; closing them", "err", serr)
			s.Close()
		}
	}
	for range open {
		if end := <-ends; !errors.Is(end.err, http.ErrServerClosed) {
			err = errors.Join(err, fmt.Errorf("serve %s: %w", end.name, end.err))
		}
	}
	if err == nil {
		logger.Info("stopped")
	}
	return err
}

// parse reads and validates the command line.
func parse(args []string, stdout io.Writer) (config, error) {
	var cfg config
	pc, rc, pp := &cfg.pipeline, &cfg.receiver, &cfg.sink.Parser
	fs := pflag.NewFlagSet("log-processor", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(stdout, "log-processor reads JSON logs from WebSocket sources, validates them and\n"+
			"processes them in a bounded worker pool, serving stats over HTTP.\n\n"+
			"Usage:\n  log-processor --urls ws://host:port/ws/logs[,ws://...] [flags]\n\nFlags:\n%s", fs.FlagUsages())
	}

	fs.BoolVar(&cfg.version, "version", false, "print the version and exit")
	fs.StringVar(&cfg.configPath, "config", "", "YAML file of settings: every flag by its name, plus sources: and ingest-tokens: (see README); flags given here win")
	fs.BoolVar(&cfg.checkOnly, "check-config", false, "validate the flags and --config, print what would run, and exit (0 ok, 2 with the reason)")
	fs.StringSliceVarP(&cfg.urls, "urls", "u", nil, "comma-separated WebSocket URLs to read from (ws:// or wss://); NAME=URL names a source")
	fs.StringVarP(&cfg.httpAddr, "http-addr", "a", DefaultHTTPAddr, "HTTP listen address for the API: /healthz, /readyz, /stats, /logs (and /debug/pprof with --pprof)")
	fs.IntVar(&pc.Pool.Workers, "workers", workerpool.DefaultWorkers, "number of workers")
	fs.IntVar(&pc.Pool.QueueSize, "queue-size", workerpool.DefaultQueueSize, "capacity of the queue in front of the workers, in entries")
	sizeVar(fs, &pc.Pool.QueueBytes, "queue-max-bytes", workerpool.DefaultQueueBytes, "bound on the memory of the entries in the queue and the workers")
	fs.DurationVar(&rc.SubmitTimeout, "submit-timeout", receiver.DefaultSubmitTimeout, "how long a receiver waits for room in a full queue before dropping an entry")
	fs.DurationVar(&pc.ShutdownTimeout, "shutdown-timeout", pipeline.DefaultShutdownTimeout, "bound on draining the queue at shutdown")
	fs.DurationVar(&rc.ConnectTimeout, "connect-timeout", receiver.DefaultConnectTimeout, "bound on dialing a source and its WebSocket handshake")
	fs.DurationVar(&rc.PingInterval, "ping-interval", receiver.DefaultPingInterval, "how often to ping each source")
	fs.DurationVar(&rc.PongWait, "pong-wait", receiver.DefaultPongWait, "a source silent this long (no frame, no pong) is reconnected; must exceed --ping-interval")
	fs.DurationVar(&rc.IdleTimeout, "idle-timeout", 0, "reconnect a source that sent no data frame for this long (0 = off)")
	fs.DurationVar(&rc.MaxBackoff, "max-backoff", receiver.DefaultMaxBackoff, "longest delay between reconnect attempts")
	fs.IntVar(&rc.MaxMessageSize, "max-message-size", receiver.DefaultMaxMessageSize, "longest frame in bytes; longer frames are skipped and counted as too_large")
	sizeVar(fs, &rc.MaxHandshakeBytes, "max-handshake-bytes", receiver.DefaultMaxHandshakeBytes, "longest upgrade response (status line and headers) a source may send")
	sizeVar(fs, &pp.MaxMessageBytes, "message-max-bytes", parser.DefaultMaxMessageBytes, "longest message field; longer entries are counted as field_too_long")
	sizeVar(fs, &pp.MaxNameBytes, "name-max-bytes", parser.DefaultMaxNameBytes, "longest service or component field")
	sizeVar(fs, &pp.MaxIDBytes, "id-max-bytes", parser.DefaultMaxIDBytes, "longest trace_id, span_id or parent_id field")
	sizeVar(fs, &pp.MaxAttrsBytes, "attrs-max-bytes", parser.DefaultMaxAttrsBytes, "most bytes of other fields kept with an entry as attributes; the rest are left out")
	pp.MinLevel = parser.LevelInfo
	fs.Var(levelFlag{&pp.MinLevel}, "min-level", "lowest level stored: debug, info, warn or error; entries below it are counted as below_min_level")
	pp.DefaultLevel = parser.LevelInfo
	fs.Var(levelFlag{&pp.DefaultLevel}, "default-level", "level given to log lines that name none (a message without a level): debug, info, warn or error; counted as default_level")
	fs.DurationVar(&cfg.sink.SummaryInterval, "summary-interval", intake.DefaultSummaryInterval, "how often, at most, each source logs its summary line while frames flow")
	fs.StringVar(&cfg.storage, "storage", "memory", "where entries go: memory, sqlite or postgres")
	fs.StringVar(&cfg.dsn, "dsn", "", "database: a file path for sqlite (logs.db), a connection string for postgres")
	fs.StringVar(&cfg.instance, "instance", hostname(), "name of this processor, recorded with every row (postgres) and shown to NATS and the fleet (--bus jetstream)")
	fs.IntVar(&cfg.batch.Size, "batch-size", storage.DefaultBatchSize, "entries per database transaction (sqlite, postgres)")
	sizeVar(fs, &cfg.batch.MaxBytes, "batch-max-bytes", storage.DefaultBatchBytes, "bytes per database transaction, at most (sqlite, postgres)")
	fs.IntVar(&cfg.memory.RejectedKeep, "rejected-keep", storage.DefaultRejectedKeep, "dead letters (refused records and entries) the memory store keeps for GET /logs/rejected, the newest (memory; sqlite and postgres keep them in a table)")
	fs.DurationVar(&cfg.keepRejected, "rejected-retention", defaultKeepRejected, "delete dead letters older than this (sqlite, postgres; 0 = keep all)")
	sizeVar(fs, &cfg.sink.KeepRefused, "rejected-max-bytes", defaultRejectedMaxBytes, "bytes of each record the parser refuses on a push request kept as a dead letter (0 = keep none)")
	fs.DurationVar(&cfg.batch.FlushInterval, "flush-interval", storage.DefaultFlushInterval, "longest an entry waits before its batch is written (sqlite, postgres)")
	fs.DurationVar(&cfg.retention, "retention", 0, "delete entries older than this, e.g. 72h (sqlite, postgres; 0 = keep all)")
	fs.BoolVar(&cfg.searchIndex, "search-index", false, "keep a trigram index of the messages, so that substring searches (|= and ?contains=) find rare terms without reading their whole range; writes cost 2.5 to 4.6 times as much (sqlite, postgres)")
	fs.IntVar(&cfg.memory.MaxEntries, "memory-max-entries", memory.DefaultMaxEntries, "recent entries the memory store keeps for /logs")
	sizeVar(fs, &cfg.memory.MaxBytes, "memory-max-bytes", memory.DefaultMaxBytes, "bound on the memory of the entries the memory store keeps")
	fs.IntVar(&pc.TopServices, "stats-top-services", storage.DefaultTopServices, "services named in /stats counts; the rest are summed as (other)")
	fs.IntVar(&cfg.api.MaxQueries, "max-queries", api.DefaultMaxQueries, "/logs queries served at once; more get 503 with Retry-After")
	fs.DurationVar(&cfg.api.Query.Timeout, "query-timeout", lokiapi.DefaultTimeout, "longest a Loki API query (/loki/api/v1/...) may run; longer ones get 503")
	fs.IntVar(&cfg.api.QueryLimits.MaxLines, "query-max-lines", logql.DefaultMaxLines, "most entries one Loki API query may ask for (its limit); more get 400")
	fs.IntVar(&cfg.api.QueryLimits.MaxSeries, "query-max-series", logql.DefaultMaxSeries, "most series one Loki API metric query may hold; more get 400")
	fs.BoolVar(&cfg.api.Query.AlignWithStep, "query-align-step", false, "move a Loki API range metric query's start and end back to multiples of its step, as Loki's align_queries_with_step does; with whole-minute steps, log volume is then counted by minute (sqlite, postgres)")
	fs.IntVar(&cfg.tail.MaxClients, "tail-max-clients", tail.DefaultMaxClients, "clients following /logs/tail at once (the dashboard is one); more get 503")
	sizeVar(fs, &cfg.tail.ClientBytes, "tail-client-bytes", tail.DefaultClientBytes, "bytes of entries waiting for one /logs/tail client; past it the client misses entries (and is told)")
	sizeVar(fs, &cfg.tail.TotalBytes, "tail-max-bytes", tail.DefaultTotalBytes, "bytes of entries waiting for all /logs/tail clients together")
	fs.StringVar(&cfg.api.Token, "api-token", "", "bearer token that /logs and /debug/pprof require (default $LOGPROC_API_TOKEN); prefer the variable or --api-token-file")
	fs.StringVar(&cfg.apiTokenFile, "api-token-file", "", "file holding the API token (its first line)")
	fs.BoolVar(&cfg.api.Pprof, "pprof", false, "serve the Go profiler at /debug/pprof/ on the API address (keep that address private)")
	fs.StringVar(&cfg.ingestAddr, "ingest-addr", "", "listen address for pushed logs: POST /ingest (NDJSON) and GET /ws/ingest (WebSocket); off when empty")
	fs.StringSliceVar(&cfg.tokenFiles, "ingest-token-file", nil, "NAME=PATH: a token pushers may present, read from PATH's first line (repeatable; also $"+ingestTokenEnv+" as \"default\")")
	fs.StringVar(&cfg.ingestCert, "ingest-tls-cert", "", "certificate (PEM) to serve the ingest address over TLS; with --ingest-tls-key")
	fs.StringVar(&cfg.ingestKey, "ingest-tls-key", "", "private key (PEM) of --ingest-tls-cert")
	sizeVar(fs, &cfg.ingest.MaxBodyBytes, "ingest-max-body-bytes", ingest.DefaultMaxBodyBytes, "largest pushed HTTP body (once decompressed) or WebSocket frame; larger bodies get 413")
	fs.IntVar(&cfg.ingest.MaxRecords, "ingest-max-records", ingest.DefaultMaxRecords, "most records (lines) in one pushed request; more get 413")
	sizeVar(fs, &cfg.gate.MaxInflightBytes, "ingest-max-inflight-bytes", push.DefaultMaxInflightBytes, "bytes every push path together holds at once (bodies, frames and their parsed entries); past it pushes wait briefly, then get 503 with Retry-After")
	fs.IntVar(&cfg.gate.MaxRequests, "ingest-max-requests", push.DefaultMaxRequests, "push requests handled at once; more get 503 with Retry-After")
	fs.StringVar(&cfg.otlpGRPC, "otlp-grpc-addr", "", "listen address for OTLP/gRPC logs (LogsService/Export; 4317 is the convention); off when empty. OTLP/HTTP is served at /v1/logs on --ingest-addr")
	sizeVar(fs, &cfg.otlp.MaxBodyBytes, "otlp-max-body-bytes", otlp.DefaultMaxBodyBytes, "largest OTLP/HTTP body, once decompressed (the OTLP specification's 20 MiB); larger get 413")
	sizeVar(fs, &cfg.otlp.GRPCMaxMessageBytes, "otlp-grpc-max-message-bytes", otlp.DefaultGRPCMaxMessageBytes, "largest OTLP/gRPC request message; larger get ResourceExhausted")
	fs.Uint32Var(&cfg.otlp.GRPCMaxStreams, "otlp-grpc-max-streams", otlp.DefaultGRPCMaxStreams, "OTLP/gRPC calls at once on one connection")
	sizeVar(fs, &cfg.es.MaxBodyBytes, "es-max-body-bytes", esbulk.DefaultMaxBodyBytes, "largest Elasticsearch _bulk body on --ingest-addr, once decompressed; larger get 413")
	sizeVar(fs, &cfg.loki.MaxBodyBytes, "loki-max-body-bytes", loki.DefaultMaxBodyBytes, "largest Loki push body on --ingest-addr, once decompressed (Snappy or gzip); larger get 413")
	fs.IntVar(&cfg.loki.MaxLabels, "loki-max-labels", loki.DefaultMaxLabels, "labels of a Loki stream; a stream with more has its entries refused as field_too_long")
	sizeVar(fs, &cfg.loki.MaxLabelBytes, "loki-max-label-bytes", loki.DefaultMaxLabelBytes, "a Loki label's name or value; longer refuses the stream's entries as field_too_long")
	fs.IntVar(&cfg.ingest.MaxClients, "ingest-max-clients", ingest.DefaultMaxClients, "WebSocket pushers connected at once; more get 503")
	fs.DurationVar(&cfg.ingest.SubmitTimeout, "ingest-submit-timeout", ingest.DefaultSubmitTimeout, "how long a pushed HTTP request waits for room in a full queue before 503")
	fs.StringVar(&cfg.ack, "ack", string(intake.AckStored), "when a push request is answered: stored (once its entries are committed by the storage, or acknowledged by the bus) or queued (once they are in the queue; faster, lost if the process dies first)")
	fs.DurationVar(&cfg.sink.AckTimeout, "ack-timeout", intake.DefaultAckTimeout, "with --ack stored, how long a push request waits for its entries to be stored; past it the answer is the protocol's retryable one (503, 429, gRPC Unavailable)")
	busFlags(fs, &cfg.bus)
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error (debug shows ping/pong)")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "text or json")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return cfg, err
		}
		return cfg, &UsageError{withSuggestion(err, fs)}
	}
	if fs.NArg() > 0 {
		return cfg, &UsageError{fmt.Errorf("unexpected argument %q (sources go in --urls)", fs.Arg(0))}
	}
	if cfg.version {
		return cfg, nil
	}
	if cfg.configPath != "" {
		fc, err := loadConfig(cfg.configPath, fs)
		if err != nil {
			return cfg, &UsageError{err}
		}
		cfg.file = fc
	}
	if err := setupBus(&cfg, fs); err != nil {
		return cfg, &UsageError{err}
	}
	if err := setupIngest(&cfg); err != nil {
		return cfg, &UsageError{err}
	}
	if err := validate(&cfg); err != nil {
		return cfg, &UsageError{err}
	}
	if err := checkBackendFlags(fs, cfg.storage, cfg.bus.kind); err != nil {
		return cfg, &UsageError{err}
	}
	if err := readToken(&cfg); err != nil {
		return cfg, &UsageError{err}
	}
	return cfg, nil
}

// backendFlags are the flags that mean something only with some storage
// backends; given with another, they are refused rather than ignored.
var backendFlags = []struct {
	flag     string
	backends []string
}{
	{"dsn", []string{"sqlite", "postgres"}},
	{"batch-size", []string{"sqlite", "postgres"}},
	{"batch-max-bytes", []string{"sqlite", "postgres"}},
	{"flush-interval", []string{"sqlite", "postgres"}},
	{"retention", []string{"sqlite", "postgres"}},
	{"search-index", []string{"sqlite", "postgres"}},
	{"rejected-keep", []string{"memory"}},
	{"rejected-retention", []string{"sqlite", "postgres"}},
	{"instance", []string{"postgres"}},
	{"memory-max-entries", []string{"memory"}},
	{"memory-max-bytes", []string{"memory"}},
}

func checkBackendFlags(fs *pflag.FlagSet, backend, busKind string) error {
	for _, bf := range backendFlags {
		if bf.flag == "instance" && busKind == "jetstream" {
			continue // also names the processor to NATS and to its fleet
		}
		if fs.Changed(bf.flag) && !slices.Contains(bf.backends, backend) {
			if bf.flag == "instance" {
				return fmt.Errorf("--instance names this processor for --storage postgres (recorded with every row) or --bus jetstream (to NATS and its fleet); it does nothing with --storage %s", backend)
			}
			return fmt.Errorf("--%s is for --storage %s; it does nothing with --storage %s", bf.flag, strings.Join(bf.backends, " or "), backend)
		}
	}
	return nil
}

// readToken takes the API token from --api-token, --api-token-file or
// $LOGPROC_API_TOKEN, in that order.
func readToken(cfg *config) error {
	if cfg.api.Token != "" && cfg.apiTokenFile != "" {
		return errors.New("give --api-token or --api-token-file, not both")
	}
	if cfg.apiTokenFile != "" {
		tok, err := readFileValue(cfg.apiTokenFile)
		if err != nil {
			return fmt.Errorf("--api-token-file: %w", err)
		}
		cfg.api.Token = tok
	}
	if cfg.api.Token == "" {
		cfg.api.Token = strings.TrimSpace(os.Getenv(apiTokenEnv))
	}
	return nil
}

// apiTokenEnv is the environment variable the API token may come from.
const apiTokenEnv = "LOGPROC_API_TOKEN"

// loopback reports whether addr listens on loopback only.
func loopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// maxSourceName bounds a source's name, which is also a service name.
const maxSourceName = 128

// validName reports whether a source name is plain: it is shown, stored and
// used as a service name.
func validName(n string) bool {
	if n == "" || len(n) > maxSourceName {
		return false
	}
	for _, c := range n {
		if !(c == '.' || c == '_' || c == '-' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
			return false
		}
	}
	return true
}

func validate(cfg *config) error {
	pc, rc, pp := &cfg.pipeline, &cfg.receiver, &cfg.sink.Parser
	// Empty entries (a trailing or doubled comma) are left out.
	cfg.urls = slices.DeleteFunc(cfg.urls, func(u string) bool { return strings.TrimSpace(u) == "" })
	if len(cfg.urls) == 0 && len(cfg.file.sources) == 0 && cfg.ingestAddr == "" && cfg.otlpGRPC == "" && pc.Role != pipeline.RoleStore {
		return errors.New("no sources: give --urls (ws:// or wss:// URLs), sources in --config, or --ingest-addr (or --otlp-grpc-addr) to receive pushes")
	}
	seen := make(map[string]bool, len(cfg.urls))
	cfg.dialed = cfg.dialed[:0]
	for _, raw := range cfg.urls {
		raw = strings.TrimSpace(raw)
		var d receiver.Config
		// NAME=ws://... names the source.
		if name, rest, ok := strings.Cut(raw, "="); ok && !strings.Contains(name, "://") {
			if !validName(name) {
				return fmt.Errorf("--urls: source name %q: use letters, digits, '.', '_' and '-' (at most %d)", name, maxSourceName)
			}
			if seen["name:"+name] {
				return fmt.Errorf("--urls: source name %q is used twice", name)
			}
			seen["name:"+name] = true
			d.Name, raw = name, strings.TrimSpace(rest)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("--urls: %q is not a ws:// or wss:// URL", redact.URL(raw))
		}
		// As in the config file, the same URL may serve two named sources.
		if d.Name == "" && seen[raw] {
			return fmt.Errorf("--urls: %q is listed twice (name them to read it twice: NAME=URL)", redact.URL(raw))
		}
		seen[raw] = true
		d.URL = raw
		cfg.dialed = append(cfg.dialed, d)
	}
	for _, src := range cfg.file.sources {
		if src.Name != "" {
			if !validName(src.Name) {
				return fmt.Errorf("sources: name %q: use letters, digits, '.', '_' and '-' (at most %d)", src.Name, maxSourceName)
			}
			if seen["name:"+src.Name] {
				return fmt.Errorf("sources: name %q is used twice", src.Name)
			}
			seen["name:"+src.Name] = true
		}
		u, err := url.Parse(src.URL)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("sources: %q is not a ws:// or wss:// URL", redact.URL(src.URL))
		}
		// The same URL may serve two named sources (two subscriptions,
		// say); unnamed, it would be two sources under one name.
		if src.Name == "" && seen[src.URL] {
			return fmt.Errorf("sources: %q is listed twice (name them to read it twice)", redact.URL(src.URL))
		}
		seen[src.URL] = true
		cfg.dialed = append(cfg.dialed, src)
	}
	// Every dialed source shares the flags' settings.
	for i := range cfg.dialed {
		d := &cfg.dialed[i]
		shared := *rc
		shared.Name, shared.URL, shared.Header, shared.OpenMessage, shared.TLS = d.Name, d.URL, d.Header, d.OpenMessage, d.TLS
		*d = shared
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"--workers", int64(pc.Pool.Workers)},
		{"--queue-size", int64(pc.Pool.QueueSize)},
		{"--max-message-size", int64(rc.MaxMessageSize)},
		{"--submit-timeout", int64(rc.SubmitTimeout)},
		{"--shutdown-timeout", int64(pc.ShutdownTimeout)},
		{"--connect-timeout", int64(rc.ConnectTimeout)},
		{"--ping-interval", int64(rc.PingInterval)},
		{"--pong-wait", int64(rc.PongWait)},
		{"--max-backoff", int64(rc.MaxBackoff)},
		{"--summary-interval", int64(cfg.sink.SummaryInterval)},
		{"--ack-timeout", int64(cfg.sink.AckTimeout)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("%s must be greater than zero", p.name)
		}
	}
	ack, err := intake.ParseAck(cfg.ack)
	if err != nil {
		return fmt.Errorf("--ack: %w", err)
	}
	cfg.sink.Ack = ack
	switch cfg.storage {
	case "memory":
	case "sqlite", "postgres":
		if cfg.dsn == "" {
			return fmt.Errorf("--storage %s needs --dsn (%s)", cfg.storage, map[string]string{
				"sqlite": "a file path such as logs.db", "postgres": "a connection string such as postgres://user:pass@host:5432/logs",
			}[cfg.storage])
		}
	default:
		return fmt.Errorf("--storage %q: want memory, sqlite or postgres", cfg.storage)
	}
	if cfg.storage == "postgres" && strings.TrimSpace(cfg.instance) == "" {
		return errors.New("--instance must not be empty")
	}
	for _, p := range []struct {
		name string
		v    int64
	}{
		{"--batch-size", int64(cfg.batch.Size)},
		{"--flush-interval", int64(cfg.batch.FlushInterval)},
		{"--memory-max-entries", int64(cfg.memory.MaxEntries)},
		{"--memory-max-bytes", cfg.memory.MaxBytes},
		{"--batch-max-bytes", int64(cfg.batch.MaxBytes)},
		{"--rejected-keep", int64(cfg.memory.RejectedKeep)},
		{"--queue-max-bytes", pc.Pool.QueueBytes},
		{"--max-handshake-bytes", int64(rc.MaxHandshakeBytes)},
		{"--message-max-bytes", int64(pp.MaxMessageBytes)},
		{"--name-max-bytes", int64(pp.MaxNameBytes)},
		{"--id-max-bytes", int64(pp.MaxIDBytes)},
		{"--attrs-max-bytes", int64(pp.MaxAttrsBytes)},
		{"--stats-top-services", int64(pc.TopServices)},
		{"--max-queries", int64(cfg.api.MaxQueries)},
		{"--tail-max-clients", int64(cfg.tail.MaxClients)},
		{"--query-timeout", int64(cfg.api.Query.Timeout)},
		{"--query-max-lines", int64(cfg.api.QueryLimits.MaxLines)},
		{"--query-max-series", int64(cfg.api.QueryLimits.MaxSeries)},
		{"--tail-client-bytes", cfg.tail.ClientBytes},
		{"--tail-max-bytes", cfg.tail.TotalBytes},
		{"--ingest-max-records", int64(cfg.ingest.MaxRecords)},
		{"--otlp-max-body-bytes", cfg.otlp.MaxBodyBytes},
		{"--otlp-grpc-max-message-bytes", int64(cfg.otlp.GRPCMaxMessageBytes)},
		{"--otlp-grpc-max-streams", int64(cfg.otlp.GRPCMaxStreams)},
		{"--es-max-body-bytes", cfg.es.MaxBodyBytes},
		{"--loki-max-body-bytes", cfg.loki.MaxBodyBytes},
		{"--loki-max-labels", int64(cfg.loki.MaxLabels)},
		{"--loki-max-label-bytes", int64(cfg.loki.MaxLabelBytes)},
		{"--ingest-max-inflight-bytes", cfg.gate.MaxInflightBytes},
		{"--ingest-max-requests", int64(cfg.gate.MaxRequests)},
		{"--ingest-max-body-bytes", cfg.ingest.MaxBodyBytes},
		{"--ingest-max-clients", int64(cfg.ingest.MaxClients)},
		{"--ingest-submit-timeout", int64(cfg.ingest.SubmitTimeout)},
	} {
		if p.v <= 0 {
			return fmt.Errorf("%s must be greater than zero", p.name)
		}
	}
	if cfg.retention < 0 {
		return errors.New("--retention must not be negative")
	}
	if rc.IdleTimeout < 0 {
		return errors.New("--idle-timeout must not be negative")
	}
	if rc.PongWait <= rc.PingInterval {
		return fmt.Errorf("--pong-wait (%s) must be longer than --ping-interval (%s)", rc.PongWait, rc.PingInterval)
	}
	return nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "log-processor"
	}
	return h
}

// ingestTokenEnv is the environment variable a pusher token may come from;
// it is named "default".
const ingestTokenEnv = "LOGPROC_INGEST_TOKEN"

// setupIngest gathers the ingest tokens and TLS certificate, and turns
// the ingest endpoints on when --ingest-addr is set.
func setupIngest(cfg *config) error {
	tokens := append([]push.Token(nil), cfg.file.tokens...)
	for _, nf := range cfg.tokenFiles {
		name, path, ok := strings.Cut(nf, "=")
		if !ok || !validName(name) || path == "" {
			return fmt.Errorf("--ingest-token-file %q: want NAME=PATH, NAME of letters, digits, '.', '_' and '-'", nf)
		}
		v, err := readFileValue(path)
		if err != nil {
			return fmt.Errorf("--ingest-token-file %s: %w", name, err)
		}
		tokens = append(tokens, push.Token{Name: name, Value: v})
	}
	if v := strings.TrimSpace(os.Getenv(ingestTokenEnv)); v != "" {
		tokens = append(tokens, push.Token{Name: "default", Value: v})
	}
	names, values := map[string]bool{}, map[string]bool{}
	for _, t := range tokens {
		if !validName(t.Name) {
			return fmt.Errorf("ingest token name %q: use letters, digits, '.', '_' and '-'", t.Name)
		}
		if names[t.Name] {
			return fmt.Errorf("ingest token name %q is used twice", t.Name)
		}
		if values[t.Value] {
			return fmt.Errorf("ingest token %q has the same value as another: give each pusher its own", t.Name)
		}
		names[t.Name], values[t.Value] = true, true
	}
	cfg.tokens = tokens
	if (cfg.ingestCert == "") != (cfg.ingestKey == "") {
		return errors.New("give --ingest-tls-cert and --ingest-tls-key together")
	}
	if cfg.ingestCert != "" {
		pair, err := loadKeyPair(cfg.ingestCert, cfg.ingestKey)
		if err != nil {
			return fmt.Errorf("--ingest-tls-cert: %w", err)
		}
		cfg.ingestTLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	if cfg.ingestAddr == "" && cfg.otlpGRPC == "" {
		if len(tokens) > 0 && len(cfg.tokenFiles)+len(cfg.file.tokens) > 0 || cfg.ingestCert != "" {
			return errors.New("ingest tokens and --ingest-tls-cert need --ingest-addr (or --otlp-grpc-addr)")
		}
	}
	cfg.otlp.MaxRecords, cfg.otlp.SubmitTimeout = cfg.ingest.MaxRecords, cfg.ingest.SubmitTimeout
	cfg.es.MaxRecords, cfg.es.SubmitTimeout = cfg.ingest.MaxRecords, cfg.ingest.SubmitTimeout
	cfg.loki.MaxRecords, cfg.loki.SubmitTimeout = cfg.ingest.MaxRecords, cfg.ingest.SubmitTimeout
	return nil
}

// printPlan prints what --check-config found: what would run.
func printPlan(w io.Writer, cfg config) {
	pc := cfg.pipeline
	fmt.Fprintf(w, "config ok\n")
	fmt.Fprintf(w, "storage: %s\n", cfg.storage)
	for _, src := range cfg.dialed {
		name := src.Name
		if name == "" {
			name = "-"
		}
		var extra []string
		if len(src.Header) > 0 {
			keys := make([]string, 0, len(src.Header))
			for k := range src.Header {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			extra = append(extra, "headers "+strings.Join(keys, ","))
		}
		if src.OpenMessage != "" {
			extra = append(extra, "open message")
		}
		if src.TLS != nil {
			extra = append(extra, "tls")
		}
		fmt.Fprintf(w, "source: %s %s %s\n", name, redact.URL(src.URL), strings.Join(extra, "; "))
	}
	if cfg.ingestAddr != "" {
		names := make([]string, len(cfg.tokens))
		for i, t := range cfg.tokens {
			names[i] = t.Name
		}
		fmt.Fprintf(w, "ingest: %s tls=%t tokens=[%s] paths=%s\n", cfg.ingestAddr, cfg.ingestTLS != nil, strings.Join(names, ","), strings.Join(pushPaths, ","))
	}
	if cfg.otlpGRPC != "" {
		fmt.Fprintf(w, "otlp-grpc: %s tls=%t\n", cfg.otlpGRPC, cfg.ingestTLS != nil)
	}
	if cfg.ingestAddr != "" || cfg.otlpGRPC != "" {
		fmt.Fprintf(w, "ack: %s timeout=%s\n", cfg.sink.Ack, cfg.sink.AckTimeout)
	}
	if b := cfg.bus; b.kind == "embedded" {
		fmt.Fprintf(w, "bus: embedded dir=%s sync_interval=%s stream=%s max_bytes=%d\n", b.dataDir, b.syncInterval, b.bus.Stream, b.bus.MaxBytes)
	}
	if b := cfg.bus; b.kind == "jetstream" {
		urls := make([]string, len(b.bus.URLs))
		for i, u := range b.bus.URLs {
			urls[i] = redact.URL(u)
		}
		fmt.Fprintf(w, "bus: jetstream %s stream=%s consumer=%s role=%s token=%t creds=%t\n", strings.Join(urls, ","),
			b.bus.Stream, b.bus.Consumer, pc.Role, b.bus.Token != "", b.bus.CredsFile != "")
		if b.cluster.Name != "" {
			fmt.Fprintf(w, "cluster: %s lease=%s instance=%s\n", b.cluster.Name, b.cluster.TTL, b.cluster.Instance)
		}
	}
}

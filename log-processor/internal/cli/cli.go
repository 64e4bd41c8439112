// Package cli is the log-processor command: it parses flags, builds the
// pipeline and the HTTP API, runs them until the context ends, and stops
// them in reverse order.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/logpipeline/log-processing-service/log-processor/internal/api"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
	"github.com/logpipeline/log-processing-service/log-processor/internal/receiver"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/memory"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/sqlite"
	"github.com/logpipeline/log-processing-service/log-processor/internal/workerpool"
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
	httpAddr  string
	api       api.Options
	logLevel  string
	logFormat string

	storage   string // memory, sqlite or postgres
	dsn       string
	instance  string
	memory    memory.Config
	batch     storage.BatchConfig
	retention time.Duration
}

// openTimeout bounds opening the database at start.
const openTimeout = 30 * time.Second

// openStore opens the storage backend the flags chose.
func openStore(cfg config, logger *slog.Logger) (storage.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	logger = logger.With("component", "storage", "backend", cfg.storage)
	ret := storage.Retention{Keep: cfg.retention}
	switch cfg.storage {
	case "sqlite":
		return sqlite.Open(ctx, sqlite.Config{Path: cfg.dsn, Batch: cfg.batch, Retention: ret}, logger)
	case "postgres":
		return postgres.Open(ctx, postgres.Config{DSN: cfg.dsn, Instance: cfg.instance, Batch: cfg.batch, Retention: ret}, logger)
	}
	return memory.New(cfg.memory), nil
}

// Run runs the processor with the arguments args (without the program name)
// until ctx ends. --help prints the usage to stdout and returns nil.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, stdout, stderr, nil)
}

// run is Run with a hook called with the API's address once it listens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, listening func(net.Addr)) error {
	cfg, err := parse(args, stdout)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger, err := logging.New(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return &UsageError{err}
	}

	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("listen for API: %w", err)
	}
	store, err := openStore(cfg, logger)
	if err != nil {
		ln.Close()
		return fmt.Errorf("open storage: %w", err)
	}
	logger.Info("storage open", "backend", cfg.storage, "dsn", redactDSN(cfg.dsn))
	p := pipeline.New(cfg.pipeline, store, logger)
	srv := api.NewServer(api.NewHandler(p, cfg.api, logger), logger.With("component", "api"))
	serveErr := make(chan error, 1) // sent once by the serving goroutine
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("HTTP API listening", "addr", ln.Addr().String(), "sources", len(cfg.pipeline.URLs))
	if listening != nil {
		listening(ln.Addr())
	}

	// The pipeline stops when ctx ends, or early if the API server fails.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1) // sent once by the pipeline goroutine
	go func() { runErr <- p.Run(pctx) }()
	select {
	case serr := <-serveErr:
		cancel()
		return errors.Join(fmt.Errorf("serve API: %w", serr), <-runErr)
	case err = <-runErr:
	}

	sctx, scancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer scancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop API: %w", serr))
	}
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve API: %w", serr))
	}
	if err == nil {
		logger.Info("stopped")
	}
	return err
}

// parse reads and validates the command line.
func parse(args []string, stdout io.Writer) (config, error) {
	var cfg config
	pc := &cfg.pipeline
	fs := pflag.NewFlagSet("log-processor", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(stdout, "log-processor reads JSON logs from WebSocket sources, validates them and\n"+
			"processes them in a bounded worker pool, serving stats over HTTP.\n\n"+
			"Usage:\n  log-processor --urls ws://host:port/ws/logs[,ws://...] [flags]\n\nFlags:\n%s", fs.FlagUsages())
	}

	fs.StringSliceVarP(&pc.URLs, "urls", "u", nil, "comma-separated WebSocket URLs to read from (required; ws:// or wss://)")
	fs.StringVarP(&cfg.httpAddr, "http-addr", "a", DefaultHTTPAddr, "HTTP listen address for /healthz, /readyz and /stats")
	fs.IntVar(&pc.Pool.Workers, "workers", workerpool.DefaultWorkers, "number of workers")
	fs.IntVar(&pc.Pool.QueueSize, "queue-size", workerpool.DefaultQueueSize, "capacity of the queue in front of the workers")
	fs.DurationVar(&pc.Receiver.SubmitTimeout, "submit-timeout", receiver.DefaultSubmitTimeout, "how long a receiver waits for room in a full queue before dropping an entry")
	fs.DurationVar(&pc.ShutdownTimeout, "shutdown-timeout", pipeline.DefaultShutdownTimeout, "bound on draining the queue at shutdown")
	fs.DurationVar(&pc.Receiver.ConnectTimeout, "connect-timeout", receiver.DefaultConnectTimeout, "bound on dialing a source and its WebSocket handshake")
	fs.DurationVar(&pc.Receiver.PingInterval, "ping-interval", receiver.DefaultPingInterval, "how often to ping each source")
	fs.DurationVar(&pc.Receiver.PongWait, "pong-wait", receiver.DefaultPongWait, "a source silent this long (no frame, no pong) is reconnected; must exceed --ping-interval")
	fs.DurationVar(&pc.Receiver.IdleTimeout, "idle-timeout", 0, "reconnect a source that sent no data frame for this long (0 = off)")
	fs.DurationVar(&pc.Receiver.MaxBackoff, "max-backoff", receiver.DefaultMaxBackoff, "longest delay between reconnect attempts")
	fs.IntVar(&pc.Receiver.MaxMessageSize, "max-message-size", receiver.DefaultMaxMessageSize, "longest frame in bytes; longer frames are skipped and counted as too_large")
	fs.DurationVar(&pc.Receiver.SummaryInterval, "summary-interval", receiver.DefaultSummaryInterval, "how often each source logs its summary line while frames flow")
	fs.StringVar(&cfg.storage, "storage", "memory", "where entries go: memory, sqlite or postgres")
	fs.StringVar(&cfg.dsn, "dsn", "", "database: a file path for sqlite (logs.db), a connection string for postgres")
	fs.StringVar(&cfg.instance, "instance", hostname(), "name of this processor, recorded with every row (postgres)")
	fs.IntVar(&cfg.batch.Size, "batch-size", storage.DefaultBatchSize, "entries per database transaction (sqlite, postgres)")
	fs.DurationVar(&cfg.batch.FlushInterval, "flush-interval", storage.DefaultFlushInterval, "longest an entry waits before its batch is written (sqlite, postgres)")
	fs.DurationVar(&cfg.retention, "retention", 0, "delete entries older than this, e.g. 72h (sqlite, postgres; 0 = keep all)")
	fs.IntVar(&cfg.memory.MaxEntries, "memory-max-entries", memory.DefaultMaxEntries, "recent entries the memory store keeps for /logs")
	fs.BoolVar(&cfg.api.Pprof, "pprof", false, "serve the Go profiler at /debug/pprof/ on the API address (keep that address private)")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error (debug shows ping/pong)")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "text or json")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return cfg, err
		}
		return cfg, &UsageError{err}
	}
	if fs.NArg() > 0 {
		return cfg, &UsageError{fmt.Errorf("unexpected argument %q (sources go in --urls)", fs.Arg(0))}
	}
	if err := validate(&cfg); err != nil {
		return cfg, &UsageError{err}
	}
	return cfg, nil
}

func validate(cfg *config) error {
	pc := &cfg.pipeline
	if len(pc.URLs) == 0 {
		return errors.New("--urls is required: give one or more ws:// or wss:// URLs")
	}
	seen := make(map[string]bool, len(pc.URLs))
	for i, raw := range pc.URLs {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("--urls: %q is not a ws:// or wss:// URL", raw)
		}
		if seen[raw] {
			return fmt.Errorf("--urls: %q is listed twice", raw)
		}
		seen[raw] = true
		pc.URLs[i] = raw
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"--workers", int64(pc.Pool.Workers)},
		{"--queue-size", int64(pc.Pool.QueueSize)},
		{"--max-message-size", int64(pc.Receiver.MaxMessageSize)},
		{"--submit-timeout", int64(pc.Receiver.SubmitTimeout)},
		{"--shutdown-timeout", int64(pc.ShutdownTimeout)},
		{"--connect-timeout", int64(pc.Receiver.ConnectTimeout)},
		{"--ping-interval", int64(pc.Receiver.PingInterval)},
		{"--pong-wait", int64(pc.Receiver.PongWait)},
		{"--max-backoff", int64(pc.Receiver.MaxBackoff)},
		{"--summary-interval", int64(pc.Receiver.SummaryInterval)},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("%s must be greater than zero", p.name)
		}
	}
	switch cfg.storage {
	case "memory":
		if cfg.dsn != "" {
			return errors.New("--dsn is for --storage sqlite or postgres; the memory store takes none")
		}
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
	} {
		if p.v <= 0 {
			return fmt.Errorf("%s must be greater than zero", p.name)
		}
	}
	if cfg.retention < 0 {
		return errors.New("--retention must not be negative")
	}
	if pc.Receiver.IdleTimeout < 0 {
		return errors.New("--idle-timeout must not be negative")
	}
	if pc.Receiver.PongWait <= pc.Receiver.PingInterval {
		return fmt.Errorf("--pong-wait (%s) must be longer than --ping-interval (%s)", pc.Receiver.PongWait, pc.Receiver.PingInterval)
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

// redactDSN hides a password in a connection URL before it is logged.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	if strings.Contains(dsn, "password=") {
		return "(connection string with password)"
	}
	return dsn
}

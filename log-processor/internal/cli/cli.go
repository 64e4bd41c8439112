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
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/logpipeline/log-processing-service/log-processor/internal/api"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
	"github.com/logpipeline/log-processing-service/log-processor/internal/receiver"
	"github.com/logpipeline/log-processing-service/log-processor/internal/redact"
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

	apiTokenFile string

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

// WithHardStop returns ctx carrying hard: when hard ends while Run drains
// (the second Ctrl+C), the drain is abandoned and its report still says
// what was lost.
func WithHardStop(ctx, hard context.Context) context.Context { return pipeline.WithHardStop(ctx, hard) }

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
	logger.Info("storage open", "backend", cfg.storage, "dsn", redact.DSN(cfg.dsn))
	p := pipeline.New(cfg.pipeline, store, logger)
	srv := api.NewServer(api.NewHandler(p, cfg.api, logger), logger.With("component", "api"))
	serveErr := make(chan error, 1) // sent once by the serving goroutine
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("HTTP API listening", "addr", ln.Addr().String(), "sources", len(cfg.pipeline.URLs), "token_required", cfg.api.Token != "")
	if cfg.api.Token == "" && !loopback(ln.Addr()) {
		logger.Warn("the API serves stored logs on "+ln.Addr().String()+" to anyone who can reach it; "+
			"set "+apiTokenEnv+" (or --api-token-file) to require a token, or listen on 127.0.0.1", "component", "api")
	}
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

	fs.StringSliceVarP(&pc.URLs, "urls", "u", nil, "comma-separated WebSocket URLs to read from (required; ws:// or wss://); NAME=URL names a source")
	fs.StringVarP(&cfg.httpAddr, "http-addr", "a", DefaultHTTPAddr, "HTTP listen address for the API: /healthz, /readyz, /stats, /logs (and /debug/pprof with --pprof)")
	fs.IntVar(&pc.Pool.Workers, "workers", workerpool.DefaultWorkers, "number of workers")
	fs.IntVar(&pc.Pool.QueueSize, "queue-size", workerpool.DefaultQueueSize, "capacity of the queue in front of the workers, in entries")
	sizeVar(fs, &pc.Pool.QueueBytes, "queue-max-bytes", workerpool.DefaultQueueBytes, "bound on the memory of the entries in the queue and the workers")
	fs.DurationVar(&pc.Receiver.SubmitTimeout, "submit-timeout", receiver.DefaultSubmitTimeout, "how long a receiver waits for room in a full queue before dropping an entry")
	fs.DurationVar(&pc.ShutdownTimeout, "shutdown-timeout", pipeline.DefaultShutdownTimeout, "bound on draining the queue at shutdown")
	fs.DurationVar(&pc.Receiver.ConnectTimeout, "connect-timeout", receiver.DefaultConnectTimeout, "bound on dialing a source and its WebSocket handshake")
	fs.DurationVar(&pc.Receiver.PingInterval, "ping-interval", receiver.DefaultPingInterval, "how often to ping each source")
	fs.DurationVar(&pc.Receiver.PongWait, "pong-wait", receiver.DefaultPongWait, "a source silent this long (no frame, no pong) is reconnected; must exceed --ping-interval")
	fs.DurationVar(&pc.Receiver.IdleTimeout, "idle-timeout", 0, "reconnect a source that sent no data frame for this long (0 = off)")
	fs.DurationVar(&pc.Receiver.MaxBackoff, "max-backoff", receiver.DefaultMaxBackoff, "longest delay between reconnect attempts")
	fs.IntVar(&pc.Receiver.MaxMessageSize, "max-message-size", receiver.DefaultMaxMessageSize, "longest frame in bytes; longer frames are skipped and counted as too_large")
	sizeVar(fs, &pc.Receiver.MaxHandshakeBytes, "max-handshake-bytes", receiver.DefaultMaxHandshakeBytes, "longest upgrade response (status line and headers) a source may send")
	sizeVar(fs, &pc.Receiver.Parser.MaxMessageBytes, "message-max-bytes", parser.DefaultMaxMessageBytes, "longest message field; longer entries are counted as field_too_long")
	sizeVar(fs, &pc.Receiver.Parser.MaxNameBytes, "name-max-bytes", parser.DefaultMaxNameBytes, "longest service or component field")
	sizeVar(fs, &pc.Receiver.Parser.MaxIDBytes, "id-max-bytes", parser.DefaultMaxIDBytes, "longest trace_id, span_id or parent_id field")
	sizeVar(fs, &pc.Receiver.Parser.MaxAttrsBytes, "attrs-max-bytes", parser.DefaultMaxAttrsBytes, "most bytes of other fields kept with an entry as attributes; the rest are left out")
	pc.Receiver.Parser.MinLevel = parser.LevelInfo
	fs.Var(levelFlag{&pc.Receiver.Parser.MinLevel}, "min-level", "lowest level stored: debug, info, warn or error; entries below it are counted as below_min_level")
	fs.DurationVar(&pc.Receiver.SummaryInterval, "summary-interval", receiver.DefaultSummaryInterval, "how often each source logs its summary line while frames flow")
	fs.StringVar(&cfg.storage, "storage", "memory", "where entries go: memory, sqlite or postgres")
	fs.StringVar(&cfg.dsn, "dsn", "", "database: a file path for sqlite (logs.db), a connection string for postgres")
	fs.StringVar(&cfg.instance, "instance", hostname(), "name of this processor, recorded with every row (postgres)")
	fs.IntVar(&cfg.batch.Size, "batch-size", storage.DefaultBatchSize, "entries per database transaction (sqlite, postgres)")
	sizeVar(fs, &cfg.batch.MaxBytes, "batch-max-bytes", storage.DefaultBatchBytes, "bytes per database transaction, at most (sqlite, postgres)")
	fs.IntVar(&cfg.batch.RejectedKeep, "rejected-keep", storage.DefaultRejectedKeep, "entries the database refused kept for GET /logs/rejected (sqlite, postgres)")
	fs.DurationVar(&cfg.batch.FlushInterval, "flush-interval", storage.DefaultFlushInterval, "longest an entry waits before its batch is written (sqlite, postgres)")
	fs.DurationVar(&cfg.retention, "retention", 0, "delete entries older than this, e.g. 72h (sqlite, postgres; 0 = keep all)")
	fs.IntVar(&cfg.memory.MaxEntries, "memory-max-entries", memory.DefaultMaxEntries, "recent entries the memory store keeps for /logs")
	sizeVar(fs, &cfg.memory.MaxBytes, "memory-max-bytes", memory.DefaultMaxBytes, "bound on the memory of the entries the memory store keeps")
	fs.IntVar(&pc.TopServices, "stats-top-services", storage.DefaultTopServices, "services named in /stats counts; the rest are summed as (other)")
	fs.IntVar(&cfg.api.MaxQueries, "max-queries", api.DefaultMaxQueries, "/logs queries served at once; more get 503 with Retry-After")
	fs.StringVar(&cfg.api.Token, "api-token", "", "bearer token that /logs and /debug/pprof require (default $LOGPROC_API_TOKEN); prefer the variable or --api-token-file")
	fs.StringVar(&cfg.apiTokenFile, "api-token-file", "", "file holding the API token (its first line)")
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
	if err := checkBackendFlags(fs, cfg.storage); err != nil {
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
	{"rejected-keep", []string{"sqlite", "postgres"}},
	{"instance", []string{"postgres"}},
	{"memory-max-entries", []string{"memory"}},
	{"memory-max-bytes", []string{"memory"}},
}

func checkBackendFlags(fs *pflag.FlagSet, backend string) error {
	for _, bf := range backendFlags {
		if fs.Changed(bf.flag) && !slices.Contains(bf.backends, backend) {
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
		b, err := os.ReadFile(cfg.apiTokenFile)
		if err != nil {
			return fmt.Errorf("--api-token-file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if cfg.api.Token = strings.TrimSpace(line); cfg.api.Token == "" {
			return fmt.Errorf("--api-token-file: %s holds no token", cfg.apiTokenFile)
		}
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
	pc := &cfg.pipeline
	// Empty entries (a trailing or doubled comma) are left out.
	pc.URLs = slices.DeleteFunc(pc.URLs, func(u string) bool { return strings.TrimSpace(u) == "" })
	if len(pc.URLs) == 0 {
		return errors.New("--urls is required: give one or more ws:// or wss:// URLs")
	}
	seen := make(map[string]bool, len(pc.URLs))
	pc.Names = make([]string, len(pc.URLs))
	for i, raw := range pc.URLs {
		raw = strings.TrimSpace(raw)
		// NAME=ws://... names the source.
		if name, rest, ok := strings.Cut(raw, "="); ok && !strings.Contains(name, "://") {
			if !validName(name) {
				return fmt.Errorf("--urls: source name %q: use letters, digits, '.', '_' and '-' (at most %d)", name, maxSourceName)
			}
			if seen["name:"+name] {
				return fmt.Errorf("--urls: source name %q is used twice", name)
			}
			seen["name:"+name] = true
			pc.Names[i], raw = name, strings.TrimSpace(rest)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			return fmt.Errorf("--urls: %q is not a ws:// or wss:// URL", redact.URL(raw))
		}
		if seen[raw] {
			return fmt.Errorf("--urls: %q is listed twice", redact.URL(raw))
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
		{"--rejected-keep", int64(cfg.batch.RejectedKeep)},
		{"--queue-max-bytes", pc.Pool.QueueBytes},
		{"--max-handshake-bytes", int64(pc.Receiver.MaxHandshakeBytes)},
		{"--message-max-bytes", int64(pc.Receiver.Parser.MaxMessageBytes)},
		{"--name-max-bytes", int64(pc.Receiver.Parser.MaxNameBytes)},
		{"--id-max-bytes", int64(pc.Receiver.Parser.MaxIDBytes)},
		{"--attrs-max-bytes", int64(pc.Receiver.Parser.MaxAttrsBytes)},
		{"--stats-top-services", int64(pc.TopServices)},
		{"--max-queries", int64(cfg.api.MaxQueries)},
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

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
	"github.com/logpipeline/log-processing-service/log-processor/internal/ingest"
	"github.com/logpipeline/log-processing-service/log-processor/internal/metrics"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
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
	ingestCert string
	ingestKey  string
	ingestTLS  *tls.Config // from ingestCert and ingestKey
	tokenFiles []string    // NAME=PATH

	storage   string // memory, sqlite or postgres
	dsn       string
	instance  string
	memory    memory.Config
	batch     storage.BatchConfig
	retention time.Duration

	bus busConfig
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

// openBus connects to NATS and makes sure of the stream.
func openBus(cfg config, logger *slog.Logger) (*bus.Bus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	b, err := bus.Open(ctx, cfg.bus.bus, logger.With("component", "bus"))
	if err != nil {
		return nil, err
	}
	st := b.Status()
	logger.Info("bus open", "component", "bus", "servers", st.Servers, "stream", st.Stream, "consumer", st.Consumer, "role", cfg.pipeline.Role)
	return b, nil
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
	for _, name := range cfg.file.insecure {
		logger.Warn("source "+name+" skips TLS certificate verification (insecure_skip_verify): anyone on the path can read and forge its logs", "component", "receiver")
	}

	ln, err := net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return fmt.Errorf("listen for API: %w", err)
	}
	var iln net.Listener
	if cfg.ingestAddr != "" {
		if iln, err = net.Listen("tcp", cfg.ingestAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen for ingest: %w", err)
		}
		if cfg.ingestTLS != nil {
			iln = tls.NewListener(iln, cfg.ingestTLS)
		}
	}
	closeListeners := func() {
		ln.Close()
		if iln != nil {
			iln.Close()
		}
	}
	store, err := openStore(cfg, logger)
	if err != nil {
		closeListeners()
		return fmt.Errorf("open storage: %w", err)
	}
	logger.Info("storage open", "backend", cfg.storage, "dsn", redact.DSN(cfg.dsn))
	if cfg.bus.kind == "jetstream" {
		b, err := openBus(cfg, logger)
		if err != nil {
			_ = store.Close(context.Background())
			closeListeners()
			return err
		}
		defer b.Close() // after the pipeline has drained into it
		cfg.pipeline.Bus = b
	}
	p, err := pipeline.New(cfg.pipeline, store, logger)
	if err != nil {
		_ = store.Close(context.Background())
		closeListeners()
		return err
	}
	cfg.api.Metrics = metrics.Handler(metrics.NewRegistry(p, buildinfo.Read(), true))
	tailDone := make(chan struct{})
	cfg.api.Done = tailDone
	srv := api.NewServer(api.NewHandler(p, cfg.api, logger), logger.With("component", "api"))
	srv.RegisterOnShutdown(func() { close(tailDone) }) // tail streams end with the server
	serveErr := make(chan error, 2)                    // sent once by each serving goroutine
	go func() { serveErr <- srv.Serve(ln) }()
	logger.Info("HTTP API listening", "addr", ln.Addr().String(), "sources", len(cfg.pipeline.URLs)+len(cfg.pipeline.Sources), "token_required", cfg.api.Token != "")
	if cfg.api.Token == "" && !loopback(ln.Addr()) {
		logger.Warn("the API serves stored logs on "+ln.Addr().String()+" to anyone who can reach it; "+
			"set "+apiTokenEnv+" (or --api-token-file) to require a token, or listen on 127.0.0.1", "component", "api")
	}
	if listening != nil {
		listening(ln.Addr())
	}
	var isrv *http.Server
	if cfg.ingestAddr != "" {
		isrv = api.NewServer(p.IngestHandler(), logger.With("component", "ingest"))
		go func() { serveErr <- isrv.Serve(iln) }()
		logger.Info("ingest listening", "addr", iln.Addr().String(), "tls", cfg.ingestTLS != nil, "tokens", len(cfg.ingest.Tokens),
			"paths", ingest.PathWS+" "+ingest.PathHTTP, "component", "ingest")
		if len(cfg.ingest.Tokens) == 0 && !loopback(iln.Addr()) {
			logger.Warn("the ingest address accepts logs from anyone who can reach it; give tokens (ingest-tokens in --config, "+
				"--ingest-token-file or $"+ingestTokenEnv+")", "component", "ingest")
		}
		if listening != nil {
			listening(iln.Addr())
		}
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
	servers := []*http.Server{srv}
	if isrv != nil {
		servers = append(servers, isrv)
	}
	for _, s := range servers {
		if serr := s.Shutdown(sctx); serr != nil {
			// A client holding a connection it never sent a request on
			// keeps Shutdown waiting; that is no failure of ours.
			logger.Warn("HTTP server: connections still open at shutdown; closing them", "err", serr)
			s.Close()
		}
	}
	for range servers {
		if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, fmt.Errorf("serve HTTP: %w", serr))
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
	pc := &cfg.pipeline
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
	fs.StringSliceVarP(&pc.URLs, "urls", "u", nil, "comma-separated WebSocket URLs to read from (ws:// or wss://); NAME=URL names a source")
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
	pc.Receiver.Parser.DefaultLevel = parser.LevelInfo
	fs.Var(levelFlag{&pc.Receiver.Parser.DefaultLevel}, "default-level", "level given to log lines that name none (a message without a level): debug, info, warn or error; counted as default_level")
	fs.DurationVar(&pc.Receiver.SummaryInterval, "summary-interval", receiver.DefaultSummaryInterval, "how often each source logs its summary line while frames flow")
	fs.StringVar(&cfg.storage, "storage", "memory", "where entries go: memory, sqlite or postgres")
	fs.StringVar(&cfg.dsn, "dsn", "", "database: a file path for sqlite (logs.db), a connection string for postgres")
	fs.StringVar(&cfg.instance, "instance", hostname(), "name of this processor, recorded with every row (postgres) and shown to NATS and the fleet (--bus jetstream)")
	fs.IntVar(&cfg.batch.Size, "batch-size", storage.DefaultBatchSize, "entries per database transaction (sqlite, postgres)")
	sizeVar(fs, &cfg.batch.MaxBytes, "batch-max-bytes", storage.DefaultBatchBytes, "bytes per database transaction, at most (sqlite, postgres)")
	fs.IntVar(&cfg.batch.RejectedKeep, "rejected-keep", storage.DefaultRejectedKeep, "entries the database refused kept for GET /logs/rejected (sqlite, postgres)")
	fs.DurationVar(&cfg.batch.FlushInterval, "flush-interval", storage.DefaultFlushInterval, "longest an entry waits before its batch is written (sqlite, postgres)")
	fs.DurationVar(&cfg.retention, "retention", 0, "delete entries older than this, e.g. 72h (sqlite, postgres; 0 = keep all)")
	fs.IntVar(&cfg.memory.MaxEntries, "memory-max-entries", memory.DefaultMaxEntries, "recent entries the memory store keeps for /logs")
	sizeVar(fs, &cfg.memory.MaxBytes, "memory-max-bytes", memory.DefaultMaxBytes, "bound on the memory of the entries the memory store keeps")
	fs.IntVar(&pc.TopServices, "stats-top-services", storage.DefaultTopServices, "services named in /stats counts; the rest are summed as (other)")
	fs.IntVar(&cfg.api.MaxQueries, "max-queries", api.DefaultMaxQueries, "/logs queries served at once; more get 503 with Retry-After")
	fs.IntVar(&pc.TailClients, "tail-max-clients", tail.DefaultMaxClients, "clients following /logs/tail at once (the dashboard is one); more get 503")
	fs.StringVar(&cfg.api.Token, "api-token", "", "bearer token that /logs and /debug/pprof require (default $LOGPROC_API_TOKEN); prefer the variable or --api-token-file")
	fs.StringVar(&cfg.apiTokenFile, "api-token-file", "", "file holding the API token (its first line)")
	fs.BoolVar(&cfg.api.Pprof, "pprof", false, "serve the Go profiler at /debug/pprof/ on the API address (keep that address private)")
	fs.StringVar(&cfg.ingestAddr, "ingest-addr", "", "listen address for pushed logs: GET /ws/ingest (WebSocket) and POST /ingest (NDJSON); off when empty")
	fs.StringSliceVar(&cfg.tokenFiles, "ingest-token-file", nil, "NAME=PATH: a token pushers may present, read from PATH's first line (repeatable; also $"+ingestTokenEnv+" as \"default\")")
	fs.StringVar(&cfg.ingestCert, "ingest-tls-cert", "", "certificate (PEM) to serve the ingest address over TLS; with --ingest-tls-key")
	fs.StringVar(&cfg.ingestKey, "ingest-tls-key", "", "private key (PEM) of --ingest-tls-cert")
	sizeVar(fs, &cfg.ingest.MaxBodyBytes, "ingest-max-body-bytes", ingest.DefaultMaxBodyBytes, "largest pushed HTTP body (after gzip) or WebSocket frame; larger bodies get 413")
	fs.IntVar(&cfg.ingest.MaxClients, "ingest-max-clients", ingest.DefaultMaxClients, "WebSocket pushers connected at once; more get 503")
	fs.DurationVar(&cfg.ingest.SubmitTimeout, "ingest-submit-timeout", ingest.DefaultSubmitTimeout, "how long a pushed HTTP request waits for room in a full queue before 503")
	busFlags(fs, &cfg.bus)
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
	{"rejected-keep", []string{"sqlite", "postgres"}},
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
	pc := &cfg.pipeline
	// Empty entries (a trailing or doubled comma) are left out.
	pc.URLs = slices.DeleteFunc(pc.URLs, func(u string) bool { return strings.TrimSpace(u) == "" })
	if len(pc.URLs) == 0 && len(cfg.file.sources) == 0 && cfg.ingestAddr == "" && pc.Role != pipeline.RoleStore {
		return errors.New("no sources: give --urls (ws:// or wss:// URLs), sources in --config, or --ingest-addr to receive pushes")
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
		// As in the config file, the same URL may serve two named sources.
		if pc.Names[i] == "" && seen[raw] {
			return fmt.Errorf("--urls: %q is listed twice (name them to read it twice: NAME=URL)", redact.URL(raw))
		}
		seen[raw] = true
		pc.URLs[i] = raw
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
	}
	pc.Sources = cfg.file.sources
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
		{"--tail-max-clients", int64(pc.TailClients)},
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

// ingestTokenEnv is the environment variable a pusher token may come from;
// it is named "default".
const ingestTokenEnv = "LOGPROC_INGEST_TOKEN"

// setupIngest gathers the ingest tokens and TLS certificate, and turns
// the ingest endpoints on when --ingest-addr is set.
func setupIngest(cfg *config) error {
	tokens := append([]ingest.Token(nil), cfg.file.tokens...)
	for _, nf := range cfg.tokenFiles {
		name, path, ok := strings.Cut(nf, "=")
		if !ok || !validName(name) || path == "" {
			return fmt.Errorf("--ingest-token-file %q: want NAME=PATH, NAME of letters, digits, '.', '_' and '-'", nf)
		}
		v, err := readFileValue(path)
		if err != nil {
			return fmt.Errorf("--ingest-token-file %s: %w", name, err)
		}
		tokens = append(tokens, ingest.Token{Name: name, Value: v})
	}
	if v := strings.TrimSpace(os.Getenv(ingestTokenEnv)); v != "" {
		tokens = append(tokens, ingest.Token{Name: "default", Value: v})
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
	cfg.ingest.Tokens = tokens
	if (cfg.ingestCert == "") != (cfg.ingestKey == "") {
		return errors.New("give --ingest-tls-cert and --ingest-tls-key together")
	}
	if cfg.ingestCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.ingestCert, cfg.ingestKey)
		if err != nil {
			return fmt.Errorf("--ingest-tls-cert: %w", err)
		}
		cfg.ingestTLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	if cfg.ingestAddr == "" {
		if len(tokens) > 0 && len(cfg.tokenFiles)+len(cfg.file.tokens) > 0 || cfg.ingestCert != "" {
			return errors.New("ingest tokens and --ingest-tls-cert need --ingest-addr")
		}
		return nil
	}
	cfg.pipeline.Ingest = &cfg.ingest
	return nil
}

// printPlan prints what --check-config found: what would run.
func printPlan(w io.Writer, cfg config) {
	pc := cfg.pipeline
	fmt.Fprintf(w, "config ok\n")
	fmt.Fprintf(w, "storage: %s\n", cfg.storage)
	for i, u := range pc.URLs {
		name := pc.Names[i]
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(w, "source: %s %s\n", name, redact.URL(u))
	}
	for _, src := range pc.Sources {
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
		names := make([]string, len(cfg.ingest.Tokens))
		for i, t := range cfg.ingest.Tokens {
			names[i] = t.Name
		}
		fmt.Fprintf(w, "ingest: %s tls=%t tokens=[%s]\n", cfg.ingestAddr, cfg.ingestTLS != nil, strings.Join(names, ","))
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

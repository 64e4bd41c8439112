// Package cli is the mock-log-generator command: it parses flags, serves
// /ws/logs until the context ends, then closes every connection with a
// close frame and returns.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/logpipeline/log-processing-service/mock-log-generator/internal/ws"
	"github.com/logpipeline/log-processing-service/pkg/buildinfo"
	"github.com/logpipeline/log-processing-service/pkg/logging"
)

// DefaultAddr is the listen address unless --url says otherwise.
const DefaultAddr = ":8080"

// Server timeouts. Once a connection is upgraded the WebSocket code sets
// its own deadlines; these bound the HTTP request before that.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	shutdownTimeout   = 5 * time.Second
)

// UsageError is a problem with the command line; the command exits with
// status 2 for it.
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

type config struct {
	addr       string
	intervalMs int
	ws         ws.Config
	version    bool
	tlsCert    string
	tlsKey     string
	clientCA   string
	tls        *tls.Config // from tlsCert and tlsKey
	push       ws.PushConfig
	pushCA     string
	logLevel   string
	logFormat  string
}

// Run runs the generator with args (without the program name) until ctx
// ends. --help prints the usage to stdout and returns nil.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, stdout, stderr, nil)
}

// run is Run with a hook called with the listen address once it listens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, listening func(net.Addr)) error {
	cfg, err := parse(args, stdout)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.version {
		fmt.Fprintln(stdout, "mock-log-generator", buildinfo.Read())
		return nil
	}
	logger, err := logging.New(stderr, cfg.logLevel, cfg.logFormat)
	if err != nil {
		return &UsageError{err}
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if cfg.tls != nil {
		ln = tls.NewListener(ln, cfg.tls)
	}
	wss := ws.NewServer(cfg.ws, logger)
	srv := &http.Server{
		Handler:           handler(wss, true),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	serveErr := make(chan error, 1) // sent once by the serving goroutine
	go func() { serveErr <- srv.Serve(ln) }()
	logger = logger.With("component", "generator")
	logger.Info("mock log generator listening", "addr", ln.Addr().String(), "endpoint", "/ws/logs",
		"interval_ms", cfg.intervalMs, "tls", cfg.tls != nil, "token_required", cfg.ws.Token != "")
	pushDone := make(chan error, 1)
	pctx, stopPush := context.WithCancel(ctx)
	defer stopPush()
	if cfg.push.URL != "" {
		go func() { pushDone <- ws.Push(pctx, cfg.push, logger) }()
	} else {
		pushDone <- nil
	}
	if listening != nil {
		listening(ln.Addr())
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: closing connections")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	// Stop accepting first, then say goodbye to the upgraded connections,
	// which http.Server.Shutdown does not track.
	err = srv.Shutdown(sctx)
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	err = errors.Join(err, wss.Close(sctx))
	stopPush()
	err = errors.Join(err, <-pushDone)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// checkOriginHost accepts a host or host:port, as an Origin header names it.
func checkOriginHost(o string) error {
	if o == "" {
		return errors.New("an empty entry (a stray comma?)")
	}
	u, err := url.Parse("http://" + o)
	if err != nil || u.Host != o || u.Hostname() == "" || strings.ContainsAny(o, " /@?#") {
		return fmt.Errorf("%q is not a host or host:port, such as example.com or example.com:8443", o)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has no valid port", o)
		}
	}
	return nil
}

func parse(args []string, stdout io.Writer) (config, error) {
	var cfg config
	fs := pflag.NewFlagSet("mock-log-generator", pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	fs.Usage = func() {
		fmt.Fprintf(stdout, "mock-log-generator serves JSON log messages over WebSocket at /ws/logs.\n\n"+
			"Usage:\n  mock-log-generator [flags]\n\nFlags:\n%s\n"+
			"%s", fs.FlagUsages(), ws.QueryHelp)
	}
	fs.BoolVar(&cfg.version, "version", false, "print the version and exit")
	fs.StringVarP(&cfg.addr, "url", "u", DefaultAddr, "HTTP listen address, e.g. :8080 or 127.0.0.1:8080")
	fs.IntVarP(&cfg.intervalMs, "interval-ms", "i", 0, "default interval between messages in ms (0 = random per connection, 10-1000 ms; clients may override with ?interval_ms=N)")
	fs.IntVar(&cfg.ws.MaxConns, "max-conns", ws.DefaultMaxConns, "most WebSocket connections served at once; more are answered 503")
	fs.StringSliceVar(&cfg.ws.AllowedOrigins, "allowed-origins", nil, "Origin hosts browsers may connect from (default: any)")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "certificate (PEM) to serve wss:// instead of ws://; with --tls-key")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "private key (PEM) of --tls-cert")
	fs.StringVar(&cfg.clientCA, "tls-client-ca", "", "CA certificate (PEM): require clients to present a certificate it signed (mutual TLS); with --tls-cert")
	fs.StringVar(&cfg.ws.Token, "token", "", "bearer token clients must present (Authorization: Bearer, or ?token=); 401 otherwise (default $"+tokenEnv+")")
	fs.StringVar(&cfg.push.URL, "push-to", "", "also push logs to a processor's ingest endpoint: ws://host:port/ws/ingest or http://host:port/ingest")
	fs.StringVar(&cfg.push.Token, "push-token", "", "bearer token for --push-to (default $"+pushTokenEnv+")")
	fs.StringVar(&cfg.push.Params, "push-params", "", "the pushed stream's settings, as the query parameters above: e.g. rate=1000&count=50000")
	fs.IntVar(&cfg.push.Batch, "push-batch", ws.DefaultPushBatch, "lines per pushed frame or request")
	fs.StringVar(&cfg.pushCA, "push-ca", "", "CA certificate (PEM) to verify a wss:// or https:// --push-to (default: the system's roots)")
	fs.StringVar(&cfg.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "text or json")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return cfg, err
		}
		return cfg, &UsageError{err}
	}
	switch {
	case fs.NArg() > 0:
		return cfg, &UsageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	case cfg.intervalMs < 0 || cfg.intervalMs > 3_600_000:
		return cfg, &UsageError{fmt.Errorf("--interval-ms must be 0 to 3600000, got %d", cfg.intervalMs)}
	case cfg.ws.MaxConns <= 0:
		return cfg, &UsageError{fmt.Errorf("--max-conns must be greater than zero")}
	}
	if fs.Changed("allowed-origins") && len(cfg.ws.AllowedOrigins) == 0 {
		return cfg, &UsageError{errors.New("--allowed-origins: an empty entry (leave the flag out to allow any origin)")}
	}
	for _, o := range cfg.ws.AllowedOrigins {
		if err := checkOriginHost(o); err != nil {
			return cfg, &UsageError{fmt.Errorf("--allowed-origins: %w", err)}
		}
	}
	cfg.ws.Interval = time.Duration(cfg.intervalMs) * time.Millisecond
	if cfg.ws.Token == "" {
		cfg.ws.Token = strings.TrimSpace(os.Getenv(tokenEnv))
	}
	if cfg.push.Token == "" {
		cfg.push.Token = strings.TrimSpace(os.Getenv(pushTokenEnv))
	}
	cfg.push.Interval = cfg.ws.Interval
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return cfg, &UsageError{errors.New("give --tls-cert and --tls-key together")}
	}
	if cfg.tlsCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return cfg, &UsageError{fmt.Errorf("--tls-cert: %w", err)}
		}
		cfg.tls = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	if cfg.clientCA != "" {
		if cfg.tls == nil {
			return cfg, &UsageError{errors.New("--tls-client-ca needs --tls-cert and --tls-key")}
		}
		pool, err := certPool("--tls-client-ca", cfg.clientCA)
		if err != nil {
			return cfg, err
		}
		cfg.tls.ClientCAs, cfg.tls.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	if cfg.push.Batch <= 0 {
		return cfg, &UsageError{errors.New("--push-batch must be greater than zero")}
	}
	if cfg.pushCA != "" {
		pool, err := certPool("--push-ca", cfg.pushCA)
		if err != nil {
			return cfg, err
		}
		cfg.push.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if cfg.push.URL != "" {
		u, err := url.Parse(cfg.push.URL)
		if err != nil || u.Host == "" || !slices.Contains([]string{"ws", "wss", "http", "https"}, u.Scheme) {
			return cfg, &UsageError{fmt.Errorf("--push-to %q: want ws://, wss://, http:// or https://host:port/path", cfg.push.URL)}
		}
		if err := ws.CheckParams(cfg.push.Params); err != nil {
			return cfg, &UsageError{fmt.Errorf("--push-params: %w", err)}
		}
	}
	return cfg, nil
}

// certPool reads the CA certificates (PEM) in path, named by flag.
func certPool(flag, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, &UsageError{fmt.Errorf("%s: %w", flag, err)}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, &UsageError{fmt.Errorf("%s: %s holds no PEM certificate", flag, path)}
	}
	return pool, nil
}

// The environment variables the tokens may come from.
const (
	tokenEnv     = "MOCKGEN_TOKEN"
	pushTokenEnv = "MOCKGEN_PUSH_TOKEN"
)

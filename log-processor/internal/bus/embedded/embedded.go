// Package embedded runs a NATS server with JetStream inside the processor:
// the message bus's durable queue for one processor on one machine, with
// no server to run beside it. It listens on no port; the bus connects to
// it in-process (nats.InProcessServer), so that everything above the
// connection is the code that talks to an external JetStream.
//
// The stream's files live under Config.Dir. Every write is synced to disk
// before the stream acknowledges it unless Config.SyncInterval says
// otherwise: an acknowledged entry survives kill -9 either way (it is in
// the operating system's cache), and power loss when synced.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultStoreMargin is what the server may store beyond the stream's
// bound (Config.MaxBytes): the consumer's state and the files' overhead.
const DefaultStoreMargin = 64 << 20

// startTimeout bounds the server's start, which reads back the stream's
// files: seconds for a large backlog.
const startTimeout = 5 * time.Minute

// Config describes the embedded server.
type Config struct {
	// Dir is the directory of the server's files (created when
	// missing); required.
	Dir string
	// MaxBytes bounds the server's disk use: the stream's bound plus
	// DefaultStoreMargin.
	MaxBytes int64
	// SyncInterval is how often written data is synced to disk; zero
	// syncs every write before it is acknowledged.
	SyncInterval time.Duration
	// Name names the server (the processor's instance).
	Name string
}

// Server is a running embedded NATS server. Close stops it.
type Server struct {
	ns  *server.Server
	dir string
}

// Start starts the server and waits until it takes connections, which
// includes reading back what its files hold.
func Start(cfg Config, logger *slog.Logger) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded bus: no directory")
	}
	dir, err := filepath.Abs(filepath.Join(cfg.Dir, "bus"))
	if err != nil {
		return nil, fmt.Errorf("embedded bus: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded bus: %w", err)
	}
	opts := &server.Options{
		ServerName:        cfg.Name,
		DontListen:        true, // in-process connections only
		NoSigs:            true, // the processor owns the signals
		JetStream:         true,
		StoreDir:          dir,
		JetStreamMaxStore: cfg.MaxBytes + DefaultStoreMargin,
		// The stream is on file; nothing is kept in memory but caches.
		JetStreamMaxMemory: 16 << 20,
		SyncInterval:       cfg.SyncInterval,
		SyncAlways:         cfg.SyncInterval <= 0,
	}
	if cfg.MaxBytes <= 0 {
		opts.JetStreamMaxStore = 0 // the server's own default
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded bus: %w", err)
	}
	ns.SetLoggerV2(logAdapter{logger}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(startTimeout) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded bus: not ready within %s (its files are in %s)", startTimeout, dir)
	}
	return &Server{ns: ns, dir: dir}, nil
}

// InProcessConn is a connection to the server, for nats.InProcessServer.
func (s *Server) InProcessConn() (net.Conn, error) { return s.ns.InProcessConn() }

// Dir returns the directory of the server's files.
func (s *Server) Dir() string { return s.dir }

// Close shuts the server down, waiting for it: after the bus connection
// is closed.
func (s *Server) Close() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// logAdapter writes the server's log through slog: its notices (the start
// banner, for one) at Debug, warnings and errors as such.
type logAdapter struct{ log *slog.Logger }

func (l logAdapter) Noticef(format string, v ...any) { l.debug(format, v) }
func (l logAdapter) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l logAdapter) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l logAdapter) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l logAdapter) Debugf(format string, v ...any)  { l.debug(format, v) }
func (l logAdapter) Tracef(string, ...any)           {}

func (l logAdapter) debug(format string, v []any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, v...))
	}
}

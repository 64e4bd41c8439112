// Package bus puts NATS JetStream between the processors that read sources
// and the processors that write storage. Receivers publish entries through
// a Publisher, which packs many into each stream message; writers read the
// stream through a Consumer shared by every processor (one durable pull
// consumer: each message goes to one of them) and acknowledge a message
// only once storage has committed its entries. A writer that dies before
// acknowledging means the message is delivered again; storage keeps each
// entry once by its models.BusID.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/logpipeline/log-processing-service/log-processor/internal/redact"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Defaults for the zero fields of Config.
const (
	DefaultURL          = nats.DefaultURL
	DefaultStream       = "LOGS"
	DefaultSubject      = "logs.entries"
	DefaultConsumer     = "writers"
	DefaultMaxAge       = 24 * time.Hour
	DefaultMaxBytes     = 1 << 30
	DefaultReplicas     = 1
	DefaultBatch        = 500
	DefaultBatchBytes   = 512 << 10
	DefaultLinger       = 20 * time.Millisecond
	DefaultMaxPending   = 8
	DefaultFetch        = 8
	DefaultFetchers     = 2
	DefaultAckWait      = 30 * time.Second
	DefaultDupWindow    = 2 * time.Minute
	DefaultPublishRetry = 2 * time.Second
)

// Config describes the connection, the stream and how entries travel on
// it. A zero field means its default.
type Config struct {
	URLs      []string // NATS servers; credentials may be in the URL
	Token     string   // a NATS token, if the server wants one (never logged)
	CredsFile string   // a NATS credentials file (JWT and seed), if the server wants one
	// InProcess, when not nil, is the server to connect to in-process
	// (the embedded bus), instead of URLs.
	InProcess nats.InProcessConnProvider
	Name      string // this processor, as the server shows its connection

	Stream   string        // the stream's name; created when missing, its limits updated
	Subject  string        // the subject entries are published on
	Consumer string        // the durable pull consumer every writer shares
	MaxAge   time.Duration // the stream drops messages older than this
	MaxBytes int64         // the stream refuses new messages beyond this (backpressure, never silent loss)
	Replicas int           // copies of the stream in a NATS cluster

	Batch      int           // most entries in one stream message
	BatchBytes int           // most bytes in one stream message
	Linger     time.Duration // longest an entry waits for its message to fill
	MaxPending int           // messages published and not yet acknowledged by the stream
	Fetch      int           // messages one writer fetches at a time
	Fetchers   int           // concurrent fetch-store-acknowledge loops per processor
	AckWait    time.Duration // a delivered message unacknowledged this long goes to another writer
	Compress   bool          // compress each message's entries with S2
}

func (c Config) withDefaults() Config {
	if len(c.URLs) == 0 {
		c.URLs = []string{DefaultURL}
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Stream, DefaultStream)
	def(&c.Subject, DefaultSubject)
	def(&c.Consumer, DefaultConsumer)
	pos := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	pos(&c.Replicas, DefaultReplicas)
	pos(&c.Batch, DefaultBatch)
	pos(&c.BatchBytes, DefaultBatchBytes)
	pos(&c.MaxPending, DefaultMaxPending)
	pos(&c.Fetch, DefaultFetch)
	pos(&c.Fetchers, DefaultFetchers)
	c.Batch = min(c.Batch, MaxBatch)
	if c.MaxAge <= 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.Linger <= 0 {
		c.Linger = DefaultLinger
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	return c
}

// MaxBatch is the most entries one message may carry.
const MaxBatch = models.MaxPerBusMessage

// Bus is a connection to NATS with the stream in place. Open returns it;
// Close ends it. Publishers and consumers are made from it.
type Bus struct {
	cfg    Config
	log    *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	epoch  int64 // the stream's creation time, Unix ns: part of every entry's identity

	reconnects atomic.Uint64
	lastErr    atomic.Pointer[string]
}

// Open connects to NATS and creates the stream (or updates its limits).
// It fails at once when no server answers, so that a mistyped URL is
// reported at start; once open, the connection is kept up for ever,
// reconnecting as long as it takes.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Bus, error) {
	cfg = cfg.withDefaults()
	b := &Bus{cfg: cfg, log: logger}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectBufSize(-1), // publishes fail while disconnected; the Publisher retries them
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.setErr(err)
				logger.Warn("bus disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.reconnects.Add(1)
			logger.Info("bus reconnected", "server", redact.URL(nc.ConnectedUrl()))
		}),
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.InProcess != nil {
		opts = append(opts, nats.InProcessServer(cfg.InProcess))
	}
	if cfg.CredsFile != "" {
		if _, err := os.Stat(cfg.CredsFile); err != nil {
			return nil, fmt.Errorf("bus: credentials file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	nc, err := nats.Connect(strings.Join(cfg.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect to %s: %w", redactURLs(cfg.URLs), err)
	}
	b.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bus: %w", err)
	}
	b.js = js
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := js.CreateOrUpdateStream(sctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "log entries between the processors that read sources and the ones that store them",
		Subjects:    []string{cfg.Subject},
		// A message leaves the stream once a writer acknowledges it, so
		// the stream holds only what is not yet stored.
		Retention: jetstream.WorkQueuePolicy,
		// When full, new messages are refused (publishers wait, then
		// count drops) rather than old, unstored ones deleted.
		Discard:    jetstream.DiscardNew,
		MaxAge:     cfg.MaxAge,
		MaxBytes:   cfg.MaxBytes,
		Storage:    jetstream.FileStorage,
		Replicas:   cfg.Replicas,
		Duplicates: DefaultDupWindow,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bus: create stream %s: %w", cfg.Stream, err)
	}
	b.stream = stream
	b.epoch = stream.CachedInfo().Created.UnixNano()
	return b, nil
}

// JetStream is the JetStream context, for the cluster's key-value bucket.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Connected reports whether the connection is up now.
func (b *Bus) Connected() bool { return b.nc.IsConnected() }

// Close closes the connection. Publishers and consumers are closed first.
func (b *Bus) Close() { b.nc.Close() }

func (b *Bus) setErr(err error) {
	s := err.Error()
	b.lastErr.Store(&s)
}

// Status is the connection's part of the bus stats.
type Status struct {
	Kind       string `json:"kind"` // jetstream
	Servers    string `json:"servers"`
	Connected  bool   `json:"connected"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	Reconnects uint64 `json:"reconnects"`
	LastError  string `json:"last_error,omitempty"`
}

// Status reports the connection's state.
func (b *Bus) Status() Status {
	servers := redactURLs(b.cfg.URLs)
	if b.cfg.InProcess != nil {
		servers = "embedded"
	}
	s := Status{Kind: "jetstream", Servers: servers, Connected: b.nc.IsConnected(),
		Stream: b.cfg.Stream, Consumer: b.cfg.Consumer, Reconnects: b.reconnects.Load()}
	if e := b.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// errDisconnected is why a publish was not tried.
var errDisconnected = errors.New("not connected to NATS")

func redactURLs(us []string) string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = redact.URL(u)
	}
	return strings.Join(out, ",")
}

// Package ingest is the push source kinds of our own dialect: clients push
// newline-delimited JSON (or a JSON array) over HTTP (POST /ingest), or
// frames of it over a WebSocket (GET /ws/ingest), behind the ingest
// tokens. Every line is counted and none is silently dropped: when the
// queue stays full a WebSocket pusher is slowed (its frames are not read,
// so TCP pushes back) and an HTTP request is refused whole with 503, so a
// pusher that retries neither loses nor duplicates lines. Both share the
// push paths' in-flight budget (package push).
package ingest

import (
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxBodyBytes  = 8 << 20
	DefaultMaxRecords    = 10_000
	DefaultMaxClients    = 256
	DefaultSubmitTimeout = 2 * time.Second
	DefaultPingInterval  = 10 * time.Second
	DefaultPongWait      = 30 * time.Second
)

// Paths served.
const (
	PathWS   = "/ws/ingest"
	PathHTTP = "/ingest"
)

// Config describes the ingest endpoints. A zero field means its default.
type Config struct {
	// MaxBodyBytes bounds an HTTP body (after decoding) and a WebSocket
	// frame; longer ones are refused (413) or counted as too_large.
	MaxBodyBytes int64
	// MaxRecords bounds the lines (or array elements) of one request or
	// frame; past it a request is refused with 413.
	MaxRecords int
	// MaxClients bounds the WebSocket pushers connected at once.
	MaxClients int
	// SubmitTimeout is how long an HTTP request waits for room in the
	// queue before it is refused with 503.
	SubmitTimeout time.Duration
	PingInterval  time.Duration
	PongWait      time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxRecords <= 0 {
		c.MaxRecords = DefaultMaxRecords
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.SubmitTimeout <= 0 {
		c.SubmitTimeout = DefaultSubmitTimeout
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PongWait <= 0 {
		c.PongWait = DefaultPongWait
	}
	return c
}

// Env is what every push source kind shares (see push.Env).
type Env = push.Env

package push

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/budget"
)

// Defaults of GateConfig's zero fields.
const (
	// DefaultMaxInflightBytes bounds the bytes every push path holds at
	// once: bodies as read and decompressed, frames, and the entries
	// parsed from them until the queue takes them. With the queue's 32 MiB
	// and the memory store's 32 MiB it keeps a processor under 256 MiB.
	DefaultMaxInflightBytes = 64 << 20
	// DefaultMaxRequests bounds the push requests (and WebSocket frames)
	// handled at once.
	DefaultMaxRequests = 64
	// DefaultWait is how long a request waits for room in the budget
	// before it gets its protocol's retryable answer.
	DefaultWait = 250 * time.Millisecond
)

// GateConfig describes a Gate. A zero field means its default.
type GateConfig struct {
	MaxInflightBytes int64
	MaxRequests      int
	Wait             time.Duration
}

// Gate is the one in-flight budget every push path shares: requests (or
// frames) handled at once, and the bytes they hold. A request enters it
// before reading anything and reserves bytes before it reads them; what
// does not fit waits briefly, then is refused with the path's retryable
// answer (503 or 429 with Retry-After), never memory. Safe for concurrent
// use.
type Gate struct {
	cfg      GateConfig
	bytes    *budget.Budget
	requests atomic.Int64
	refused  atomic.Uint64
}

// NewGate returns a Gate.
func NewGate(cfg GateConfig) *Gate {
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = DefaultMaxRequests
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
	}
	return &Gate{cfg: cfg, bytes: budget.New(cfg.MaxInflightBytes)}
}

// ErrBusy: the gate has no room for another request, or for a request's
// bytes, within its wait.
var ErrBusy = errors.New("the ingest in-flight budget is spent (--ingest-max-inflight-bytes, --ingest-max-requests); retry")

// Slot is one request's place in the gate and the bytes it holds. Used by
// one goroutine; Leave gives everything back.
type Slot struct {
	g    *Gate
	held int64
	// stream, when set, makes Take wait for room until it ends, rather
	// than fail: a stream's frames are not refused, their sender is
	// slowed. Such a slot takes no request's place.
	stream context.Context
}

// Enter takes a request's place, or fails with ErrBusy when MaxRequests
// are in flight.
func (g *Gate) Enter() (*Slot, error) {
	if g.requests.Add(1) > int64(g.cfg.MaxRequests) {
		g.requests.Add(-1)
		g.refused.Add(1)
		return nil, ErrBusy
	}
	return &Slot{g: g}, nil
}

// Stream returns a slot for a stream's frames (a WebSocket pusher): it
// takes no request's place, and its Take waits for room until ctx ends.
func (g *Gate) Stream(ctx context.Context) *Slot { return &Slot{g: g, stream: ctx} }

// Take reserves n more bytes, waiting at most the gate's wait (a stream's
// slot: until its context ends); false means the budget stayed spent (the
// request is to be refused, retryably).
func (s *Slot) Take(n int64) bool {
	if n <= 0 {
		return true
	}
	if n > s.g.bytes.Max() {
		return false
	}
	for !s.g.bytes.TakeWithin(n, s.g.cfg.Wait) {
		if s.stream == nil || s.stream.Err() != nil {
			s.g.refused.Add(1)
			return false
		}
	}
	s.held += n
	return true
}

// Give returns n of the bytes held (a frame done, a buffer let go).
func (s *Slot) Give(n int64) {
	n = min(n, s.held)
	s.held -= n
	s.g.bytes.Give(n)
}

// Held returns the bytes the slot holds.
func (s *Slot) Held() int64 { return s.held }

// Leave gives back the slot's bytes and its place.
func (s *Slot) Leave() {
	s.g.bytes.Give(s.held)
	s.held = 0
	if s.stream == nil {
		s.g.requests.Add(-1)
	}
}

// GateStats is the gate's state, for /stats.
type GateStats struct {
	Requests         int64  `json:"requests"`           // requests and frames in flight now
	MaxRequests      int    `json:"max_requests"`       // --ingest-max-requests
	InflightBytes    int64  `json:"inflight_bytes"`     // bytes they hold now
	MaxInflightBytes int64  `json:"max_inflight_bytes"` // --ingest-max-inflight-bytes
	Refused          uint64 `json:"refused"`            // requests refused (retryably) for want of room
}

// Stats returns a snapshot.
func (g *Gate) Stats() GateStats {
	return GateStats{Requests: g.requests.Load(), MaxRequests: g.cfg.MaxRequests, InflightBytes: g.bytes.Used(),
		MaxInflightBytes: g.bytes.Max(), Refused: g.refused.Load()}
}

// RetryAfter is the Retry-After, in seconds, of a request refused for
// want of room.
const RetryAfter = 1

// Busy answers a request refused for want of room: status (503, or 429 for
// protocols whose clients retry on it), with Retry-After.
func Busy(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
	http.Error(w, msg, status)
}

// Package tail fans entries out, as they are stored, to the clients
// following them (GET /logs/tail). Publishing never waits: a client that
// reads too slowly misses entries, and is told how many. What waits for
// the clients is bounded in entries and bytes, per client and in all. A
// client may ask for at most so many entries a second (the dashboard
// does): the rest are skipped as they are published, costing it nothing.
package tail

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Defaults for Config's zero fields.
const (
	DefaultMaxClients = 16
	// Buffer is how many entries wait for a client before it misses some.
	Buffer = 1024
	// DefaultClientBytes bounds the bytes of the entries waiting for one
	// client (models.LogEntry.Size).
	DefaultClientBytes = 1 << 20
	// DefaultTotalBytes bounds those bytes for all clients together.
	DefaultTotalBytes = 16 << 20
)

// Config bounds a Hub. A zero field means its default.
type Config struct {
	MaxClients  int   // clients following at once
	ClientBytes int64 // bytes waiting for one client
	TotalBytes  int64 // bytes waiting for all clients
}

// ErrTooMany is Subscribe's answer when MaxClients follow already.
var ErrTooMany = errors.New("too many clients following the tail")

// Hub is the set of following clients. Publish is safe to call from every
// worker at once.
type Hub struct {
	cfg   Config
	n     atomic.Int32 // len(subs), read without the lock when publishing
	total atomic.Int64 // bytes waiting for every client
	mu    sync.Mutex
	subs  map[*Sub]struct{}
}

// NewHub returns a Hub bounded by cfg.
func NewHub(cfg Config) *Hub {
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.ClientBytes <= 0 {
		cfg.ClientBytes = DefaultClientBytes
	}
	if cfg.TotalBytes <= 0 {
		cfg.TotalBytes = DefaultTotalBytes
	}
	return &Hub{cfg: cfg, subs: map[*Sub]struct{}{}}
}

// Sub is one following client: its filter and the entries waiting for it.
type Sub struct {
	hub    *Hub
	filter storage.Filter
	c      chan models.LogEntry
	bytes  atomic.Int64 // of the entries in c
	missed atomic.Uint64

	// At most maxRate entries a second (0: all), counted in a one-second
	// window; guarded by the hub's mutex.
	maxRate  int
	window   time.Time
	inWindow int
}

// Entries delivers the entries that pass the client's filter. The reader
// calls Received for each entry it takes, giving its bytes back.
func (s *Sub) Entries() <-chan models.LogEntry { return s.c }

// Received gives back the bytes of an entry taken from Entries.
func (s *Sub) Received(e *models.LogEntry) {
	n := int64(e.Size())
	s.bytes.Add(-n)
	s.hub.total.Add(-n)
}

// Missed returns how many entries passed the filter but found the client's
// buffer full (in entries or bytes), in all so far.
func (s *Sub) Missed() uint64 { return s.missed.Load() }

// Subscribe adds a client following the entries that pass f, at most
// maxRate a second (0: all); the others count as missed.
func (h *Hub) Subscribe(f storage.Filter, maxRate int) (*Sub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= h.cfg.MaxClients {
		return nil, ErrTooMany
	}
	s := &Sub{hub: h, filter: f, c: make(chan models.LogEntry, Buffer), maxRate: max(maxRate, 0)}
	h.subs[s] = struct{}{}
	h.n.Store(int32(len(h.subs)))
	return s, nil
}

// Unsubscribe removes s and lets go of what waited for it.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
	h.n.Store(int32(len(h.subs)))
	h.total.Add(-s.bytes.Swap(0))
}

// Clients returns how many clients follow now.
func (h *Hub) Clients() int { return int(h.n.Load()) }

// Bytes returns the bytes waiting for every client now.
func (h *Hub) Bytes() int64 { return h.total.Load() }

// Publish offers batch to every client, without waiting for any. With no
// client it costs one atomic load.
func (h *Hub) Publish(batch []models.LogEntry) {
	if h.n.Load() == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for s := range h.subs {
		if s.maxRate > 0 && now.Sub(s.window) >= time.Second {
			s.window, s.inWindow = now, 0
		}
		for i := range batch {
			if !s.filter.Match(&batch[i]) {
				continue
			}
			if s.maxRate > 0 {
				if s.inWindow >= s.maxRate {
					s.missed.Add(1)
					continue
				}
				s.inWindow++
			}
			n := int64(batch[i].Size())
			if s.bytes.Load()+n > h.cfg.ClientBytes || h.total.Load()+n > h.cfg.TotalBytes {
				s.missed.Add(1)
				continue
			}
			select {
			case s.c <- batch[i]:
				s.bytes.Add(n)
				h.total.Add(n)
			default:
				s.missed.Add(1)
			}
		}
	}
}

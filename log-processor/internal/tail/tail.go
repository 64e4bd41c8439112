// Package tail fans entries out, as they are stored, to the clients
// following them (GET /logs/tail). Publishing never waits: a client that
// reads too slowly misses entries, and is told how many. A client may ask
// for at most so many entries a second (the dashboard does): the rest are
// skipped as they are published, costing it nothing.
package tail

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Defaults for NewHub's zero arguments.
const (
	DefaultMaxClients = 16
	// Buffer is how many entries wait for a client before it misses some.
	Buffer = 1024
)

// ErrTooMany is Subscribe's answer when MaxClients follow already.
var ErrTooMany = errors.New("too many clients following the tail")

// Hub is the set of following clients. Publish is safe to call from every
// worker at once.
type Hub struct {
	max  int
	n    atomic.Int32 // len(subs), read without the lock when publishing
	mu   sync.Mutex
	subs map[*Sub]struct{}
}

// NewHub returns a Hub for at most maxClients clients at once.
func NewHub(maxClients int) *Hub {
	if maxClients <= 0 {
		maxClients = DefaultMaxClients
	}
	return &Hub{max: maxClients, subs: map[*Sub]struct{}{}}
}

// Sub is one following client: its filter and the entries waiting for it.
type Sub struct {
	filter storage.Filter
	c      chan models.LogEntry
	missed atomic.Uint64

	// At most maxRate entries a second (0: all), counted in a one-second
	// window; guarded by the hub's mutex.
	maxRate  int
	window   time.Time
	inWindow int
}

// Entries delivers the entries that pass the client's filter.
func (s *Sub) Entries() <-chan models.LogEntry { return s.c }

// Missed returns how many entries passed the filter but found the client's
// buffer full, in all so far.
func (s *Sub) Missed() uint64 { return s.missed.Load() }

// Subscribe adds a client following the entries that pass f, at most
// maxRate a second (0: all); the others count as missed.
func (h *Hub) Subscribe(f storage.Filter, maxRate int) (*Sub, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= h.max {
		return nil, ErrTooMany
	}
	s := &Sub{filter: f, c: make(chan models.LogEntry, Buffer), maxRate: max(maxRate, 0)}
	h.subs[s] = struct{}{}
	h.n.Store(int32(len(h.subs)))
	return s, nil
}

// Unsubscribe removes s.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, s)
	h.n.Store(int32(len(h.subs)))
}

// Clients returns how many clients follow now.
func (h *Hub) Clients() int { return int(h.n.Load()) }

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
			select {
			case s.c <- batch[i]:
			default:
				s.missed.Add(1)
			}
		}
	}
}

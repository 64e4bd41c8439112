// Package memory is the default storage backend: it keeps counts of the
// entries saved, by level and by service, and a bounded ring of the most
// recent entries for queries, in process memory.
package memory

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// DefaultMaxEntries is the ring's capacity when Config.MaxEntries is zero.
const DefaultMaxEntries = 10_000

// Config tunes a Store. A zero field means its default.
type Config struct {
	MaxEntries  int // most recent entries kept for queries
	MaxServices int // distinct services counted by name (storage.DefaultMaxServices)
}

// Store keeps counts and the most recent entries under one mutex, taken
// once per batch. It is safe for concurrent use; create it with New.
type Store struct {
	tally  *storage.Tally
	stored atomic.Uint64

	mu     sync.Mutex
	ring   []models.LogEntry // the newest entry is at next-1
	next   int               // where the next entry goes
	full   bool              // the ring has wrapped
	closed bool
}

// New returns an empty Store.
func New(cfg Config) *Store {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	return &Store{tally: storage.NewTally(cfg.MaxServices), ring: make([]models.LogEntry, cfg.MaxEntries)}
}

// Save keeps the entries of batch, evicting the oldest beyond the ring's
// capacity, and counts them. It fails only after Close.
func (s *Store) Save(_ context.Context, batch []models.LogEntry) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return storage.ErrClosed
	}
	s.tally.Add(batch)
	for i := range batch {
		s.ring[s.next] = batch[i]
		s.next++
		if s.next == len(s.ring) {
			s.next, s.full = 0, true
		}
	}
	s.mu.Unlock()
	s.stored.Add(uint64(len(batch)))
	return nil
}

// Query returns the newest entries passing f, newest first (by timestamp,
// then by arrival).
func (s *Store) Query(_ context.Context, f storage.Filter) ([]storage.Record, error) {
	limit := f.EffectiveLimit()
	s.mu.Lock()
	var out []storage.Record
	n := s.next
	if s.full {
		n = len(s.ring)
	}
	for k := 1; k <= n; k++ {
		e := &s.ring[(s.next-k+len(s.ring))%len(s.ring)]
		if f.Match(e) {
			out = append(out, storage.Record{LogEntry: *e})
		}
	}
	s.mu.Unlock()
	storage.SortNewestFirst(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Counts returns the totals of this run.
func (s *Store) Counts(context.Context) (storage.Counts, error) { return s.tally.Counts(), nil }

// Status reports the entries saved; the memory store never fails.
func (s *Store) Status() storage.Status {
	return storage.Status{Backend: "memory", State: storage.StateOK, Stored: s.stored.Load()}
}

// Rejected returns nothing: the memory store refuses no entry.
func (s *Store) Rejected() []storage.Rejected { return nil }

// Close refuses further saves; there is nothing to flush.
func (s *Store) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// Package memory is the default storage backend: it keeps counts of the
// entries saved, by level and by service, and a bounded ring of the most
// recent entries for queries, in process memory. An entry with an identity
// (models.BusID: from the bus, or its pusher's key) is kept once while an
// entry of that identity is in the ring.
package memory

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxEntries = 10_000
	DefaultMaxBytes   = 32 << 20
)

// Config tunes a Store. A zero field means its default.
type Config struct {
	MaxEntries  int   // most recent entries kept for queries
	MaxBytes    int64 // bound on their memory (models.LogEntry.Size); the oldest go first
	MaxServices int   // distinct services counted by name (storage.DefaultMaxServices)
	// RejectedKeep is how many dead letters it keeps, the newest
	// (storage.DefaultRejectedKeep).
	RejectedKeep int
}

// Store keeps counts and the most recent entries under one mutex, taken
// once per batch. It is safe for concurrent use; create it with New.
type Store struct {
	dead       *storage.Ring // the dead letters
	tally      *storage.Tally
	stored     atomic.Uint64
	duplicates atomic.Uint64

	maxBytes int64

	mu     sync.Mutex
	ring   []models.LogEntry // n entries from start (the oldest), wrapping
	sizes  []int64           // sizes[i] is ring[i].Size(), kept for eviction
	start  int
	n      int
	bytes  int64 // Size of the n entries
	closed bool
	// ids holds the identities of the kept entries that have one.
	ids map[models.BusID]struct{}
	// kept is Save's buffer for a batch less its duplicates.
	kept []models.LogEntry
}

// New returns an empty Store.
func New(cfg Config) *Store {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	return &Store{dead: storage.NewRing(cfg.RejectedKeep), tally: storage.NewTally(cfg.MaxServices), ring: make([]models.LogEntry, cfg.MaxEntries),
		sizes: make([]int64, cfg.MaxEntries), maxBytes: cfg.MaxBytes, ids: make(map[models.BusID]struct{})}
}

// Save keeps the entries of batch, evicting the oldest beyond MaxEntries or
// MaxBytes, and counts them. It fails only after Close.
func (s *Store) Save(_ context.Context, batch []models.LogEntry) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return storage.ErrClosed
	}
	dups := 0
	if hasIdentity(batch) {
		s.kept = s.kept[:0]
		for i := range batch {
			id := batch[i].Bus
			if _, seen := s.ids[id]; !id.IsZero() && seen {
				dups++
				continue
			}
			if !id.IsZero() {
				s.ids[id] = struct{}{}
			}
			s.kept = append(s.kept, batch[i])
		}
		batch = s.kept
	}
	s.tally.Add(batch)
	for i := range batch {
		size := int64(batch[i].Size())
		for s.n > 0 && (s.n == len(s.ring) || s.bytes+size > s.maxBytes) {
			s.bytes -= s.sizes[s.start]
			if id := s.ring[s.start].Bus; !id.IsZero() {
				delete(s.ids, id)
			}
			s.ring[s.start] = models.LogEntry{}
			s.start = (s.start + 1) % len(s.ring)
			s.n--
		}
		at := (s.start + s.n) % len(s.ring)
		s.ring[at], s.sizes[at] = batch[i], size
		s.n++
		s.bytes += size
	}
	clear(s.kept) // let the strings go
	s.mu.Unlock()
	s.stored.Add(uint64(len(batch)))
	s.duplicates.Add(uint64(dups))
	return nil
}

// hasIdentity reports whether an entry of batch has an identity.
func hasIdentity(batch []models.LogEntry) bool {
	for i := range batch {
		if !batch[i].Bus.IsZero() {
			return true
		}
	}
	return false
}

// Sync returns nil: Save commits at once.
func (s *Store) Sync(context.Context) error { return nil }

// Query returns the newest entries passing f, newest first (by timestamp,
// then by arrival).
func (s *Store) Query(_ context.Context, f storage.Filter) ([]storage.Record, error) {
	out := s.matching(f)
	if limit := f.EffectiveLimit(); len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Scan calls fn with the kept entries passing f: copied under the lock
// (the ring is bounded), then given to fn without it.
func (s *Store) Scan(ctx context.Context, f storage.Filter, fn func(*storage.Record) bool) error {
	out := s.matching(f)
	if f.Oldest {
		slices.Reverse(out)
	}
	for i := range out {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !fn(&out[i]) {
			break
		}
	}
	return nil
}

// matching copies the kept entries passing f under the lock, and returns
// them newest first (by timestamp, then by arrival).
func (s *Store) matching(f storage.Filter) []storage.Record {
	s.mu.Lock()
	out := []storage.Record{}
	for k := s.n - 1; k >= 0; k-- {
		e := &s.ring[(s.start+k)%len(s.ring)]
		if f.Match(e) {
			out = append(out, storage.Record{LogEntry: *e})
		}
	}
	s.mu.Unlock()
	storage.SortNewestFirst(out)
	return out
}

// Buckets counts the kept entries passing f by stream and step, under
// the lock (the ring is bounded), and gives them to fn without it.
func (s *Store) Buckets(ctx context.Context, f storage.Filter, bq storage.BucketQuery, fn func(storage.Bucket) bool) error {
	type key struct {
		service, level, source, component string
		index                             int64
	}
	counts := map[key]*storage.Bucket{}
	s.mu.Lock()
	for k := range s.n {
		e := &s.ring[(s.start+k)%len(s.ring)]
		if !f.Match(e) || e.Timestamp <= bq.Origin {
			continue
		}
		kk := key{service: e.Service, level: e.Level, index: storage.BucketIndex(e.Timestamp, bq.Origin, bq.Step)}
		if bq.Source {
			kk.source = e.Source
		}
		if bq.Component {
			kk.component = e.Component
		}
		b := counts[kk]
		if b == nil {
			b = &storage.Bucket{Service: kk.service, Level: kk.level, Source: kk.source, Component: kk.component, Index: kk.index}
			counts[kk] = b
		}
		b.Count++
		if bq.Bytes {
			b.Bytes += int64(len(e.Message))
		}
	}
	s.mu.Unlock()
	for _, b := range counts {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !fn(*b) {
			break
		}
	}
	return nil
}

// Counts returns the totals of this run.
func (s *Store) Counts(_ context.Context, top int) (storage.Counts, error) {
	return s.tally.Counts(top), nil
}

// Status reports the entries saved; the memory store never fails.
func (s *Store) Status() storage.Status {
	return storage.Status{Backend: "memory", State: storage.StateOK, Stored: s.stored.Load(), Duplicates: s.duplicates.Load()}
}

// ListRejected returns the dead letters it keeps passing f, newest first.
// It refuses no entry itself: they are records pushers sent.
func (s *Store) ListRejected(_ context.Context, f storage.RejectedFilter) ([]storage.Rejected, error) {
	return s.dead.List(f), nil
}

// SetAside keeps dead letters, the newest RejectedKeep.
func (s *Store) SetAside(_ context.Context, rs []storage.Rejected) error {
	s.dead.Add(rs)
	return nil
}

// ForgetRejected lets go of the dead letters numbered ids.
func (s *Store) ForgetRejected(_ context.Context, ids []int64) (int, error) {
	return s.dead.Forget(ids), nil
}

// Close refuses further saves; there is nothing to flush.
func (s *Store) Close(context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

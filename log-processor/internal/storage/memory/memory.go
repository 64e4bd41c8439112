// Package memory is the default storage backend: it keeps aggregate counts
// of the entries saved, by level and by service, in process memory.
package memory

import (
	"context"
	"maps"
	"strings"
	"sync"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// DefaultMaxServices bounds the distinct services counted separately when
// Config.MaxServices is zero.
const DefaultMaxServices = 10000

// Config tunes a Store. A zero field means its default.
type Config struct {
	// MaxServices is the number of distinct services counted by name; the
	// entries of any further service are counted under storage.OtherService.
	MaxServices int
}

// Store aggregates counts under one mutex, taken once per batch. It is safe
// for concurrent use; the zero value is not usable, call New.
type Store struct {
	maxServices int

	mu        sync.Mutex
	total     uint64
	byLevel   [len(models.Levels)]uint64
	byService map[string]uint64
}

// New returns an empty Store.
func New(cfg Config) *Store {
	if cfg.MaxServices <= 0 {
		cfg.MaxServices = DefaultMaxServices
	}
	return &Store{maxServices: cfg.MaxServices, byService: make(map[string]uint64)}
}

// Save counts every entry of batch. It never fails.
func (s *Store) Save(_ context.Context, batch []models.LogEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total += uint64(len(batch))
	for i := range batch {
		e := &batch[i]
		if l := models.LevelIndex(e.Level); l >= 0 {
			s.byLevel[l]++
		}
		if _, ok := s.byService[e.Service]; ok {
			s.byService[e.Service]++
		} else if len(s.byService) < s.maxServices {
			// Clone: the entry's strings share its frame's bytes.
			s.byService[strings.Clone(e.Service)] = 1
		} else {
			s.byService[storage.OtherService]++
		}
	}
	return nil
}

// Counts returns a copy of the totals.
func (s *Store) Counts() storage.Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := storage.Counts{
		Total:     s.total,
		ByLevel:   make(map[string]uint64, len(models.Levels)),
		ByService: maps.Clone(s.byService),
	}
	for i, l := range models.Levels {
		c.ByLevel[l] = s.byLevel[i]
	}
	return c
}

// Package pushtest is what the tests of the push source kinds share: a
// store that can be made to stall, and a push environment in front of a
// real worker pool.
package pushtest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/workerpool"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Store saves a batch only while it is open, and keeps what it saved: a
// database that can be made to stall.
type Store struct {
	mu    sync.Mutex
	cond  *sync.Cond
	open  bool
	saved []models.LogEntry
}

// NewStore returns a Store, open or not.
func NewStore(open bool) *Store {
	s := &Store{open: open}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Save waits until the store is open (or ctx ends), then keeps batch.
func (s *Store) Save(ctx context.Context, batch []models.LogEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.open && ctx.Err() == nil {
		s.cond.Wait()
	}
	s.saved = append(s.saved, batch...)
	return nil
}

// Sync returns nil: Save keeps a batch at once.
func (s *Store) Sync(context.Context) error { return nil }

// SetOpen opens or closes the store.
func (s *Store) SetOpen(open bool) {
	s.mu.Lock()
	s.open = open
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Entries returns a copy of what the store saved.
func (s *Store) Entries() []models.LogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]models.LogEntry(nil), s.saved...)
}

// Len returns how many entries the store saved.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.saved)
}

// Env returns a push environment for a test: a sink with the parser
// settings p, in front of a real pool of one worker taking one entry at a
// time from a queue of queueSize, saving into store; the tokens; and a gate
// of gate's bounds. When the test ends the store is opened and the pool
// closed.
func Env(t testing.TB, store *Store, queueSize int, p parser.Parser, gate push.GateConfig, tokens ...push.Token) push.Env {
	return EnvWith(t, store, queueSize, intake.SinkConfig{Parser: p}, gate, tokens...)
}

// EnvWith is Env with the sink's whole configuration (its acks, for one).
func EnvWith(t testing.TB, store *Store, queueSize int, sc intake.SinkConfig, gate push.GateConfig, tokens ...push.Token) push.Env {
	pool := workerpool.New(workerpool.Config{Workers: 1, QueueSize: queueSize, MaxBatch: 1}, store, slog.New(slog.DiscardHandler))
	sink := intake.NewSink(sc)
	sink.Connect(pool, nil)
	t.Cleanup(func() {
		store.SetOpen(true)
		_ = pool.Close(context.Background())
	})
	return push.Env{Sink: sink, Auth: &push.Auth{Tokens: tokens}, Gate: push.NewGate(gate)}
}

// Source is a push source as the tests serve it.
type Source interface {
	Mount(mux *http.ServeMux)
	Run(ctx context.Context) error
}

// Serve mounts the sources on a server on loopback and runs them; when the
// test ends they are stopped and the server closed. It returns the
// server's URL.
func Serve(t testing.TB, sources ...Source) string {
	mux := http.NewServeMux()
	for _, src := range sources {
		src.Mount(mux)
	}
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, src := range sources {
		wg.Go(func() { _ = src.Run(ctx) })
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
	})
	return srv.URL
}

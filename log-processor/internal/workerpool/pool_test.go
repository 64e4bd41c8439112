package workerpool

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// countStore counts what it saves, optionally sleeping per batch to play a
// slow database.
type countStore struct {
	delay time.Duration
	saved atomic.Uint64
}

func (s *countStore) Save(_ context.Context, batch []models.LogEntry) error {
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.saved.Add(uint64(len(batch)))
	return nil
}

func (s *countStore) Sync(context.Context) error { return nil }

// blockStore blocks every Save until its context ends or release is closed.
type blockStore struct{ release chan struct{} }

func (s *blockStore) Save(ctx context.Context, _ []models.LogEntry) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.release:
		return nil
	}
}

func (s *blockStore) Sync(context.Context) error { return nil }

// syncStore keeps what it saves as pending and commits it in Sync, which
// waits for a send on commit: a batching database.
type syncStore struct {
	commit  chan struct{}
	mu      sync.Mutex
	pending int
	stored  int
	saveErr error
}

func (s *syncStore) Save(_ context.Context, batch []models.LogEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saveErr != nil {
		return s.saveErr
	}
	s.pending += len(batch)
	return nil
}

func (s *syncStore) Sync(ctx context.Context) error {
	select {
	case <-s.commit:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stored, s.pending = s.stored+s.pending, 0
	return nil
}

func (s *syncStore) Stored() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored
}

// TestAckAfterSync checks that an ack given with SubmitAll is resolved only
// once the store has synced the entries, and with the error when their
// save failed.
func TestAckAfterSync(t *testing.T) {
	batch := []models.LogEntry{entry(), entry(), entry()}
	t.Run("stored", func(t *testing.T) {
		store := &syncStore{commit: make(chan struct{})}
		p := New(Config{Workers: 2, MaxBatch: 2}, store, discard)
		defer p.Close(context.Background())
		ack := queue.NewAck(len(batch))
		if err := p.SubmitAll(batch, time.Second, ack); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := ack.Wait(ctx); !errors.Is(err, queue.ErrUnconfirmed) {
			t.Fatalf("before the commit: Wait = %v, want ErrUnconfirmed", err)
		}
		go func() { // as many commits as the syncer asks for
			for {
				select {
				case store.commit <- struct{}{}:
				case <-p.ctx.Done():
					return
				}
			}
		}()
		if err := ack.Wait(context.Background()); err != nil {
			t.Fatalf("after the commit: Wait = %v", err)
		}
		if got := store.Stored(); got != len(batch) {
			t.Errorf("stored = %d when the ack was resolved, want %d", got, len(batch))
		}
	})
	t.Run("save failed", func(t *testing.T) {
		store := &syncStore{commit: make(chan struct{}), saveErr: errors.New("disk on fire")}
		p := New(Config{Workers: 1, MaxBatch: 2}, store, discard)
		defer p.Close(context.Background())
		ack := queue.NewAck(len(batch))
		if err := p.SubmitAll(batch, time.Second, ack); err != nil {
			t.Fatal(err)
		}
		err := ack.Wait(context.Background())
		if !errors.Is(err, queue.ErrUnconfirmed) || !strings.Contains(err.Error(), "disk on fire") {
			t.Fatalf("Wait = %v, want ErrUnconfirmed naming the save's error", err)
		}
	})
}

func entry() models.LogEntry {
	return models.LogEntry{Timestamp: 1, Level: models.LevelInfo, Message: "m", Service: "s"}
}

func TestPoolUnderLoad(t *testing.T) {
	before := runtime.NumGoroutine()
	store := &countStore{delay: 50 * time.Microsecond}
	p := New(Config{Workers: 4, QueueSize: 4, MaxBatch: 2}, store, discard)

	const submitters, each = 8, 2000
	var submitted, dropped atomic.Uint64
	var wg sync.WaitGroup
	for range submitters {
		wg.Go(func() {
			for range each {
				if p.SubmitWithTimeout(entry(), 20*time.Microsecond) {
					submitted.Add(1)
				} else {
					dropped.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}

	st := p.Stats()
	if got := submitted.Load() + dropped.Load(); got != submitters*each {
		t.Errorf("submitted+dropped = %d, want %d", got, submitters*each)
	}
	if dropped.Load() == 0 {
		t.Errorf("no drops with a 4-entry queue and a slow store; backpressure not exercised")
	}
	if st.Processed != submitted.Load() {
		t.Errorf("processed = %d, submitted = %d", st.Processed, submitted.Load())
	}
	if store.saved.Load() != submitted.Load() {
		t.Errorf("stored = %d, submitted = %d", store.saved.Load(), submitted.Load())
	}
	if st.Queued != 0 || st.Workers != 4 {
		t.Errorf("stats after close = %+v", st)
	}
	waitGoroutines(t, before)
}

// waitGoroutines fails unless the goroutine count returns to at most n
// within a bounded time (exiting goroutines take a moment to disappear).
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines left, want <= %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestSubmitTimeoutDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &blockStore{release: make(chan struct{})}
		cfg := Config{Workers: 1, QueueSize: 3, MaxBatch: 2}
		p := New(cfg, store, discard)
		// Fill the pool: the worker's batch blocks in Save, a gatherer holds
		// the next, and the queue fills.
		accepted := 0
		for accepted < 100 && p.SubmitWithTimeout(entry(), 0) {
			accepted++
			synctest.Wait() // let the gatherer and worker take what they can
		}
		if bound := cfg.QueueSize + 2*cfg.MaxBatch; accepted > bound {
			t.Fatalf("accepted %d entries with a blocked store, want at most %d", accepted, bound)
		}
		if got := p.Stats().Queued; got != accepted { // queued, held by the gatherer, or in Save
			t.Errorf("queue = %d with %d accepted and none processed", got, accepted)
		}
		start := time.Now()
		if p.SubmitWithTimeout(entry(), 10*time.Millisecond) {
			t.Fatal("submit to a full pool accepted")
		}
		if waited := time.Since(start); waited != 10*time.Millisecond {
			t.Errorf("waited %v before dropping, want the 10ms timeout", waited)
		}
		close(store.release)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := p.Stats().Processed; got != uint64(accepted) {
			t.Errorf("processed = %d, want %d", got, accepted)
		}
	})
}

func TestSubmitWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &blockStore{release: make(chan struct{})}
		p := New(Config{Workers: 1, QueueSize: 1, MaxBatch: 1}, store, discard)
		for p.SubmitWithTimeout(entry(), 0) { // until the pool is full
			synctest.Wait()
		}
		go func() {
			time.Sleep(5 * time.Millisecond)
			store.release <- struct{}{} // one Save returns: room appears
		}()
		if !p.SubmitWithTimeout(entry(), 10*time.Millisecond) {
			t.Error("submit dropped although room appeared within the timeout")
		}
		close(store.release)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCloseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &blockStore{release: make(chan struct{})} // never released
		p := New(Config{Workers: 2, QueueSize: 10, MaxBatch: 1}, store, discard)
		for range 5 {
			if !p.SubmitWithTimeout(entry(), 0) {
				t.Fatal("submit refused")
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err := p.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want deadline exceeded", err)
		}
		st := p.Stats()
		// The two batches in Save failed; the rest were abandoned.
		if st.Processed != 2 || st.Failed != 2 || st.Queued != 0 {
			t.Errorf("stats = %+v, want 2 processed, both failed, nothing queued", st)
		}
	})
}

func TestBatchesAreBounded(t *testing.T) {
	var maxSeen atomic.Int64
	store := saveFunc(func(batch []models.LogEntry) {
		for {
			m := maxSeen.Load()
			if int64(len(batch)) <= m || maxSeen.CompareAndSwap(m, int64(len(batch))) {
				return
			}
		}
	})
	p := New(Config{Workers: 1, QueueSize: 1000, MaxBatch: 8}, store, discard)
	for range 1000 {
		p.SubmitWithTimeout(entry(), time.Second)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m := maxSeen.Load(); m < 1 || m > 8 {
		t.Errorf("largest batch = %d, want 1..8", m)
	}
	if got := p.Stats().Processed; got != 1000 {
		t.Errorf("processed = %d, want 1000", got)
	}
}

type saveFunc func([]models.LogEntry)

func (f saveFunc) Save(_ context.Context, b []models.LogEntry) error { f(b); return nil }
func (saveFunc) Sync(context.Context) error                          { return nil }

func BenchmarkSubmit(b *testing.B) {
	p := New(Config{}, saveFunc(func([]models.LogEntry) {}), discard)
	e := entry()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.SubmitWithTimeout(e, 10*time.Millisecond)
		}
	})
	b.StopTimer()
	if err := p.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// TestQueueBytesBound: large entries fill the pool by bytes long before its
// entry capacity; a submitter waits for bytes to be freed, and gets in once
// a worker finishes.
func TestQueueBytesBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &blockStore{release: make(chan struct{})}
		big := entry()
		big.Message = string(make([]byte, 60<<10))
		size := int64(big.Size())
		p := New(Config{Workers: 1, QueueSize: 1000, QueueBytes: 4 * size, MaxBatch: 1}, store, discard)
		for i := range 4 {
			if !p.SubmitWithTimeout(big, 0) {
				t.Fatalf("entry %d refused within the byte bound", i)
			}
		}
		if p.SubmitWithTimeout(big, 0) {
			t.Fatal("fifth entry accepted past the byte bound")
		}
		if st := p.Stats(); st.Bytes != 4*size {
			t.Errorf("QueueBytes = %d, want %d", st.Bytes, 4*size)
		}
		if p.SubmitWithTimeout(big, time.Second) {
			t.Fatal("accepted past the byte bound after waiting, with nothing saved")
		}
		accepted := make(chan bool)
		go func() { accepted <- p.SubmitWithTimeout(big, time.Minute) }()
		synctest.Wait()
		store.release <- struct{}{} // one batch of one entry saved: room for one more
		if !<-accepted {
			t.Fatal("waiting submitter not admitted once bytes were freed")
		}
		close(store.release)
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); st.Bytes != 0 || st.Processed != 5 {
			t.Errorf("after Close: %+v, want 5 processed and no bytes held", st)
		}
	})
}

// TestSubmitAllIsWhole checks that SubmitAll takes a batch whole or not at
// all: refused when only part would fit, admitted whole once room frees.
func TestSubmitAllIsWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &blockStore{release: make(chan struct{})}
		e := entry()
		size := int64(e.Size())
		// Room for four entries' bytes; one worker saving one at a time.
		p := New(Config{Workers: 1, QueueSize: 4, QueueBytes: 4 * size, MaxBatch: 1}, store, discard)
		three := []models.LogEntry{entry(), entry(), entry()}
		if p.SubmitAll(three[:2], 0, nil) != nil {
			t.Fatal("two entries refused by an empty pool with room for four")
		}
		synctest.Wait() // the worker holds one; the gatherer waits to hand it the other
		if p.SubmitAll(three[:2], 0, nil) != nil {
			t.Fatal("two more refused with room for two")
		}
		// These two wait on the queue as one job: counted as two entries.
		if st := p.Stats(); st.Queued != 4 || st.Bytes != 4*size {
			t.Fatalf("after two batches of two: %+v, want 4 entries and their bytes", st)
		}
		if err := p.SubmitAll(three, time.Second, nil); err != queue.ErrFull {
			t.Fatalf("three more with no room: %v, want ErrFull", err)
		}
		if st := p.Stats(); st.Queued != 4 || st.Bytes != 4*size {
			t.Fatalf("after a refused batch: %+v, want 4 entries and their bytes (nothing of it taken)", st)
		}
		if err := p.SubmitAll(make([]models.LogEntry, 5), time.Minute, nil); err != queue.ErrTooLarge {
			t.Fatalf("a batch larger than the pool: %v, want ErrTooLarge at once", err)
		}
		three[0].Message = "changed after submitting" // the pool copied them
		accepted := make(chan error)
		go func() { accepted <- p.SubmitAll(three, time.Minute, nil) }()
		synctest.Wait()
		close(store.release) // storage moves: room for all
		if err := <-accepted; err != nil {
			t.Fatalf("waiting batch not admitted once room was freed: %v", err)
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); st.Processed != 7 || st.Bytes != 0 || st.Queued != 0 {
			t.Errorf("after Close: %+v, want 7 processed, nothing queued and no bytes held", st)
		}
	})
}

package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeWriter records batch sizes and fails while fail is positive,
// decrementing it per attempt (forever when negative).
type fakeWriter struct {
	mu    sync.Mutex
	sizes []int
	rows  int
	fail  int
	block chan struct{} // if not nil, each write waits for a value
}

func (w *fakeWriter) WriteBatch(ctx context.Context, batch []models.LogEntry) (int, error) {
	return 0, w.write(ctx, batch)
}

func (w *fakeWriter) write(ctx context.Context, batch []models.LogEntry) error {
	if w.block != nil {
		select {
		case <-w.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != 0 {
		w.fail--
		return errors.New("database is down")
	}
	w.sizes = append(w.sizes, len(batch))
	w.rows += len(batch)
	return nil
}

func entries(n int) []models.LogEntry {
	return make([]models.LogEntry, n)
}

func TestBatchesBySize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &fakeWriter{}
		b := NewBatcher(w, BatchConfig{Size: 1000, FlushInterval: time.Hour}, "fake", discard)
		for range 50 {
			if err := b.Save(context.Background(), entries(50)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if w.rows != 2500 || len(w.sizes) != 3 || w.sizes[0] != 1000 || w.sizes[1] != 1000 || w.sizes[2] != 500 {
			t.Errorf("batches %v (%d rows), want 1000, 1000 and the last 500 at Close", w.sizes, w.rows)
		}
		if st := b.Status(); st.Stored != 2500 || st.Pending != 0 || st.State != StateOK {
			t.Errorf("status = %+v", st)
		}
	})
}

func TestFlushInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &fakeWriter{}
		b := NewBatcher(w, BatchConfig{Size: 1000, FlushInterval: 200 * time.Millisecond}, "fake", discard)
		defer b.Close(context.Background())
		_ = b.Save(context.Background(), entries(10))
		time.Sleep(199 * time.Millisecond)
		synctest.Wait()
		if b.Status().Stored != 0 {
			t.Fatal("written before the flush interval")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if b.Status().Stored != 10 {
			t.Fatalf("not written at the flush interval: %+v", b.Status())
		}
	})
}

// TestRetryUntilRecovered: a failing database is retried with backoff,
// shows as failing with its error, and nothing is reported stored until it
// is; then writing resumes by itself.
func TestRetryUntilRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &fakeWriter{fail: 4}
		b := NewBatcher(w, BatchConfig{Size: 10, FlushInterval: time.Millisecond, RetryMax: time.Second}, "fake", discard)
		defer b.Close(context.Background())
		_ = b.Save(context.Background(), entries(10))
		time.Sleep(50 * time.Millisecond)
		synctest.Wait()
		st := b.Status()
		if st.State != StateFailing || st.Stored != 0 || st.Pending != 10 || !strings.Contains(st.LastError, "database is down") {
			t.Fatalf("while failing: %+v", st)
		}
		time.Sleep(10 * time.Second) // past every backoff
		synctest.Wait()
		if st := b.Status(); st.State != StateOK || st.Stored != 10 || st.LastError == "" {
			t.Fatalf("after recovery: %+v (the last error is kept for diagnosis)", st)
		}
		if len(w.sizes) != 1 {
			t.Errorf("batches %v: the same batch must be written once", w.sizes)
		}
	})
}

// TestSaveBlocksWhenFull: with one batch being written and another
// waiting, Save blocks until there is room, or its context ends.
func TestSaveBlocksWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &fakeWriter{block: make(chan struct{})}
		b := NewBatcher(w, BatchConfig{Size: 10, FlushInterval: time.Hour}, "fake", discard)
		_ = b.Save(context.Background(), entries(10)) // taken by the writer, which blocks
		synctest.Wait()
		_ = b.Save(context.Background(), entries(10)) // pending is full now
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Save(ctx, entries(1)); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Save into a full batcher = %v, want it to block until its deadline", err)
		}
		done := make(chan error)
		go func() { done <- b.Save(context.Background(), entries(1)) }()
		synctest.Wait()
		w.block <- struct{}{} // first batch written: the second is taken, room appears
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		close(w.block)
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if w.rows != 21 {
			t.Errorf("wrote %d rows, want 21", w.rows)
		}
	})
}

func TestCloseDeadlineCountsLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &fakeWriter{fail: -1}
		b := NewBatcher(w, BatchConfig{Size: 10, FlushInterval: time.Millisecond}, "fake", discard)
		_ = b.Save(context.Background(), entries(7))
		_ = b.Save(context.Background(), entries(3))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := b.Close(ctx)
		if err == nil || !strings.Contains(err.Error(), "10 entries not stored") {
			t.Fatalf("Close = %v, want 10 entries not stored", err)
		}
		if err := b.Save(context.Background(), entries(1)); !errors.Is(err, ErrClosed) {
			t.Errorf("Save after Close = %v, want ErrClosed", err)
		}
	})
}

// pickyWriter refuses, for its content, any batch holding a "poison" entry,
// as a database refuses a value it cannot hold.
type pickyWriter struct {
	mu     sync.Mutex
	rows   int
	writes int
	aside  []Rejected
}

// WriteAside keeps the dead letters, as a table would.
func (w *pickyWriter) WriteAside(_ context.Context, rs []Rejected) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.aside = append(w.aside, rs...)
	return nil
}

func (w *pickyWriter) WriteBatch(_ context.Context, batch []models.LogEntry) (int, error) {
	return 0, w.write(batch)
}

func (w *pickyWriter) write(batch []models.LogEntry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	for i := range batch {
		if batch[i].Service == "poison" {
			return &RejectedError{Reason: "data_exception", Err: errors.New("invalid byte sequence")}
		}
	}
	w.rows += len(batch)
	return nil
}

func TestPoisonEntriesSetAside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &pickyWriter{}
		b := NewBatcher(w, BatchConfig{Size: 1000, FlushInterval: time.Hour}, "fake", discard)
		batch := entries(1000)
		for _, i := range []int{3, 500, 501} {
			batch[i].Service, batch[i].Message = "poison", fmt.Sprint("bad ", i)
		}
		if err := b.Save(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v (refused entries are not lost ones)", err)
		}
		st := b.Status()
		if w.rows != 997 || st.Stored != 997 || st.Rejected != 3 || st.Pending != 0 || st.State != StateOK {
			t.Errorf("rows %d, status %+v; want 997 stored, 3 rejected", w.rows, st)
		}
		if st.RejectedReasons["data_exception"] != 3 {
			t.Errorf("rejected reasons = %v", st.RejectedReasons)
		}
		// Bisection: about 2*log2(1000) writes per poison entry, not 1000.
		if w.writes > 80 {
			t.Errorf("%d writes to find 3 poison entries", w.writes)
		}
		rej := w.aside
		if len(rej) != 3 || rej[0].Entry.Message != "bad 3" || rej[2].Entry.Message != "bad 501" ||
			rej[0].Reason != "data_exception" || rej[0].Error == "" {
			t.Errorf("dead letters = %+v, want the 3 refused entries with their reason and error", rej)
		}
	})
}

func TestBatchBytesBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := &fakeWriter{}
		big := models.LogEntry{Message: strings.Repeat("m", 60<<10)}
		b := NewBatcher(w, BatchConfig{Size: 1000, MaxBytes: 1 << 20, FlushInterval: time.Hour}, "fake", discard)
		for range 40 {
			if err := b.Save(context.Background(), []models.LogEntry{big}); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if w.rows != 40 || len(w.sizes) < 2 || w.sizes[0] != 18 {
			t.Errorf("batches %v, want 18 entries of 60 KiB (just past 1 MiB) per batch", w.sizes)
		}
	})
}

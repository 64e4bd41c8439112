package storage

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/backoff"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Defaults for the zero fields of BatchConfig.
const (
	DefaultBatchSize     = 1000
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultRetryMax      = 5 * time.Second
)

// BatchConfig tunes a Batcher. A zero field means its default.
type BatchConfig struct {
	Size          int           // entries per transaction, at most (a little more when a worker's batch straddles)
	FlushInterval time.Duration // longest an entry waits before its batch is written
	RetryMax      time.Duration // cap on the delay between attempts at a failed batch
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.Size <= 0 {
		c.Size = DefaultBatchSize
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.RetryMax <= 0 {
		c.RetryMax = DefaultRetryMax
	}
	return c
}

// Writer commits one batch in one transaction. It is called from a single
// goroutine. An error means nothing of the batch was committed.
type Writer interface {
	WriteBatch(ctx context.Context, batch []models.LogEntry) error
}

// Batcher collects entries from many workers and writes them through one
// Writer goroutine, Size entries or FlushInterval at a time, whichever
// comes first. A failed batch is retried with backoff until it succeeds or
// Close gives up; meanwhile Save blocks once a second batch has gathered,
// which fills the pool's queue, which makes the receivers drop. Save, Status
// and Close are safe for concurrent use.
type Batcher struct {
	w       Writer
	cfg     BatchConfig
	backend string
	log     *slog.Logger

	mu      sync.Mutex
	pending []models.LogEntry
	spare   []models.LogEntry // the last written batch, reused
	room    chan struct{}     // closed (and replaced) whenever pending is taken
	closed  bool
	lastErr string

	kick    chan struct{} // buffered 1: pending reached Size
	closing chan struct{} // closed by Close: flush and stop
	done    chan struct{} // closed by the writer goroutine when it returns

	// ctx is passed to the Writer; cancelled when Close's deadline passes.
	ctx    context.Context
	cancel context.CancelFunc

	accepted atomic.Uint64 // entries taken by Save
	stored   atomic.Uint64 // entries committed
	failing  atomic.Bool
}

// NewBatcher starts the writer goroutine; Close stops it.
func NewBatcher(w Writer, cfg BatchConfig, backend string, logger *slog.Logger) *Batcher {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher{
		w: w, cfg: cfg, backend: backend, log: logger,
		pending: make([]models.LogEntry, 0, cfg.Size+64),
		spare:   make([]models.LogEntry, 0, cfg.Size+64),
		room:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
	go b.run()
	return b
}

// Save hands batch over for writing; it does not keep batch. It blocks
// while a full batch is already waiting, until there is room or ctx ends.
func (b *Batcher) Save(ctx context.Context, batch []models.LogEntry) error {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return ErrClosed
		}
		if len(b.pending) < b.cfg.Size {
			b.pending = append(b.pending, batch...)
			if len(b.pending) >= b.cfg.Size {
				select {
				case b.kick <- struct{}{}:
				default:
				}
			}
			b.mu.Unlock()
			b.accepted.Add(uint64(len(batch)))
			return nil
		}
		room := b.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Status reports the batcher's health and progress.
func (b *Batcher) Status() Status {
	s := Status{Backend: b.backend, State: StateOK, Stored: b.stored.Load()}
	if b.failing.Load() {
		s.State = StateFailing
	}
	b.mu.Lock()
	s.LastError = b.lastErr
	b.mu.Unlock()
	s.Pending = int(b.accepted.Load() - s.Stored)
	return s
}

// Failing reports whether writes are failing now.
func (b *Batcher) Failing() bool { return b.failing.Load() }

// Close writes what is pending and stops. If ctx ends first, the write in
// progress is abandoned and Close reports how many entries were not stored.
func (b *Batcher) Close(ctx context.Context) error {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.closing)
	}
	b.mu.Unlock()
	var err error
	select {
	case <-b.done:
	case <-ctx.Done():
		b.cancel()
		<-b.done
		err = ctx.Err()
	}
	b.cancel()
	if lost := b.accepted.Load() - b.stored.Load(); lost > 0 {
		return fmt.Errorf("flush %s: %d entries not stored: %w", b.backend, lost, err)
	}
	return nil
}

// run is the writer goroutine.
func (b *Batcher) run() {
	defer close(b.done)
	tick := time.NewTicker(b.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-b.kick:
		case <-tick.C:
		case <-b.closing:
			for b.write(b.take()) {
			}
			return
		}
		b.write(b.take())
	}
}

// take removes and returns the pending entries, waking blocked Savers.
func (b *Batcher) take() []models.LogEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	batch := b.pending
	b.pending = b.spare[:0]
	b.spare = nil
	close(b.room)
	b.room = make(chan struct{})
	return batch
}

// write commits batch, retrying with backoff. It reports whether it wrote
// anything; false for an empty batch or when the batcher gave up.
func (b *Batcher) write(batch []models.LogEntry) bool {
	defer func() {
		clear(batch) // let the strings go
		b.mu.Lock()
		b.spare = batch[:0]
		b.mu.Unlock()
	}()
	if len(batch) == 0 {
		return false
	}
	bo := backoff.Backoff{Max: b.cfg.RetryMax}
	for attempt := 1; ; attempt++ {
		err := b.w.WriteBatch(b.ctx, batch)
		if err == nil {
			b.stored.Add(uint64(len(batch)))
			if b.failing.Swap(false) {
				b.log.Info("storage recovered", "attempts", attempt)
			}
			return true
		}
		if b.ctx.Err() != nil {
			return false
		}
		b.failing.Store(true)
		b.mu.Lock()
		b.lastErr = err.Error()
		b.mu.Unlock()
		d := bo.Next()
		b.log.Warn("storage write failed; will retry", "entries", len(batch), "attempt", attempt, "retry_in", d.Round(time.Millisecond), "err", err)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-b.ctx.Done():
			t.Stop()
			return false
		}
	}
}

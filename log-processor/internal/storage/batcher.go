package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/backoff"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Defaults for the zero fields of BatchConfig.
const (
	DefaultBatchSize     = 1000
	DefaultBatchBytes    = 8 << 20
	DefaultFlushInterval = 200 * time.Millisecond
	DefaultRetryMax      = 5 * time.Second
	// DefaultRejectedKeep is how many dead letters the memory store keeps.
	DefaultRejectedKeep = 100
)

// BatchConfig tunes a Batcher. A zero field means its default.
type BatchConfig struct {
	Size          int           // entries per transaction, at most (a little more when a worker's batch straddles)
	MaxBytes      int           // bytes (models.LogEntry.Size) per transaction, at most, likewise
	FlushInterval time.Duration // longest an entry waits before its batch is written
	RetryMax      time.Duration // cap on the delay between attempts at a failed batch
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.Size <= 0 {
		c.Size = DefaultBatchSize
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultBatchBytes
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
// goroutine. An error means nothing of the batch was committed; a
// *RejectedError means the database refused the batch for its content, so
// that the same batch can never succeed. On success, duplicates is how many
// entries of the batch were already stored (entries the message bus
// delivered again; see models.BusID) and were skipped.
type Writer interface {
	WriteBatch(ctx context.Context, batch []models.LogEntry) (duplicates int, err error)
}

// AsideWriter is a Writer that keeps dead letters durably: the Batcher
// sets aside what the database refuses through it.
type AsideWriter interface {
	WriteAside(ctx context.Context, rs []Rejected) error
}

// RejectedError says a database refused a write for a value it cannot hold
// (a data exception, a constraint, a size limit) rather than for being
// unreachable. Reason is a short snake_case name for counting.
type RejectedError struct {
	Reason string
	Err    error
}

func (e *RejectedError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *RejectedError) Unwrap() error { return e.Err }

// Batcher collects entries from many workers and writes them through one
// Writer goroutine, Size entries (or MaxBytes) or FlushInterval at a time,
// whichever comes first.
//
// A batch that fails because the database is unreachable is retried with
// backoff until it succeeds or Close gives up; meanwhile Save blocks once a
// second batch has gathered, which fills the pool's queue, which makes the
// receivers drop. A batch the database refuses for its content is split in
// halves until the refused entries are found: those are set aside (counted
// by reason, kept as dead letters through an AsideWriter), and every other
// entry is stored. Save, Status, Rejected and Close are safe for concurrent
// use.
type Batcher struct {
	w       Writer
	cfg     BatchConfig
	backend string
	log     *slog.Logger

	mu           sync.Mutex
	pending      []models.LogEntry
	pendingBytes int
	spare        []models.LogEntry // the last written batch, reused
	room         chan struct{}     // closed (and replaced) whenever pending is taken
	progress     chan struct{}     // closed (and replaced) whenever a batch is resolved
	closed       bool
	lastErr      string
	rejectedBy   map[string]uint64 // refused entries by reason

	kick    chan struct{} // buffered 1: pending reached Size or MaxBytes
	closing chan struct{} // closed by Close: flush and stop
	done    chan struct{} // closed by the writer goroutine when it returns

	// ctx is passed to the Writer; cancelled when Close's deadline passes.
	ctx    context.Context
	cancel context.CancelFunc

	accepted    atomic.Uint64 // entries taken by Save
	stored      atomic.Uint64 // entries committed
	nRejected   atomic.Uint64 // entries refused by the database
	duplicates  atomic.Uint64 // entries skipped as already stored
	writes      Latency       // the duration of every WriteBatch call
	writeErrors atomic.Uint64 // WriteBatch calls that failed
	failing     atomic.Bool
}

// NewBatcher starts the writer goroutine; Close stops it.
func NewBatcher(w Writer, cfg BatchConfig, backend string, logger *slog.Logger) *Batcher {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	b := &Batcher{
		w: w, cfg: cfg, backend: backend, log: logger,
		pending:    make([]models.LogEntry, 0, cfg.Size+64),
		spare:      make([]models.LogEntry, 0, cfg.Size+64),
		room:       make(chan struct{}),
		progress:   make(chan struct{}),
		rejectedBy: make(map[string]uint64),
		kick:       make(chan struct{}, 1),
		closing:    make(chan struct{}),
		done:       make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
	}
	go b.run()
	return b
}

// Save hands batch over for writing; it does not keep batch. It blocks
// while a full batch is already waiting, until there is room or ctx ends.
func (b *Batcher) Save(ctx context.Context, batch []models.LogEntry) error {
	size := 0
	for i := range batch {
		size += batch[i].Size()
	}
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return ErrClosed
		}
		if len(b.pending) < b.cfg.Size && b.pendingBytes < b.cfg.MaxBytes {
			b.pending = append(b.pending, batch...)
			b.pendingBytes += size
			// Counted under the lock, so that the count never lags the
			// order of pending: Sync relies on it.
			b.accepted.Add(uint64(len(batch)))
			if len(b.pending) >= b.cfg.Size || b.pendingBytes >= b.cfg.MaxBytes {
				select {
				case b.kick <- struct{}{}:
				default:
				}
			}
			b.mu.Unlock()
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
	w := b.writes.Snapshot()
	s := Status{Backend: b.backend, State: StateOK, Stored: b.stored.Load(), Rejected: b.nRejected.Load(),
		WriteErrors: b.writeErrors.Load(), Writes: &w, Duplicates: b.duplicates.Load()}
	if b.failing.Load() {
		s.State = StateFailing
	}
	b.mu.Lock()
	s.LastError = b.lastErr
	s.RejectedReasons = maps.Clone(b.rejectedBy)
	b.mu.Unlock()
	s.Pending = int(b.accepted.Load() - s.Stored - s.Rejected - s.Duplicates)
	return s
}

// resolved is how many accepted entries have been stored, refused or
// skipped as duplicates.
func (b *Batcher) resolved() uint64 {
	return b.stored.Load() + b.nRejected.Load() + b.duplicates.Load()
}

// Sync waits until every entry saved before the call is committed, set
// aside as refused, or skipped as a duplicate (entries resolve in the order
// they were saved, so once as many are resolved as had been accepted, these
// are); a writer acknowledging a
// message bus calls it before it acknowledges. It asks for the pending
// batch to be written now rather than at the next FlushInterval. It fails
// when ctx ends first, or with ErrClosed when the batcher gave up on them.
func (b *Batcher) Sync(ctx context.Context) error {
	target := b.accepted.Load()
	select {
	case b.kick <- struct{}{}:
	default:
	}
	for {
		b.mu.Lock()
		progress := b.progress
		b.mu.Unlock()
		if b.resolved() >= target {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		case <-b.done:
			if b.resolved() >= target {
				return nil
			}
			return ErrClosed
		}
	}
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
	if lost := b.accepted.Load() - b.resolved(); lost > 0 {
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
	b.pending, b.pendingBytes = b.spare[:0], 0
	b.spare = nil
	close(b.room)
	b.room = make(chan struct{})
	return batch
}

// write commits batch, setting aside what the database refuses. It reports
// whether it wrote anything; false for an empty batch or when the batcher
// gave up.
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
	ok := b.commit(batch)
	b.mu.Lock()
	close(b.progress)
	b.progress = make(chan struct{})
	b.mu.Unlock()
	return ok
}

// commit writes batch, retrying with backoff while the database is
// unreachable. When it refuses the batch's content, commit splits the batch
// and commits each half, down to single entries, which are set aside. It
// returns false only when the batcher gave up (Close's deadline).
func (b *Batcher) commit(batch []models.LogEntry) bool {
	bo := backoff.Backoff{Max: b.cfg.RetryMax}
	for attempt := 1; ; attempt++ {
		start := time.Now()
		dups, err := b.w.WriteBatch(b.ctx, batch)
		b.writes.Observe(time.Since(start))
		if err != nil {
			b.writeErrors.Add(1)
		}
		if err == nil {
			dups = min(max(dups, 0), len(batch))
			b.duplicates.Add(uint64(dups))
			b.stored.Add(uint64(len(batch) - dups))
			if b.failing.Swap(false) {
				b.log.Info("storage recovered", "attempts", attempt)
			}
			return true
		}
		if b.ctx.Err() != nil {
			return false
		}
		if re := (*RejectedError)(nil); errors.As(err, &re) {
			if len(batch) == 1 {
				b.reject(batch[0], re)
				return true
			}
			half := len(batch) / 2
			return b.commit(batch[:half]) && b.commit(batch[half:])
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

// reject sets e aside: counted by reason and kept as a dead letter
// (durably when the Writer is an AsideWriter).
func (b *Batcher) reject(e models.LogEntry, re *RejectedError) {
	b.log.Warn("storage refused an entry; set aside", "reason", re.Reason, "err", re.Err,
		"service", e.Service, "source", e.Source, "timestamp", e.Timestamp)
	r := Rejected{Entry: &e, Reason: re.Reason, Source: e.Source, Error: re.Err.Error(), At: time.Now().UTC()}
	if aw, ok := b.w.(AsideWriter); ok {
		if err := aw.WriteAside(b.ctx, []Rejected{r}); err != nil {
			b.log.Error("a refused entry could not be kept as a dead letter", "reason", re.Reason, "err", err)
		}
	}
	b.mu.Lock()
	b.rejectedBy[re.Reason]++
	b.mu.Unlock()
	b.nRejected.Add(1)
}

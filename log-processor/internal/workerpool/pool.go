// Package workerpool runs a fixed number of workers that take log entries
// from one bounded queue and hand them, in batches, to a Store.
//
// Submitters apply backpressure with SubmitWithTimeout: when the queue stays
// full for the timeout the entry is refused and the caller counts it as
// dropped. Close drains everything that was accepted.
//
// Entries pass through two stages. A few gatherers (one per CPU) take
// entries off the queue and group whatever is waiting, up to MaxBatch, into
// a batch; the Workers take batches and save them. Handing over one entry
// at a time to fifty parked workers costs a goroutine wake-up per entry and
// makes the queue's lock the bottleneck; gatherers keep that hand-over
// between a few running goroutines and wake a worker once per batch.
package workerpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/budget"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Defaults for the zero fields of Config.
const (
	DefaultWorkers   = 50
	DefaultQueueSize = 10000
	// DefaultQueueBytes bounds the memory of the entries in the pool
	// (models.LogEntry.Size), queued or being saved.
	DefaultQueueBytes = 32 << 20
	// DefaultMaxBatch bounds how many queued entries one worker takes
	// before calling the Store. Under a flood, 256 rather than 64 took a
	// tenth off the processor's CPU per message (fewer hand-offs, locks
	// and wake-ups per entry).
	DefaultMaxBatch = 256
)

// Config sizes a Pool. A zero field means its default.
type Config struct {
	Workers    int   // number of worker goroutines
	QueueSize  int   // capacity of the jobs queue, in entries
	QueueBytes int64 // bound on the bytes of the entries in the pool
	MaxBatch   int   // most entries a worker passes to one Store.Save call
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	return c
}

// Store is where workers put entries. Save is called concurrently from every
// worker; it must not keep batch after returning. An error means the batch
// was not stored; the pool logs it and counts the entries as failed.
//
// Sync waits until every entry saved before the call is durable (a store
// whose Save commits later, in batches); the pool calls it from one
// goroutine, for the entries submitted with a queue.Ack, and resolves
// those only then. A store whose Save commits at once returns nil.
type Store interface {
	Save(ctx context.Context, batch []models.LogEntry) error
	Sync(ctx context.Context) error
}

// Pool is a bounded queue with a fixed set of workers: a queue.Queue.
// SubmitWithTimeout, SubmitAll and Stats are safe for concurrent use. Close
// must be called once, after every submitter has returned.
type Pool struct {
	cfg   Config
	store Store
	log   *slog.Logger

	// jobs is sent to by SubmitWithTimeout and closed by Close; the
	// gatherers drain it until it is closed.
	jobs chan job
	// batches is sent to by the gatherers and closed once they have all
	// returned; the workers drain it until it is closed.
	batches chan batch
	// free holds empty batch buffers for reuse; never closed.
	free chan []models.LogEntry
	// jobBufs holds buffers of MaxBatch entries for SubmitAll's jobs (a
	// batch of entries is cut into jobs of at most MaxBatch), which reach
	// a worker as they are (no second copy) and come back here.
	jobBufs sync.Pool
	// slots is the queue's room in entries (QueueSize): taken by a
	// submitter before it sends its job, given back as a gatherer takes
	// the job off jobs. Every job holds at least one entry, so jobs (of
	// QueueSize) always has room for a job whose entries are taken.
	slots *budget.Budget
	// inHand counts entries taken off jobs but not yet processed, so that
	// Stats.Queue covers them.
	inHand atomic.Int64
	// bytes is the Size of every entry accepted and not yet processed.
	bytes *budget.Budget

	gatherers sync.WaitGroup
	working   sync.WaitGroup // the workers

	// syncing holds the acks of entries saved and not yet synced; the
	// workers add to it and send on syncKick (buffered 1), which is
	// closed once they have all returned. The syncer takes the acks,
	// calls Store.Sync and resolves them.
	syncMu   sync.Mutex
	syncing  []ackPart
	syncKick chan struct{}

	// ctx is passed to Store.Save; cancel aborts a drain that overran its
	// deadline.
	ctx    context.Context
	cancel context.CancelFunc

	wg      sync.WaitGroup
	workers []workerStats
}

// workerStats is written by one worker only and padded so that workers do
// not share cache lines.
type workerStats struct {
	processed atomic.Uint64
	failed    atomic.Uint64
	_         [48]byte
}

// New starts a pool of cfg.Workers workers saving into store.
func New(cfg Config, store Store, logger *slog.Logger) *Pool {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	ngather := min(runtime.GOMAXPROCS(0), cfg.Workers)
	p := &Pool{
		cfg:     cfg,
		store:   store,
		log:     logger,
		jobs:    make(chan job, cfg.QueueSize),
		batches: make(chan batch),
		// Every buffer is either free, held by a gatherer, or held by a
		// worker: this many are enough for nobody to wait for one.
		free:     make(chan []models.LogEntry, cfg.Workers+ngather),
		ctx:      ctx,
		cancel:   cancel,
		workers:  make([]workerStats, cfg.Workers),
		bytes:    budget.New(cfg.QueueBytes),
		slots:    budget.New(int64(cfg.QueueSize)),
		syncKick: make(chan struct{}, 1),
	}
	for range cfg.Workers + ngather {
		p.free <- make([]models.LogEntry, 0, cfg.MaxBatch)
	}
	for range ngather {
		p.gatherers.Go(p.gather)
	}
	for i := range cfg.Workers {
		p.working.Go(func() { p.work(&p.workers[i]) })
	}
	// The gatherers are the senders on batches: close it after them; the
	// workers send on syncKick: close it after them.
	p.wg.Go(func() { p.gatherers.Wait(); close(p.batches) })
	p.wg.Go(func() { p.working.Wait(); close(p.syncKick) })
	p.wg.Go(p.sync)
	return p
}

// SubmitWithTimeout queues e, waiting at most timeout for room, in entries
// and in bytes. It reports whether e was accepted; a refused entry is the
// caller's to count as dropped. A timeout of zero or less never waits.
func (p *Pool) SubmitWithTimeout(e models.LogEntry, timeout time.Duration) bool {
	size := int64(e.Size())
	if !p.reserve(1, size, timeout) {
		return false
	}
	p.jobs <- job{e: e, size: size} // never blocks: see slots
	return true
}

// SubmitAll queues every entry of entries or none of them, waiting at most
// timeout for room for all; it returns nil when they were accepted, or
// queue.ErrTooLarge (more than QueueSize entries or QueueBytes bytes) or
// queue.ErrFull. Their room is reserved at once, so that they are taken
// whole; they travel as jobs of at most MaxBatch entries, each copied once
// into a pooled buffer that reaches a worker as it is: the caller may
// reuse entries at once. An ack is resolved once the entries are saved
// and the store has synced them.
func (p *Pool) SubmitAll(entries []models.LogEntry, timeout time.Duration, ack *queue.Ack) error {
	if len(entries) == 0 {
		return nil
	}
	size := int64(0)
	for i := range entries {
		size += int64(entries[i].Size())
	}
	if len(entries) > p.cfg.QueueSize || size > p.cfg.QueueBytes {
		return queue.ErrTooLarge
	}
	if !p.reserve(int64(len(entries)), size, timeout) {
		return queue.ErrFull
	}
	for rest := entries; len(rest) > 0; {
		n := min(len(rest), p.cfg.MaxBatch)
		var buf []models.LogEntry
		if b, ok := p.jobBufs.Get().(*[]models.LogEntry); ok {
			buf = (*b)[:0]
		} else {
			buf = make([]models.LogEntry, 0, p.cfg.MaxBatch)
		}
		j := job{many: append(buf, rest[:n]...), ack: ack}
		if n == len(entries) {
			j.size = size
		} else {
			for i := range j.many {
				j.size += int64(j.many[i].Size())
			}
		}
		p.jobs <- j // never blocks: see slots
		rest = rest[n:]
	}
	return nil
}

// reserve takes n entries of the queue's room and size bytes of the pool's,
// waiting at most timeout for both; the timer is made only when it waits.
func (p *Pool) reserve(n, size int64, timeout time.Duration) bool {
	if p.slots.TryTake(n) {
		if p.bytes.TryTake(size) {
			return true
		}
		p.slots.Give(n)
	}
	if timeout <= 0 {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	if !p.slots.Take(n, t.C) {
		return false
	}
	if !p.bytes.Take(size, t.C) {
		p.slots.Give(n)
		return false
	}
	return true
}

// Capacity returns the pool's bounds: entries and bytes.
func (p *Pool) Capacity() (entries int, bytes int64) { return p.cfg.QueueSize, p.cfg.QueueBytes }

// Stats returns a snapshot. Safe to call at any time, also after Close.
func (p *Pool) Stats() queue.Stats {
	s := queue.Stats{Queued: int(p.slots.Used() + p.inHand.Load()), Workers: p.cfg.Workers, Bytes: p.bytes.Used()}
	for i := range p.workers {
		s.Processed += p.workers[i].processed.Load()
		s.Failed += p.workers[i].failed.Load()
	}
	return s
}

// Close stops accepting work and waits until the workers have saved every
// queued entry. If ctx ends first, the Store's context is cancelled, Close
// waits for the workers to give up, and returns an error saying how many
// entries were not processed. Calling SubmitWithTimeout after Close panics.
func (p *Pool) Close(ctx context.Context) error {
	close(p.jobs)
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		p.cancel()
		<-done
		err = fmt.Errorf("drain pool: %w", ctx.Err())
	}
	p.cancel()
	return err
}

// job is a queued entry with its Size, computed once at submission.
type job struct {
	e    models.LogEntry
	many []models.LogEntry // SubmitAll's entries, instead of e
	size int64             // of e, or of all of many
	ack  *queue.Ack        // of many, or nil
}

// batch is what a gatherer hands a worker: entries and their total Size.
type batch struct {
	entries []models.LogEntry
	bytes   int64
	job     bool       // entries is a job buffer (jobBufs), not a free one
	ack     *queue.Ack // of all the entries (they come from one job), or nil
}

// ackPart is n entries of an ack.
type ackPart struct {
	ack *queue.Ack
	n   int
}

// gather takes entries off the queue, groups what is waiting into batches
// of at most MaxBatch, and passes them to the workers.
func (p *Pool) gather() {
	for j := range p.jobs {
		if j.many != nil {
			p.gatherMany(j)
			continue
		}
		b := batch{entries: append(<-p.free, j.e), bytes: j.size}
		var many job // a many-entry job met while filling: handed on after b
	fill:
		for len(b.entries) < cap(b.entries) {
			select {
			case j, ok := <-p.jobs:
				if !ok {
					break fill
				}
				if j.many != nil {
					many = j
					break fill
				}
				b.entries, b.bytes = append(b.entries, j.e), b.bytes+j.size
			default:
				break fill
			}
		}
		// Off the queue, into the hand: a snapshot between the two
		// counts them nowhere rather than twice.
		p.slots.Give(int64(len(b.entries)))
		p.inHand.Add(int64(len(b.entries)))
		p.batches <- b
		if many.many != nil {
			p.gatherMany(many)
		}
	}
}

// gatherMany hands a many-entry job (a job buffer of at most MaxBatch
// entries) to a worker as it is.
func (p *Pool) gatherMany(j job) {
	p.slots.Give(int64(len(j.many)))
	p.inHand.Add(int64(len(j.many)))
	p.batches <- batch{entries: j.many, bytes: j.size, job: true, ack: j.ack}
}

// work is one worker: it saves batches until there are no more.
func (p *Pool) work(st *workerStats) {
	for b := range p.batches {
		entries, n := b.entries, len(b.entries)
		err := p.ctx.Err()
		if err == nil {
			if err = p.store.Save(p.ctx, entries); err != nil {
				st.failed.Add(uint64(n))
				if !errors.Is(err, context.Canceled) {
					p.log.Warn("store batch failed", "entries", n, "err", err)
				}
			}
			st.processed.Add(uint64(n))
		}
		// Else: hard stop, the drain deadline passed. What is left is
		// lost, and counted as such by the caller from Stats.
		switch {
		case b.ack == nil:
		case err != nil:
			b.ack.Done(n, err)
		default:
			p.syncMu.Lock()
			p.syncing = append(p.syncing, ackPart{b.ack, n})
			p.syncMu.Unlock()
			select {
			case p.syncKick <- struct{}{}:
			default:
			}
		}
		p.inHand.Add(-int64(n))
		p.bytes.Give(b.bytes)
		clear(entries) // let the strings go
		if b.job {
			entries = entries[:0]
			p.jobBufs.Put(&entries)
			continue
		}
		p.free <- entries[:0]
	}
}

// sync resolves the acks of saved entries once the store has synced them:
// one Sync for every ack saved before it, so that concurrent requests
// share a commit.
func (p *Pool) sync() {
	var parts []ackPart
	for range p.syncKick {
		for {
			p.syncMu.Lock()
			parts, p.syncing = p.syncing, parts[:0]
			p.syncMu.Unlock()
			if len(parts) == 0 {
				break
			}
			err := p.store.Sync(p.ctx)
			for _, a := range parts {
				a.ack.Done(a.n, err)
			}
			clear(parts)
		}
	}
}

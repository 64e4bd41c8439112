// Package workerpool runs a fixed number of workers that take log entries
// from one bounded queue and hand them, in small batches, to a Store.
//
// Submitters apply backpressure with SubmitWithTimeout: when the queue stays
// full for the timeout the entry is refused and the caller counts it as
// dropped. Close drains everything that was accepted.
package workerpool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Defaults for the zero fields of Config.
const (
	DefaultWorkers   = 50
	DefaultQueueSize = 10000
	// DefaultMaxBatch bounds how many queued entries one worker takes
	// before calling the Store.
	DefaultMaxBatch = 64
)

// Config sizes a Pool. A zero field means its default.
type Config struct {
	Workers   int // number of worker goroutines
	QueueSize int // capacity of the jobs queue
	MaxBatch  int // most entries a worker passes to one Store.Save call
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	return c
}

// Store is where workers put entries. Save is called concurrently from every
// worker; it must not keep batch after returning. An error means the batch
// was not stored; the pool logs it and counts the entries as failed.
type Store interface {
	Save(ctx context.Context, batch []models.LogEntry) error
}

// Stats is a snapshot of the pool. The field names are the JSON keys of the
// seed's /stats response.
type Stats struct {
	Processed uint64 // entries that left the pool: handed to the Store and returned
	Queue     int    // entries waiting in the queue now
	Workers   int    // number of workers
	Failed    uint64 `json:"-"` // of Processed, entries whose Save returned an error
}

// Pool is a bounded queue with a fixed set of workers. SubmitWithTimeout and
// Stats are safe for concurrent use. Close must be called once, after every
// submitter has returned.
type Pool struct {
	cfg   Config
	store Store
	log   *slog.Logger

	// jobs is sent to by SubmitWithTimeout and closed by Close; the workers
	// drain it until it is closed.
	jobs chan models.LogEntry

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
	p := &Pool{
		cfg:     cfg,
		store:   store,
		log:     logger,
		jobs:    make(chan models.LogEntry, cfg.QueueSize),
		ctx:     ctx,
		cancel:  cancel,
		workers: make([]workerStats, cfg.Workers),
	}
	for i := range cfg.Workers {
		p.wg.Go(func() { p.work(&p.workers[i]) })
	}
	return p
}

// SubmitWithTimeout queues e, waiting at most timeout for room. It reports
// whether e was accepted; a refused entry is the caller's to count as
// dropped. A timeout of zero or less never waits.
func (p *Pool) SubmitWithTimeout(e models.LogEntry, timeout time.Duration) bool {
	select {
	case p.jobs <- e:
		return true
	default:
	}
	if timeout <= 0 {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case p.jobs <- e:
		return true
	case <-t.C:
		return false
	}
}

// Stats returns a snapshot. Safe to call at any time, also after Close.
func (p *Pool) Stats() Stats {
	s := Stats{Queue: len(p.jobs), Workers: p.cfg.Workers}
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

// work is one worker: it takes an entry, gathers whatever else is already
// queued up to MaxBatch, and saves the batch.
func (p *Pool) work(st *workerStats) {
	batch := make([]models.LogEntry, 0, p.cfg.MaxBatch)
	for e := range p.jobs {
		batch = append(batch[:0], e)
	gather:
		for len(batch) < cap(batch) {
			select {
			case e, ok := <-p.jobs:
				if !ok {
					break gather
				}
				batch = append(batch, e)
			default:
				break gather
			}
		}
		if p.ctx.Err() != nil {
			// Hard stop: the drain deadline passed. What is left is lost,
			// and counted as such by the caller from Stats.
			continue
		}
		if err := p.store.Save(p.ctx, batch); err != nil {
			st.failed.Add(uint64(len(batch)))
			if !errors.Is(err, context.Canceled) {
				p.log.Warn("store batch failed", "entries", len(batch), "err", err)
			}
		}
		st.processed.Add(uint64(len(batch)))
		clear(batch) // let the strings go
	}
}

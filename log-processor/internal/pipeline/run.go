package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// readers runs the sources: every one for the whole run, except the
// Leased ones of a cluster, which run while the cluster gives them to this
// processor.
type readers struct {
	sources []Source
	leased  []int // indexes of the Leased sources, in order
	log     *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // Run's; nil before Run
	running map[int]reader  // by source index
	wg      sync.WaitGroup  // every reader's goroutine
}

// reader is a running source: its cancel and its end.
type reader struct {
	cancel context.CancelFunc
	done   chan struct{} // closed by the reader's goroutine when Run returns
}

func newReaders(sources []Source, logger *slog.Logger) *readers {
	r := &readers{sources: sources, log: logger, running: map[int]reader{}}
	for i, s := range sources {
		if _, ok := s.(Leased); ok {
			r.leased = append(r.leased, i)
		}
	}
	return r
}

// leaseKeys returns the lease keys of the Leased sources, in order.
func (r *readers) leaseKeys() []string {
	keys := make([]string, len(r.leased))
	for j, i := range r.leased {
		keys[j] = r.sources[i].(Leased).LeaseKey()
	}
	return keys
}

// begin sets Run's context: sources started from now run under it.
func (r *readers) begin(ctx context.Context) {
	r.mu.Lock()
	r.ctx = ctx
	r.mu.Unlock()
}

// start runs source i until stop(i) or the end of Run's context.
func (r *readers) start(i int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.running[i]; ok || r.ctx == nil || r.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	rd := reader{cancel: cancel, done: make(chan struct{})}
	r.running[i] = rd
	r.wg.Go(func() {
		defer close(rd.done)
		if err := r.sources[i].Run(ctx); err != nil {
			r.log.Error("source stopped", "source", r.sources[i].Health().Name, "err", err)
		}
	})
}

// stop stops source i and waits until it has.
func (r *readers) stop(i int) {
	r.mu.Lock()
	rd, ok := r.running[i]
	delete(r.running, i)
	r.mu.Unlock()
	if ok {
		rd.cancel()
		<-rd.done
	}
}

// isRunning reports whether source i runs now.
func (r *readers) isRunning(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.running[i]
	return ok
}

// The cluster's hooks: j indexes the Leased sources.
func (r *readers) startLeased(j int) { r.start(r.leased[j]) }
func (r *readers) stopLeased(j int)  { r.stop(r.leased[j]) }

// Run reads from every source until ctx ends. Then, in order: the sources
// stop submitting (dialed ones close their connections, push paths refuse
// new requests and finish those in flight) and log their summaries; the
// queue hands on everything it accepted and storage writes it, both within
// one ShutdownTimeout (or until abandon, a second signal, is closed); and
// a drain report is logged. Run returns an error only when the drain could
// not finish, saying how many accepted entries were not stored. abandon
// may be nil.
func (p *Pipeline) Run(ctx context.Context, abandon <-chan struct{}) error {
	// dctx bounds the drain; its clock starts when ctx ends.
	dctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopDrain := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.ShutdownTimeout, cancel)
		context.AfterFunc(dctx, func() { t.Stop() })
	})
	defer stopDrain()
	if abandon != nil {
		go func() {
			select {
			case <-abandon:
				p.log.Warn("second signal: abandoning the drain")
				cancel()
			case <-dctx.Done():
			}
		}()
	}
	p.readers.begin(ctx)
	var clusterDone sync.WaitGroup
	if p.cluster != nil {
		// Starts and stops the Leased sources as leases come and go; when
		// ctx ends it stops them and gives the leases up.
		clusterDone.Go(func() { p.cluster.Run(ctx) })
	}
	for i := range p.readers.sources {
		if _, leased := p.readers.sources[i].(Leased); !leased || p.cluster == nil {
			p.readers.start(i)
		}
	}
	var writers sync.WaitGroup
	if p.consumer != nil {
		// Stops fetching when ctx ends; what it holds is stored and
		// acknowledged within the drain.
		writers.Go(func() { p.consumer.Run(ctx, dctx) })
	}
	<-ctx.Done()
	p.log.Info("shutting down: closing sources")
	clusterDone.Wait()
	p.readers.wg.Wait()
	// No source submits after this: the queue may close.
	var drainErr error
	if p.queue != nil {
		drainErr = p.queue.Close(dctx)
	}
	writers.Wait()
	closeErr := p.store.Close(dctx)
	return p.report(errors.Join(drainErr, closeErr))
}

// report logs the drain report and returns an error when accepted entries
// were lost.
func (p *Pipeline) report(drainErr error) error {
	s := p.Stats()
	var lost uint64
	attrs := []any{"accepted", s.Submitted}
	switch {
	case p.cfg.Bus == nil:
		// A retried request's entries (an Idempotency-Key, a bulk
		// document's _id) stored already are skipped as duplicates.
		lost = s.Submitted - min(s.Submitted, s.Stored+s.Storage.Rejected+s.Storage.Duplicates)
		attrs = append(attrs, "processed", s.Processed, "stored", s.Stored, "rejected_by_storage", s.Storage.Rejected,
			"duplicates", s.Storage.Duplicates)
	default:
		// What reached the stream is stored by whichever writer takes
		// it; only what was never published is lost. What this processor
		// stored came from the stream, published by any processor.
		if p.publisher != nil {
			ps := p.publisher.PublishStats()
			lost = ps.Lost
			attrs = append(attrs, "published", ps.Published)
		}
		attrs = append(attrs, "stored_from_stream", s.Stored, "rejected_by_storage", s.Storage.Rejected)
	}
	attrs = append(attrs, "dropped", s.Dropped, "lost", lost)
	if lost > 0 {
		p.log.Error("drain report", attrs...)
		if drainErr == nil {
			return fmt.Errorf("shutdown: %d accepted entries not stored", lost)
		}
		return fmt.Errorf("shutdown: %d accepted entries not stored: %w", lost, drainErr)
	}
	p.log.Info("drain report", attrs...)
	return nil
}

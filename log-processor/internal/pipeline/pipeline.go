// Package pipeline assembles the processor: one receiver per source, all
// feeding one worker pool, which saves into storage. It owns their order of
// start and stop and reports their combined stats.
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/receiver"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/workerpool"
)

// DefaultShutdownTimeout bounds the drain when Config.ShutdownTimeout is zero.
const DefaultShutdownTimeout = 10 * time.Second

// Config describes the whole pipeline. A zero field means its default.
type Config struct {
	URLs            []string        // one receiver per URL
	Receiver        receiver.Config // settings shared by every receiver; URL is set per source
	Pool            workerpool.Config
	ShutdownTimeout time.Duration // bound on draining the pool after the receivers stop
}

// Store is where the workers put entries, and what /stats reads the
// stored totals from. Save is called from many workers at once.
type Store interface {
	workerpool.Store
	Counts() storage.Counts
}

// Pipeline is built by New and run once by Run. Stats and Ready are safe to
// call at any time, from any goroutine.
type Pipeline struct {
	cfg       Config
	log       *slog.Logger
	store     Store
	pool      *workerpool.Pool
	receivers []*receiver.Receiver
}

// New builds the pipeline over store and starts its workers; receivers
// start in Run.
func New(cfg Config, store Store, logger *slog.Logger) *Pipeline {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	p := &Pipeline{cfg: cfg, log: logger, store: store}
	p.pool = workerpool.New(cfg.Pool, p.store, logger.With("component", "pool"))
	for _, u := range cfg.URLs {
		rc := cfg.Receiver
		rc.URL = u
		p.receivers = append(p.receivers, receiver.New(rc, p.pool, logger))
	}
	return p
}

// Run reads from every source until ctx ends. Then, in order: the receivers
// close their connections and stop submitting; the pool drains everything
// it accepted, bounded by ShutdownTimeout; each source logs its final
// summary; and a drain report is logged. Run returns an error only when the
// drain could not finish, saying how many accepted entries were lost.
func (p *Pipeline) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range p.receivers {
		wg.Go(func() { _ = r.Run(ctx) }) // Run returns nil once ctx ends
	}
	<-ctx.Done()
	p.log.Info("shutting down: closing sources")
	wg.Wait() // no receiver submits after this: the pool may close its queue

	dctx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	drainErr := p.pool.Close(dctx)

	for _, r := range p.receivers {
		r.LogSummary()
	}
	s := p.Stats()
	lost := s.Submitted - s.Processed
	report := p.log.Info
	if lost > 0 || drainErr != nil {
		report = p.log.Error
	}
	report("drain report", "accepted", s.Submitted, "processed", s.Processed,
		"stored", s.Processed-s.Failed, "dropped", s.Dropped, "lost", lost+s.Failed)
	if drainErr != nil {
		return fmt.Errorf("%w: %d accepted entries not processed", drainErr, lost)
	}
	return nil
}

// Stats is the processor's snapshot, served at /stats. Processed, Queue and
// Workers keep the seed's key names.
type Stats struct {
	Processed uint64 // entries that left the pool
	Queue     int    // entries waiting in the pool now
	Workers   int    // number of workers

	Received    uint64            `json:"received"`     // frames from all sources
	OK          uint64            `json:"ok"`           // valid entries
	ParseErr    uint64            `json:"parse_err"`    // rejected frames
	ParseErrors map[string]uint64 `json:"parse_errors"` // rejected frames by reason
	Ignored     uint64            `json:"ignored"`      // control frames
	Submitted   uint64            `json:"submitted"`    // entries the pool accepted
	Dropped     uint64            `json:"dropped"`      // entries refused by a full pool
	Failed      uint64            `json:"failed"`       // processed entries that storage refused

	ByLevel   map[string]uint64 `json:"by_level"`   // stored entries by level
	ByService map[string]uint64 `json:"by_service"` // stored entries by service

	Sources []receiver.Stats `json:"sources"`
}

// Stats returns a snapshot in which the counters add up: Received = OK +
// ParseErr + Ignored, OK = Submitted + Dropped, Processed <= Submitted.
func (p *Pipeline) Stats() Stats {
	// Read the pool first: an entry is processed only after it was
	// submitted, so reading the sources second can only find more.
	ps := p.pool.Stats()
	s := Stats{Queue: ps.Queue, Workers: ps.Workers, Sources: make([]receiver.Stats, len(p.receivers))}
	var total receiver.Counters
	for i, r := range p.receivers {
		s.Sources[i] = r.Stats()
		total.Add(s.Sources[i].Counters)
	}
	s.Received, s.OK, s.ParseErr, s.ParseErrors = total.Total, total.OK, total.ParseErr, total.ParseErrors
	s.Ignored, s.Submitted, s.Dropped = total.Ignored, total.Submitted, total.Dropped
	// A receiver counts a submission just after the pool accepted it, so a
	// worker may finish the entry a moment before it is counted.
	s.Processed = min(ps.Processed, s.Submitted)
	s.Failed = min(ps.Failed, s.Processed)
	c := p.store.Counts()
	s.ByLevel, s.ByService = c.ByLevel, c.ByService
	return s
}

// Readiness says whether every source is connected.
type Readiness struct {
	Status  string           `json:"status"` // ready, degraded (some sources down) or down (all)
	Sources []receiver.Stats `json:"sources"`
}

// Ready reports the sources' readiness.
func (p *Pipeline) Ready() Readiness {
	rd := Readiness{Sources: make([]receiver.Stats, len(p.receivers))}
	up := 0
	for i, r := range p.receivers {
		rd.Sources[i] = r.Stats()
		if rd.Sources[i].State == receiver.StateConnected {
			up++
		}
	}
	switch {
	case up == len(p.receivers):
		rd.Status = "ready"
	case up == 0:
		rd.Status = "down"
	default:
		rd.Status = "degraded"
	}
	return rd
}

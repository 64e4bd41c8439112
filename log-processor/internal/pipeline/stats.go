package pipeline

import (
	"context"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus"
	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
)

// Stats is the processor's snapshot, served at /stats. Processed, Queue and
// Workers keep the original design's key names.
type Stats struct {
	Processed uint64 // entries that left the queue
	Queue     int    // entries waiting in the queue now
	Workers   int    // number of workers (0 when a bus's publisher is the queue)

	QueueCapacity int   `json:"queue_capacity"`  // the queue's bound in entries
	QueueBytes    int64 `json:"queue_bytes"`     // bytes of the entries in the queue now
	QueueMaxBytes int64 `json:"queue_max_bytes"` // the queue's bound in bytes
	TailClients   int   `json:"tail_clients"`    // clients following /logs/tail

	Received     uint64            `json:"received"`        // frames from all sources
	OK           uint64            `json:"ok"`              // valid entries
	ParseErr     uint64            `json:"parse_err"`       // rejected frames
	ParseErrors  map[string]uint64 `json:"parse_errors"`    // rejected frames by reason
	Ignored      uint64            `json:"ignored"`         // control frames
	BelowMin     uint64            `json:"below_min_level"` // valid entries below the level floor
	DefaultLevel uint64            `json:"default_level"`   // valid entries without a level, given --default-level (part of ok)
	Submitted    uint64            `json:"submitted"`       // entries the queue accepted
	Dropped      uint64            `json:"dropped"`         // entries refused by a full queue
	DropReasons  map[string]uint64 `json:"drop_reasons"`    // dropped, by why the queue was full
	Failed       uint64            `json:"failed"`          // processed entries that storage refused
	Stored       uint64            `json:"stored"`          // entries storage committed in this run

	ByLevel   map[string]uint64 `json:"by_level"`   // entries processed in this run, by level
	ByService map[string]uint64 `json:"by_service"` // entries processed in this run, by service

	Storage StorageStats    `json:"storage"`
	Ingest  *push.GateStats `json:"ingest,omitempty"`  // the push paths' in-flight budget, with --ingest-addr
	Bus     *BusStats       `json:"bus,omitempty"`     // with a message bus only
	Cluster *ClusterStats   `json:"cluster,omitempty"` // with --cluster only
	Sources []intake.Stats  `json:"sources"`
}

// ClusterStats is this processor's view of its cluster.
type ClusterStats struct {
	Name    string   `json:"name"`
	ID      string   `json:"id"`      // this processor's member ID, as sources' owner shows it
	Members []string `json:"members"` // live members, as last seen
}

// BusStats is the message bus's part of Stats: the connection, then the
// publishing counters (when this processor ingests) and the writing ones
// (when it stores).
type BusStats struct {
	Role Role `json:"role"`
	bus.Status
	*bus.PublishStats
	*bus.ConsumeStats
}

// StorageStats is the store's status and its own totals: for SQLite and
// PostgreSQL these cover everything the database holds or has held, across
// restarts (and, for PostgreSQL, every processor sharing it).
type StorageStats struct {
	storage.Status
	Totals      *storage.Counts `json:"totals,omitempty"`
	TotalsError string          `json:"totals_error,omitempty"`
}

// sourceStats returns every source's rows, with each Leased source's owner
// in a cluster, and standby for those another processor reads.
func (p *Pipeline) sourceStats() []intake.Stats {
	var owners []string
	if p.cluster != nil {
		owners = p.cluster.Owners()
	}
	var out []intake.Stats
	j := 0 // index among the Leased sources
	for i, src := range p.readers.sources {
		rows := src.Stats()
		if _, leased := src.(Leased); leased {
			if p.cluster != nil {
				for k := range rows {
					if j < len(owners) {
						rows[k].Owner = owners[j]
					}
					if !p.readers.isRunning(i) {
						rows[k].State = intake.StateStandby
					}
				}
			}
			j++
		}
		out = append(out, rows...)
	}
	return out
}

// Stats returns a snapshot in which the counters add up: Received = OK +
// ParseErr + Ignored + BelowMin, OK = Submitted + Dropped, Processed <= Submitted.
func (p *Pipeline) Stats() Stats {
	// The queue is read before the sources, so their submitted counts are
	// the newer. Still, a source counts a submission just after the queue
	// took the entry, so a worker may process it (and storage commit it) a
	// moment before it is counted; the clamps below keep the snapshot
	// consistent.
	var qs queue.Stats
	s := Stats{}
	if p.queue != nil { // nil for a storing-only processor
		qs = p.queue.Stats()
		s.QueueCapacity, s.QueueMaxBytes = p.queue.Capacity()
	}
	s.Queue, s.Workers, s.QueueBytes = qs.Queued, qs.Workers, qs.Bytes
	if p.cfg.Tail != nil {
		s.TailClients = p.cfg.Tail.Clients()
	}
	s.Sources = p.sourceStats()
	if s.Sources == nil {
		s.Sources = []intake.Stats{}
	}
	if p.cluster != nil {
		s.Cluster = &ClusterStats{Name: p.cfg.Cluster.Name, ID: p.cluster.ID(), Members: p.cluster.Members()}
	}
	if p.cfg.Gate != nil {
		gs := p.cfg.Gate.Stats()
		s.Ingest = &gs
	}
	var total intake.Counters
	total.Add(intake.Counters{}) // maps present even with no source
	for i := range s.Sources {
		total.Add(s.Sources[i].Counters)
	}
	s.Received, s.OK, s.ParseErr, s.ParseErrors = total.Total, total.OK, total.ParseErr, total.ParseErrors
	s.Ignored, s.Submitted, s.Dropped, s.DropReasons = total.Ignored, total.Submitted, total.Dropped, total.DropReasons
	s.BelowMin, s.DefaultLevel = total.BelowMinLevel, total.DefaultLevel
	s.Processed = min(qs.Processed, s.Submitted)
	s.Failed = min(qs.Failed, s.Processed)
	s.Storage.Status = p.store.Status()
	if p.cfg.Bus == nil {
		s.Stored = min(s.Storage.Stored, s.Processed)
		s.Storage.Rejected = min(s.Storage.Rejected, s.Processed-s.Stored)
	} else {
		// What this processor stores came from the stream, published by
		// any processor: nothing to clamp against.
		s.Stored = s.Storage.Stored
		s.Bus = &BusStats{Role: p.cfg.Role, Status: p.cfg.Bus.Status()}
		if p.publisher != nil {
			ps := p.publisher.PublishStats()
			s.Bus.PublishStats = &ps
		}
		if p.consumer != nil {
			cs := p.consumer.ConsumeStats()
			s.Bus.ConsumeStats = &cs
		}
	}
	c := p.run.Counts(p.cfg.TopServices)
	s.ByLevel, s.ByService = c.ByLevel, c.ByService
	return s
}

// totalsTimeout bounds one computation of the store's totals.
const totalsTimeout = 5 * time.Second

// StatsWithTotals is Stats plus the store's own totals, which may cost a
// database query. Concurrent callers share one computation.
func (p *Pipeline) StatsWithTotals(ctx context.Context) Stats {
	ch := p.totals.DoChan("stats", func() (any, error) {
		// Not the first caller's context: the others wait on this too.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), totalsTimeout)
		defer cancel()
		s := p.Stats()
		if c, err := p.store.Counts(ctx, p.cfg.TopServices); err != nil {
			s.Storage.TotalsError = err.Error()
		} else {
			s.Storage.Totals = &c
		}
		return s, nil
	})
	select {
	case res := <-ch:
		return res.Val.(Stats)
	case <-ctx.Done():
		s := p.Stats()
		s.Storage.TotalsError = ctx.Err().Error()
		return s
	}
}

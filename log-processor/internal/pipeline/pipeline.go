// Package pipeline assembles the processor and owns its lifecycle: the
// sources, of every kind, feed one queue through the intake sink, and
// entries leave the queue into storage. The queue is the in-process worker
// pool, or, with a message bus, the JetStream stream: sources publish to
// it and a consumer shared by every processor stores from it. The
// pipeline orders their start and stop and reports their combined stats
// and readiness. It knows sources only through the Source interface and
// the queue only through queue.Queue.
//
// The files: pipeline.go (this one) assembles; run.go runs and stops;
// stats.go and ready.go report.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus"
	"github.com/logpipeline/log-processing-service/log-processor/internal/cluster"
	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/tail"
	"github.com/logpipeline/log-processing-service/log-processor/internal/workerpool"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// DefaultShutdownTimeout bounds the drain when Config.ShutdownTimeout is zero.
const DefaultShutdownTimeout = 10 * time.Second

// Source is one source of logs, of any kind: a dialed WebSocket, a push
// path (our own, or an ingest protocol's). It feeds an intake made by the
// pipeline's sink. Stats and Health are safe to call at any time, from
// any goroutine.
type Source interface {
	// Run reads (or takes pushes) until ctx ends, and returns once it
	// submits nothing more, having logged its final summary. It may be
	// called again after it returned (a cluster hands a source back).
	Run(ctx context.Context) error
	// Stats reports its counters: one row, or one per pushing token.
	Stats() []intake.Stats
	// Health reports its name, kind and state, for /readyz.
	Health() intake.Health
}

// Leased is a source that only one processor of a cluster may read at a
// time (a dialed source: two readers would store its logs twice). Its
// LeaseKey names it and everything that defines it. Sources that are not
// Leased (push paths) run on every processor.
type Leased interface {
	Source
	LeaseKey() string
}

// Config describes the whole pipeline. A zero field means its default.
type Config struct {
	// Sources are every source the processor reads, fed through Sink.
	Sources []Source
	Sink    *intake.Sink
	// Pool sizes the worker pool; with a Bus, Pool.QueueBytes bounds what
	// waits to be published.
	Pool            workerpool.Config
	ShutdownTimeout time.Duration // bound on draining the queue after the sources stop
	TopServices     int           // services named in Stats' by_service counts; the rest are summed as storage.OtherService
	// Tail, when not nil, is given every entry as it is stored.
	Tail *tail.Hub
	// Gate, when not nil, is the push paths' in-flight budget, shown in
	// Stats.
	Gate *push.Gate
	// Bus, when not nil, replaces the worker pool: entries go through its
	// stream. Role says which halves run here.
	Bus  *bus.Bus
	Role Role
	// Cluster, when not nil (and with a Bus), shares the Leased sources
	// with the other processors of the same cluster: each is read by one.
	Cluster *cluster.Config
}

// Role is which halves of the pipeline a processor runs.
type Role string

// Roles. With the in-process pool only RoleAll makes sense.
const (
	RoleAll    Role = "all"    // read sources and store (the default)
	RoleIngest Role = "ingest" // read sources and publish to the bus; store nothing
	RoleStore  Role = "store"  // store what the bus delivers; read no sources
)

// ParseRole returns the role named s ("" is RoleAll).
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case "":
		return RoleAll, nil
	case RoleAll, RoleIngest, RoleStore:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q: want all, ingest or store", s)
}

// Pipeline is built by New and run once by Run. Stats and Ready are safe to
// call at any time, from any goroutine.
type Pipeline struct {
	cfg       Config
	log       *slog.Logger
	store     storage.Store
	run       *storage.Tally   // entries processed in this run, by level and service
	queue     queue.Queue      // the pool or the bus's publisher; nil for --role store
	publisher *bus.Publisher   // the queue, when the bus is JetStream and this processor ingests
	consumer  *bus.Consumer    // when the bus is JetStream and this processor stores
	readers   *readers         // the sources, each run while this processor should read it
	cluster   *cluster.Cluster // nil unless Config.Cluster
	totals    singleflight.Group
}

// tallied is what the queue saves into: the store, then the run's tally
// and the tail.
type tallied struct{ p *Pipeline }

func (t tallied) Save(ctx context.Context, batch []models.LogEntry) error {
	if err := t.p.store.Save(ctx, batch); err != nil {
		return err
	}
	t.p.run.Add(batch)
	if t.p.cfg.Tail != nil {
		t.p.cfg.Tail.Publish(batch)
	}
	return nil
}

// Sync waits for the store's commit, for the bus consumer.
func (t tallied) Sync(ctx context.Context) error { return t.p.store.Sync(ctx) }

// New builds the pipeline over store: the queue (and, with a bus, the
// consumer) and the sink's connection to it; sources start in Run. Run
// closes store (not the bus: its opener closes it). On error, New stops
// what it started.
func New(cfg Config, store storage.Store, logger *slog.Logger) (p *Pipeline, err error) {
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.TopServices <= 0 {
		cfg.TopServices = storage.DefaultTopServices
	}
	if cfg.Role == "" {
		cfg.Role = RoleAll
	}
	if cfg.Bus == nil && cfg.Role != RoleAll {
		return nil, fmt.Errorf("role %s needs a message bus between the processors", cfg.Role)
	}
	if cfg.Role == RoleStore {
		cfg.Sources, cfg.Cluster = nil, nil
	}
	if len(cfg.Sources) > 0 && cfg.Sink == nil {
		return nil, errors.New("pipeline: sources without a sink")
	}
	p = &Pipeline{cfg: cfg, log: logger, store: store, run: storage.NewTally(0)}
	defer func() {
		if err != nil && p.queue != nil {
			_ = p.queue.Close(context.Background())
		}
	}()
	switch {
	case cfg.Bus == nil:
		p.queue = workerpool.New(cfg.Pool, tallied{p}, logger.With("component", "pool"))
	case cfg.Role != RoleStore: // a storing-only processor publishes nothing
		qb := cfg.Pool.QueueBytes
		if qb <= 0 {
			qb = workerpool.DefaultQueueBytes
		}
		p.publisher = cfg.Bus.NewPublisher(qb)
		p.queue = p.publisher
	}
	if cfg.Bus != nil && cfg.Role != RoleIngest {
		if p.consumer, err = cfg.Bus.NewConsumer(context.Background(), tallied{p}, p.check); err != nil {
			return nil, err
		}
	}
	if cfg.Sink != nil && p.queue != nil {
		cfg.Sink.Connect(p.queue, p.blocked)
		cfg.Sink.SetAsideWith(p.setAside)
	}
	p.readers = newReaders(cfg.Sources, logger)
	if cfg.Cluster != nil && len(p.readers.leased) > 0 {
		if cfg.Bus == nil {
			return nil, errors.New("a cluster needs a message bus (NATS) for its leases")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.cluster, err = cluster.New(ctx, cfg.Bus.JetStream(), *cfg.Cluster, p.readers.leaseKeys(),
			cluster.Hooks{Start: p.readers.startLeased, Stop: p.readers.stopLeased}, logger.With("component", "cluster"))
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}

// setAside keeps records the parser refused on a request path as the
// store's dead letters.
func (p *Pipeline) setAside(ctx context.Context, source string, rs []intake.Refusal) error {
	now := time.Now().UTC()
	out := make([]storage.Rejected, len(rs))
	for i, r := range rs {
		out[i] = storage.Rejected{Record: strings.ToValidUTF8(string(r.Record), "\uFFFD"), Truncated: r.Truncated,
			Service: r.Service, Reason: r.Reason.String(), Source: source, At: now}
	}
	return p.store.SetAside(ctx, out)
}

// check re-validates an entry that came over the bus against the
// parser's rules (the sink's settings): "" or why it may not be stored.
func (p *Pipeline) check(e *models.LogEntry) string {
	var pr parser.Parser
	if p.cfg.Sink != nil {
		pr = p.cfg.Sink.Parser()
	}
	if r := pr.Check(e, time.Now()); r != parser.OK {
		return r.String()
	}
	return ""
}

// blocked says why the queue cannot drain, if it cannot: the drop reason
// sources count their drops under while it is so.
func (p *Pipeline) blocked() string {
	switch {
	case p.cfg.Bus != nil && (!p.cfg.Bus.Connected() || p.publisher.Stalled()):
		return intake.DropBusUnavailable
	case p.cfg.Bus == nil && p.store.Status().State == storage.StateFailing:
		return intake.DropStorageUnavailable
	}
	return ""
}

// Package pipeline assembles the processor: one receiver per source, all
// feeding one queue, from which entries are saved into storage. The queue
// is the in-process worker pool, or, with a message bus, the JetStream
// stream: receivers publish to it and a consumer shared by every processor
// stores from it. It owns their order of start and stop and reports their
// combined stats.
package pipeline

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus"
	"github.com/logpipeline/log-processing-service/log-processor/internal/cluster"
	"github.com/logpipeline/log-processing-service/log-processor/internal/ingest"
	"github.com/logpipeline/log-processing-service/log-processor/internal/receiver"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/tail"
	"github.com/logpipeline/log-processing-service/log-processor/internal/workerpool"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// DefaultShutdownTimeout bounds the drain when Config.ShutdownTimeout is zero.
const DefaultShutdownTimeout = 10 * time.Second

// Config describes the whole pipeline. A zero field means its default.
type Config struct {
	URLs     []string        // one receiver per URL
	Names    []string        // Names[i], if there and not empty, names the source at URLs[i]
	Sources  []Source        // more receivers, each with its own settings (the config file's sources)
	Receiver receiver.Config // settings shared by every receiver; URL is set per source
	// Ingest, when not nil, accepts pushed logs: serve IngestHandler.
	Ingest          *ingest.Config
	Pool            workerpool.Config
	ShutdownTimeout time.Duration // bound on draining the pool after the receivers stop
	TopServices     int           // services named in Stats' by_service counts; the rest are summed as storage.OtherService
	TailClients     int           // clients following the tail at once; 0 = tail.DefaultMaxClients
	// Bus, when not nil, replaces the worker pool: entries go through its
	// stream (Pool.QueueBytes bounds what waits to be published). Role
	// says which halves run here.
	Bus  *bus.Bus
	Role Role
	// Cluster, when not nil (and with a Bus), shares the dialed sources
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

// queue is what sits between parsing and storing: the worker pool, or the
// bus publisher. Receivers and the ingest endpoints see only this.
type queue interface {
	ingest.Pool
	Capacity() (entries int, bytes int64)
	Close(ctx context.Context) error
}

// Source is a dialed source with settings of its own.
type Source struct {
	Name        string
	URL         string
	Header      http.Header
	OpenMessage string
	TLS         *tls.Config
}

// Pipeline is built by New and run once by Run. Stats and Ready are safe to
// call at any time, from any goroutine.
type Pipeline struct {
	cfg       Config
	log       *slog.Logger
	store     storage.Store
	run       *storage.Tally // entries processed in this run, by level and service
	pool      queue          // *workerpool.Pool, or the bus's *bus.Publisher; nil for --role store
	publisher *bus.Publisher // the pool, when the bus is JetStream and this processor ingests
	consumer  *bus.Consumer  // when the bus is JetStream and this processor stores
	receivers []*receiver.Receiver
	cluster   *cluster.Cluster // nil unless Config.Cluster
	// readers run the receivers the cluster gives this processor: by
	// index, the cancel of a running one and its end.
	readersMu sync.Mutex
	runCtx    context.Context
	readers   map[int]reader
	readersWG sync.WaitGroup
	ingest    *ingest.Server     // nil unless Config.Ingest
	tail      *tail.Hub          // entries as they are stored, to the clients following them
	totals    singleflight.Group // one StatsWithTotals computation at a time, shared by its callers
}

// tallied is what the workers save into: the store, then the run's tally.
type tallied struct{ p *Pipeline }

func (t tallied) Save(ctx context.Context, batch []models.LogEntry) error {
	if err := t.p.store.Save(ctx, batch); err != nil {
		return err
	}
	t.p.run.Add(batch)
	t.p.tail.Publish(batch)
	return nil
}

// Sync waits for the store's commit, for the bus consumer.
func (t tallied) Sync(ctx context.Context) error { return t.p.store.Sync(ctx) }

// New builds the pipeline over store and starts its workers; receivers
// start in Run. Run closes store (not the bus: its opener closes it).
func New(cfg Config, store storage.Store, logger *slog.Logger) (*Pipeline, error) {
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
		cfg.URLs, cfg.Sources, cfg.Ingest, cfg.Cluster = nil, nil, nil, nil
	}
	p := &Pipeline{cfg: cfg, log: logger, store: store, run: storage.NewTally(0), tail: tail.NewHub(cfg.TailClients)}
	switch {
	case cfg.Bus == nil:
		p.pool = workerpool.New(cfg.Pool, tallied{p}, logger.With("component", "pool"))
	case cfg.Role != RoleStore: // a storing-only processor publishes nothing
		qb := cfg.Pool.QueueBytes
		if qb <= 0 {
			qb = workerpool.DefaultQueueBytes
		}
		p.publisher = cfg.Bus.NewPublisher(qb)
		p.pool = p.publisher
	}
	// closeQueue stops what New started, when it fails.
	closeQueue := func() {
		if p.pool != nil {
			_ = p.pool.Close(context.Background())
		}
	}
	if cfg.Bus != nil && cfg.Role != RoleIngest {
		c, err := cfg.Bus.NewConsumer(context.Background(), tallied{p})
		if err != nil {
			closeQueue()
			return nil, err
		}
		p.consumer = c
	}
	failing := func() string {
		switch {
		case cfg.Bus != nil && (!cfg.Bus.Connected() || p.publisher.Stalled()):
			return receiver.DropBusUnavailable
		case cfg.Bus == nil && p.store.Status().State == storage.StateFailing:
			return receiver.DropStorageUnavailable
		}
		return ""
	}
	sources := make([]Source, 0, len(cfg.URLs)+len(cfg.Sources))
	for i, u := range cfg.URLs {
		src := Source{URL: u}
		if i < len(cfg.Names) {
			src.Name = cfg.Names[i]
		}
		sources = append(sources, src)
	}
	sources = append(sources, cfg.Sources...)
	for _, src := range sources {
		rc := cfg.Receiver
		rc.URL, rc.Name, rc.Header, rc.OpenMessage, rc.TLS = src.URL, src.Name, src.Header, src.OpenMessage, src.TLS
		rc.Blocked = failing
		p.receivers = append(p.receivers, receiver.New(rc, p.pool, logger))
	}
	if cfg.Cluster != nil && len(p.receivers) > 0 {
		if cfg.Bus == nil {
			closeQueue()
			return nil, errors.New("a cluster needs a message bus (NATS) for its leases")
		}
		ids := make([]string, len(sources))
		for i, src := range sources {
			ids[i] = src.Name
			if ids[i] == "" {
				ids[i] = src.URL
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := cluster.New(ctx, cfg.Bus.JetStream(), *cfg.Cluster, ids,
			cluster.Hooks{Start: p.startReader, Stop: p.stopReader}, logger.With("component", "cluster"))
		cancel()
		if err != nil {
			closeQueue()
			return nil, err
		}
		p.cluster, p.readers = c, make(map[int]reader)
		for _, r := range p.receivers {
			r.Standby()
		}
	}
	if cfg.Ingest != nil {
		ic := *cfg.Ingest
		ic.Parser, ic.Blocked = cfg.Receiver.Parser, failing
		if ic.SummaryInterval == 0 {
			ic.SummaryInterval = cfg.Receiver.SummaryInterval
		}
		p.ingest = ingest.New(ic, p.pool, logger)
	}
	return p, nil
}

// IngestHandler serves the push endpoints (see package ingest); nil when
// Config.Ingest is nil.
func (p *Pipeline) IngestHandler() http.Handler {
	if p.ingest == nil {
		return nil
	}
	return p.ingest
}

// reader is a receiver running for the cluster.
type reader struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// startReader runs receiver i until stopReader(i) or the end of Run.
func (p *Pipeline) startReader(i int) {
	p.readersMu.Lock()
	defer p.readersMu.Unlock()
	if _, ok := p.readers[i]; ok || p.runCtx == nil || p.runCtx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(p.runCtx)
	rd := reader{cancel: cancel, done: make(chan struct{})}
	p.readers[i] = rd
	p.readersWG.Go(func() {
		defer close(rd.done)
		_ = p.receivers[i].Run(ctx)
	})
}

// stopReader stops receiver i and waits until it has.
func (p *Pipeline) stopReader(i int) {
	p.readersMu.Lock()
	rd, ok := p.readers[i]
	delete(p.readers, i)
	p.readersMu.Unlock()
	if !ok {
		return
	}
	rd.cancel()
	<-rd.done
	p.receivers[i].Standby()
}

type hardStopKey struct{}

// WithHardStop returns ctx carrying hard. When hard ends while Run drains
// (a second Ctrl+C), Run stops waiting as if ShutdownTimeout had passed,
// and still logs the drain report with what was lost.
func WithHardStop(ctx, hard context.Context) context.Context {
	return context.WithValue(ctx, hardStopKey{}, hard)
}

// Run reads from every source until ctx ends. Then, in order: the receivers
// close their connections and stop submitting; the pool drains everything
// it accepted and storage writes it, both within one ShutdownTimeout; each
// source logs its final summary; and a drain report is logged. Run returns
// an error only when the drain could not finish, saying how many accepted
// entries were not stored.
func (p *Pipeline) Run(ctx context.Context) error {
	// dctx bounds the drain; it starts when ctx ends.
	dctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopDrain := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.ShutdownTimeout, cancel)
		context.AfterFunc(dctx, func() { t.Stop() })
	})
	defer stopDrain()
	if hard, ok := ctx.Value(hardStopKey{}).(context.Context); ok {
		defer context.AfterFunc(hard, func() {
			p.log.Warn("second signal: abandoning the drain")
			cancel()
		})()
	}
	var wg, writers sync.WaitGroup
	if p.cluster != nil {
		p.readersMu.Lock()
		p.runCtx = ctx
		p.readersMu.Unlock()
		// Starts and stops receivers as leases come and go; when ctx
		// ends it stops them all and gives the leases up.
		wg.Go(func() { p.cluster.Run(ctx); p.readersWG.Wait() })
	} else {
		for _, r := range p.receivers {
			wg.Go(func() { _ = r.Run(ctx) }) // Run returns nil once ctx ends
		}
	}
	if p.consumer != nil {
		// Stops fetching when ctx ends; what it holds is stored and
		// acknowledged within the drain.
		writers.Go(func() { p.consumer.Run(ctx, dctx) })
	}
	<-ctx.Done()
	p.log.Info("shutting down: closing sources")
	wg.Wait()
	if p.ingest != nil {
		p.ingest.Close()
	}
	// No source submits after this: the pool may close its queue.
	var drainErr error
	if p.pool != nil {
		drainErr = p.pool.Close(dctx)
	}
	writers.Wait()
	closeErr := p.store.Close(dctx)

	for _, r := range p.receivers {
		r.LogSummary()
	}
	if p.ingest != nil {
		p.ingest.LogSummary()
	}
	s := p.Stats()
	var lost uint64
	switch {
	case p.cfg.Bus == nil:
		lost = s.Submitted - s.Stored - s.Storage.Rejected
	case p.publisher != nil:
		// What reached the stream is stored by whichever writer takes
		// it; only what was never published is lost.
		lost = p.publisher.PublishStats().Lost
	}
	report := p.log.Info
	if lost > 0 {
		report = p.log.Error
	}
	report("drain report", "accepted", s.Submitted, "processed", s.Processed,
		"stored", s.Stored, "rejected_by_storage", s.Storage.Rejected, "dropped", s.Dropped, "lost", lost)
	if lost > 0 {
		return fmt.Errorf("shutdown: %d accepted entries not stored: %w", lost, errors.Join(drainErr, closeErr))
	}
	return nil
}

// Stats is the processor's snapshot, served at /stats. Processed, Queue and
// Workers keep the seed's key names.
type Stats struct {
	Processed uint64 // entries that left the pool
	Queue     int    // entries waiting in the pool now
	Workers   int    // number of workers

	QueueCapacity int   `json:"queue_capacity"`  // the pool's bound in entries
	QueueBytes    int64 `json:"queue_bytes"`     // bytes of the entries in the pool now
	QueueMaxBytes int64 `json:"queue_max_bytes"` // the pool's bound in bytes
	TailClients   int   `json:"tail_clients"`    // clients following /logs/tail

	Received    uint64            `json:"received"`        // frames from all sources
	OK          uint64            `json:"ok"`              // valid entries
	ParseErr    uint64            `json:"parse_err"`       // rejected frames
	ParseErrors map[string]uint64 `json:"parse_errors"`    // rejected frames by reason
	Ignored     uint64            `json:"ignored"`         // control frames
	BelowMin    uint64            `json:"below_min_level"` // valid entries below the level floor
	Submitted   uint64            `json:"submitted"`       // entries the pool accepted
	Dropped     uint64            `json:"dropped"`         // entries refused by a full pool
	DropReasons map[string]uint64 `json:"drop_reasons"`    // dropped, by why the pool was full
	Failed      uint64            `json:"failed"`          // processed entries that storage refused
	Stored      uint64            `json:"stored"`          // entries storage committed in this run

	ByLevel   map[string]uint64 `json:"by_level"`   // entries processed in this run, by level
	ByService map[string]uint64 `json:"by_service"` // entries processed in this run, by service

	Storage StorageStats     `json:"storage"`
	Bus     *BusStats        `json:"bus,omitempty"`     // with a message bus only
	Cluster *ClusterStats    `json:"cluster,omitempty"` // with --cluster only
	Sources []receiver.Stats `json:"sources"`
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

// Stats returns a snapshot in which the counters add up: Received = OK +
// ParseErr + Ignored + BelowMin, OK = Submitted + Dropped, Processed <= Submitted.
func (p *Pipeline) Stats() Stats {
	// The pool is read before the sources, so their submitted counts are the
	// newer. Still, a receiver counts a submission just after the pool took
	// the entry, so a worker may process it (and storage commit it) a moment
	// before it is counted; the clamps below keep the snapshot consistent.
	var ps workerpool.Stats
	if p.pool != nil { // nil for a storing-only processor
		ps = p.pool.Stats()
	}
	s := Stats{Queue: ps.Queue, Workers: ps.Workers, Sources: make([]receiver.Stats, len(p.receivers)),
		QueueBytes: ps.QueueBytes, TailClients: p.tail.Clients()}
	if p.pool != nil {
		s.QueueCapacity, s.QueueMaxBytes = p.pool.Capacity()
	}
	var total receiver.Counters
	for i, r := range p.receivers {
		s.Sources[i] = r.Stats()
	}
	p.setOwners(s.Sources)
	if p.cluster != nil {
		s.Cluster = &ClusterStats{Name: p.cfg.Cluster.Name, ID: p.cluster.ID(), Members: p.cluster.Members()}
	}
	if p.ingest != nil {
		s.Sources = append(s.Sources, p.ingest.Stats()...)
	}
	for i := range s.Sources {
		total.Add(s.Sources[i].Counters)
	}
	s.Received, s.OK, s.ParseErr, s.ParseErrors = total.Total, total.OK, total.ParseErr, total.ParseErrors
	s.Ignored, s.Submitted, s.Dropped, s.DropReasons = total.Ignored, total.Submitted, total.Dropped, total.DropReasons
	s.BelowMin = total.BelowMinLevel
	s.Processed = min(ps.Processed, s.Submitted)
	s.Failed = min(ps.Failed, s.Processed)
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

// setOwners fills in each dialed source's owner in a cluster.
func (p *Pipeline) setOwners(sources []receiver.Stats) {
	if p.cluster == nil {
		return
	}
	for i, o := range p.cluster.Owners() {
		if i < len(sources) {
			sources[i].Owner = o
		}
	}
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

// Follow subscribes to the entries, as they are stored, that pass f, at
// most maxRate a second (0: all); call Unfollow when done. It fails when too
// many clients follow already.
func (p *Pipeline) Follow(f storage.Filter, maxRate int) (*tail.Sub, error) {
	return p.tail.Subscribe(f, maxRate)
}

// Unfollow ends a Follow.
func (p *Pipeline) Unfollow(s *tail.Sub) { p.tail.Unsubscribe(s) }

// Query returns stored entries; see storage.Store.
func (p *Pipeline) Query(ctx context.Context, f storage.Filter) ([]storage.Record, error) {
	return p.store.Query(ctx, f)
}

// Rejected returns the newest entries storage refused; see storage.Store.
func (p *Pipeline) Rejected() []storage.Rejected { return p.store.Rejected() }

// Readiness says whether every source is connected and storage is writing.
type Readiness struct {
	// Status is ready; degraded when some sources are down or storage is
	// failing; or down when no source is connected.
	Status  string            `json:"status"`
	Storage StorageReadiness  `json:"storage"`
	Bus     *BusReadiness     `json:"bus,omitempty"`
	Sources []SourceReadiness `json:"sources"`
}

// BusReadiness is the part of the bus's status a probe needs.
type BusReadiness struct {
	Role      Role   `json:"role"`
	Connected bool   `json:"connected"`
	LastError string `json:"last_error,omitempty"`
}

// StorageReadiness is the part of the store's status a probe needs.
type StorageReadiness struct {
	Backend   string `json:"backend"`
	State     string `json:"state"`
	LastError string `json:"last_error,omitempty"`
}

// SourceReadiness is the part of a source's stats a probe needs; /stats
// has the counters.
type SourceReadiness struct {
	URL            string    `json:"url"`
	State          string    `json:"state"`
	Owner          string    `json:"owner,omitempty"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
}

// Ready reports the pipeline's readiness.
func (p *Pipeline) Ready() Readiness {
	st := p.store.Status()
	rd := Readiness{Storage: StorageReadiness{Backend: st.Backend, State: st.State, LastError: st.LastError},
		Sources: make([]SourceReadiness, len(p.receivers))}
	up, mine := 0, 0
	stats := make([]receiver.Stats, len(p.receivers))
	for i, r := range p.receivers {
		stats[i] = r.Stats()
	}
	p.setOwners(stats)
	for i, s := range stats {
		rd.Sources[i] = SourceReadiness{URL: s.URL, State: s.State, Owner: s.Owner, ConnectedSince: s.ConnectedSince, LastError: s.LastError}
		if s.State == receiver.StateStandby {
			continue // another processor's to read
		}
		mine++
		if s.State == receiver.StateConnected {
			up++
		}
	}
	if mine == 0 && (p.ingest != nil || p.cfg.Role == RoleStore || p.cluster != nil) {
		up = 1 // push only, or storing only: ready while the endpoints listen and storage writes
	}
	busDown := false
	if p.cfg.Bus != nil {
		bs := p.cfg.Bus.Status()
		rd.Bus = &BusReadiness{Role: p.cfg.Role, Connected: bs.Connected, LastError: bs.LastError}
		busDown = !bs.Connected
	}
	switch {
	case up == 0:
		rd.Status = "down"
	case up < mine || st.State != storage.StateOK || busDown:
		rd.Status = "degraded"
	default:
		rd.Status = "ready"
	}
	return rd
}

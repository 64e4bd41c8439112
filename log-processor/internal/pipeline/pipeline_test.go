package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e"
	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/receiver"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/memory"
	"github.com/logpipeline/log-processing-service/log-processor/internal/workerpool"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

var generatorBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pipeline-test")
	if err == nil {
		generatorBin, err = e2e.Build(dir, e2e.GeneratorPkg, "mock-log-generator", false)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// slowStore is the memory store behind a gate: a Save waits until gate is
// closed (nil: never waits), or until its context ends when block is set.
type slowStore struct {
	*memory.Store
	gate  chan struct{}
	block bool
}

func (s slowStore) Save(ctx context.Context, batch []models.LogEntry) error {
	if s.block {
		<-ctx.Done()
		return ctx.Err()
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.Save(ctx, batch)
}

var _ storage.Store = slowStore{}

func startGenerator(t *testing.T) *e2e.Proc {
	return e2e.Start(t, generatorBin, "--url", "127.0.0.1:0", "--log-format", "json")
}

// dial is the pipeline's config with a dialed source per URL, sharing rc's
// settings.
func dial(cfg Config, rc receiver.Config, urls ...string) Config {
	cfg.Sink = intake.NewSink(intake.SinkConfig{})
	for _, u := range urls {
		c := rc
		c.URL = u
		cfg.Sources = append(cfg.Sources, receiver.New(c, cfg.Sink, discard))
	}
	return cfg
}

// start runs the pipeline until the returned stop is called; stop returns
// Run's error.
func start(t *testing.T, cfg Config, store storage.Store) (*Pipeline, func() error) {
	p, nerr := New(cfg, store, discard)
	if nerr != nil {
		t.Fatal(nerr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, nil) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return p, stop
}

func checkInvariants(t *testing.T, s Stats) {
	t.Helper()
	if s.Received != s.OK+s.ParseErr+s.Ignored || s.OK != s.Submitted+s.Dropped || s.Processed > s.Submitted {
		t.Fatalf("stats do not add up: %+v", s)
	}
}

// TestFloodSlowStore (fault test 6): a flood into a tiny queue in front of a
// store that takes nothing until the flood has been read. Receivers keep
// reading and drop the overflow; the counters add up throughout; the queue
// never holds more than its bounds and the heap stays bounded; everything
// accepted is stored once the store moves. Nothing depends on the
// machine's speed: the store is stalled, not slow.
func TestFloodSlowStore(t *testing.T) {
	gen := startGenerator(t)
	mem := memory.New(memory.Config{})
	cfg := dial(Config{Pool: workerpool.Config{Workers: 2, QueueSize: 16, MaxBatch: 4}},
		receiver.Config{SubmitTimeout: time.Nanosecond}, gen.WSURL("flood&count=20000"))
	gate := make(chan struct{})
	p, stop := start(t, cfg, slowStore{Store: mem, gate: gate})

	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	poll.Until(t, 60*time.Second, "the whole flood to be read", func() bool {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
		s := p.Stats()
		checkInvariants(t, s)
		if s.Queue > s.QueueCapacity+cfg.Pool.Workers*cfg.Pool.MaxBatch+runtime.GOMAXPROCS(0)*cfg.Pool.MaxBatch || s.QueueBytes > s.QueueMaxBytes {
			t.Fatalf("the queue holds %d entries and %d bytes, past its bounds (%d, %d)", s.Queue, s.QueueBytes, s.QueueCapacity, s.QueueMaxBytes)
		}
		return s.Received == 20001
	})
	close(gate)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.Dropped < 20000-200 {
		t.Errorf("%d dropped: with the store stalled, all but the queue's few should be (%+v)", s.Dropped, s)
	}
	if c, _ := mem.Counts(context.Background(), 0); s.Processed != s.Submitted || c.Total != s.Submitted || s.Stored != s.Submitted {
		t.Errorf("processed %d, stored %d (store counted %d), submitted %d", s.Processed, s.Stored, c.Total, s.Submitted)
	}
	// Live data is the queue (16 entries) and a 64 KiB read buffer; the rest
	// is garbage between collections. 20,000 frames (about 5 MB) went by.
	const bound = 32 << 20
	if peak > bound {
		t.Errorf("heap peaked at %d MiB, want under %d MiB", peak>>20, bound>>20)
	}
	t.Logf("heap peak %.1f MiB; %d submitted, %d dropped", float64(peak)/(1<<20), s.Submitted, s.Dropped)
}

// TestDrainDeadline: when storage cannot finish within the shutdown
// timeout, Run says how many accepted entries were not processed.
func TestDrainDeadline(t *testing.T) {
	gen := startGenerator(t)
	cfg := dial(Config{Pool: workerpool.Config{Workers: 1, QueueSize: 1000, MaxBatch: 1}, ShutdownTimeout: 100 * time.Millisecond},
		receiver.Config{}, gen.WSURL("flood&count=100"))
	p, stop := start(t, cfg, slowStore{Store: memory.New(memory.Config{}), block: true})
	poll.Until(t, 20*time.Second, "all 100 entries accepted", func() bool { return p.Stats().Submitted == 100 })
	err := stop()
	if err == nil || !strings.Contains(err.Error(), "100 accepted entries not stored") {
		t.Fatalf("Run = %v, want 100 entries not stored", err)
	}
	if s := p.Stats(); s.Failed != 1 || s.Processed != 1 || s.Stored != 0 {
		t.Errorf("stats = processed %d, failed %d, stored %d; want 1, 1 (the blocked Save), 0", s.Processed, s.Failed, s.Stored)
	}
}

func TestReadiness(t *testing.T) {
	gen := startGenerator(t)
	p, _ := start(t, dial(Config{}, receiver.Config{}, gen.WSURL("count=0"), "ws://127.0.0.1:1/ws/logs"), memory.New(memory.Config{}))
	poll.Until(t, 20*time.Second, "degraded", func() bool { return p.Ready().Status == "degraded" })
	// With its only source refused, a processor is down, and says why,
	// once a dial has failed (not merely before the first).
	p2, _ := start(t, dial(Config{}, receiver.Config{}, "ws://127.0.0.1:1/ws/logs"), memory.New(memory.Config{}))
	poll.Until(t, 20*time.Second, "the dial to fail", func() bool {
		rd := p2.Ready()
		return len(rd.Sources) == 1 && rd.Sources[0].LastError != ""
	})
	if rd := p2.Ready(); rd.Status != "down" || rd.Sources[0].State != "backoff" || !strings.Contains(rd.Sources[0].LastError, "refused") {
		t.Errorf("readiness with the only source refused = %+v, want down, backoff, connection refused", rd)
	}
}

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

	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e"
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

// slowStore is the memory store behind a delay per batch, or blocked until
// its context ends when delay is negative.
type slowStore struct {
	*memory.Store
	delay time.Duration
}

func (s slowStore) Save(ctx context.Context, batch []models.LogEntry) error {
	if s.delay < 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	time.Sleep(s.delay)
	return s.Store.Save(ctx, batch)
}

var _ storage.Store = slowStore{}

func startGenerator(t *testing.T) *e2e.Proc {
	return e2e.Start(t, generatorBin, "--url", "127.0.0.1:0", "--log-format", "json")
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
	go func() { done <- p.Run(ctx) }()
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
// slow store. Receivers keep reading and drop the overflow; the counters add
// up throughout; the heap stays bounded; everything accepted is stored.
func TestFloodSlowStore(t *testing.T) {
	gen := startGenerator(t)
	mem := memory.New(memory.Config{})
	cfg := Config{
		URLs:     []string{gen.WSURL("flood&count=50000")},
		Receiver: receiver.Config{SubmitTimeout: 100 * time.Microsecond},
		Pool:     workerpool.Config{Workers: 2, QueueSize: 16, MaxBatch: 4},
	}
	p, stop := start(t, cfg, slowStore{Store: mem, delay: time.Millisecond})

	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	e2e.WaitFor(t, 60*time.Second, "the whole flood to be read", func() bool {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
		s := p.Stats()
		checkInvariants(t, s)
		return s.Received == 50001
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.Dropped == 0 {
		t.Errorf("no drops: the store was not slow enough to exercise backpressure (%+v)", s)
	}
	if c, _ := mem.Counts(context.Background(), 0); s.Processed != s.Submitted || c.Total != s.Submitted || s.Stored != s.Submitted {
		t.Errorf("processed %d, stored %d (store counted %d), submitted %d", s.Processed, s.Stored, c.Total, s.Submitted)
	}
	// Live data is the queue (16 entries) and a 64 KiB read buffer; the rest
	// is garbage between collections. 50,000 frames (about 12 MB) went by.
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
	cfg := Config{
		URLs:            []string{gen.WSURL("flood&count=100")},
		Pool:            workerpool.Config{Workers: 1, QueueSize: 1000, MaxBatch: 1},
		ShutdownTimeout: 100 * time.Millisecond,
	}
	p, stop := start(t, cfg, slowStore{Store: memory.New(memory.Config{}), delay: -1})
	e2e.WaitFor(t, 20*time.Second, "all 100 entries accepted", func() bool { return p.Stats().Submitted == 100 })
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
	cfg := Config{URLs: []string{gen.WSURL("count=0"), "ws://127.0.0.1:1/ws/logs"}}
	p, _ := start(t, cfg, memory.New(memory.Config{}))
	e2e.WaitFor(t, 20*time.Second, "degraded", func() bool { return p.Ready().Status == "degraded" })
	cfg.URLs = cfg.URLs[1:]
	p2, _ := start(t, cfg, memory.New(memory.Config{}))
	if st := p2.Ready().Status; st != "down" {
		t.Errorf("status with the only source down = %q, want down", st)
	}
}

package bus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/nats-io/nats.go"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus"
	"github.com/logpipeline/log-processing-service/log-processor/internal/bus/natstest"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// store keeps what it is given, by bus identity; failSync makes that many
// Sync calls fail first.
type store struct {
	mu       sync.Mutex
	saved    map[models.BusID]int
	total    int
	failSync int
}

func newStore() *store { return &store{saved: map[models.BusID]int{}} }

func (s *store) Save(_ context.Context, batch []models.LogEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range batch {
		s.saved[batch[i].Bus]++
		s.total++
	}
	return nil
}

func (s *store) Sync(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSync > 0 {
		s.failSync--
		return errors.New("database away")
	}
	return nil
}

func (s *store) counts() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.saved), s.total
}

func open(t *testing.T, srv *natstest.Server, cfg bus.Config) *bus.Bus {
	t.Helper()
	cfg.URLs = []string{srv.URL()}
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	b, err := bus.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// consume runs a consumer into st until the test ends.
func consume(t *testing.T, b *bus.Bus, st bus.Store) *bus.Consumer {
	t.Helper()
	c, err := b.NewConsumer(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx, context.Background()); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func entry(i int) models.LogEntry {
	return models.LogEntry{Timestamp: int64(i), Level: "INFO", Message: fmt.Sprintf("m%d", i), Service: "svc", Source: "src"}
}

func closePublisher(t *testing.T, p *bus.Publisher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPublishConsume: entries submitted one by one and whole go through
// the stream in batches, each stored once and acknowledged.
func TestPublishConsume(t *testing.T) {
	srv := natstest.Start(t)
	b := open(t, srv, bus.Config{Batch: 100})
	st := newStore()
	c := consume(t, b, st)
	p := b.NewPublisher(8 << 20)
	for i := range 5000 {
		if !p.SubmitWithTimeout(entry(i), time.Second) {
			t.Fatalf("entry %d refused", i)
		}
	}
	all := make([]models.LogEntry, 250)
	for i := range all {
		all[i] = entry(5000 + i)
	}
	if err := p.SubmitAll(all, time.Second, nil); err != nil {
		t.Fatal(err)
	}
	closePublisher(t, p)
	if ps := p.PublishStats(); ps.Published != 5250 || ps.Pending != 0 || ps.Messages < 53 {
		t.Fatalf("publish stats %+v: want 5250 published in at least 53 messages, none pending", ps)
	}
	poll.Until(t, 20*time.Second, "5250 acknowledged", func() bool { return c.ConsumeStats().Acknowledged == 5250 })
	if d, n := st.counts(); d != 5250 || n != 5250 {
		t.Fatalf("stored %d distinct of %d, want 5250 once each", d, n)
	}
	poll.Until(t, 20*time.Second, "no lag", func() bool { return c.ConsumeStats().ConsumerLag == 0 })
}

// TestCorruptMessageTerminated: a message this release did not write is
// terminated, counted, and not delivered again; the next ones, plain and
// compressed, are stored.
func TestCorruptMessageTerminated(t *testing.T) {
	srv := natstest.Start(t)
	b := open(t, srv, bus.Config{AckWait: time.Second})
	st := newStore()
	c := consume(t, b, st)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Request(bus.DefaultSubject, []byte("not a bus message"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// Writers read both layouts, so processors with and without
	// --bus-compress share a stream.
	for _, compress := range []bool{false, true} {
		if _, err := nc.Request(bus.DefaultSubject, bus.Encode([]models.LogEntry{entry(1)}, compress), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 20*time.Second, "the good entries", func() bool { return c.ConsumeStats().Acknowledged == 2 })
	// Nothing left pending or in hand: the bad message will not come again.
	poll.Until(t, 20*time.Second, "no lag", func() bool { return c.ConsumeStats().ConsumerLag == 0 })
	if cs := c.ConsumeStats(); cs.Corrupt != 1 || cs.Redelivered != 0 {
		t.Fatalf("consume stats %+v: want 1 corrupt, nothing delivered again", cs)
	}
}

// TestUncommittedDeliveredAgain: a message whose entries were not committed
// is not acknowledged, comes again, and is acknowledged then. (AckWait is
// a minute: the message comes again because it was refused, not forgotten.)
func TestUncommittedDeliveredAgain(t *testing.T) {
	srv := natstest.Start(t)
	b := open(t, srv, bus.Config{AckWait: time.Minute})
	st := newStore()
	st.failSync = 1
	c := consume(t, b, st)
	p := b.NewPublisher(1 << 20)
	for i := range 10 {
		p.SubmitWithTimeout(entry(i), time.Second)
	}
	closePublisher(t, p)
	poll.Until(t, 20*time.Second, "10 acknowledged", func() bool { return c.ConsumeStats().Acknowledged == 10 })
	d, n := st.counts()
	if cs := c.ConsumeStats(); d != 10 || n != 20 || cs.Redelivered != 1 {
		t.Fatalf("%d distinct, %d saves, %+v: want 10 entries saved twice, 1 message delivered again", d, n, cs)
	}
}

// TestPublisherWaitsForNATS: while the server is down, accepted entries are
// held (within the bound) and published once it is back; the stream's
// file store keeps what it had acknowledged.
func TestPublisherWaitsForNATS(t *testing.T) {
	srv := natstest.Start(t)
	b := open(t, srv, bus.Config{Batch: 10})
	p := b.NewPublisher(1 << 20)
	for i := range 100 {
		p.SubmitWithTimeout(entry(i), time.Second)
	}
	poll.Until(t, 20*time.Second, "100 published", func() bool { return p.PublishStats().Published == 100 })
	srv.Stop()
	poll.Until(t, 20*time.Second, "disconnected", func() bool { return !b.Connected() })
	for i := 100; i < 200; i++ {
		if !p.SubmitWithTimeout(entry(i), time.Second) {
			t.Fatalf("entry %d refused while the bound has room", i)
		}
	}
	if ps := p.PublishStats(); ps.Pending != 100 {
		t.Fatalf("pending while down = %d, want 100", ps.Pending)
	}
	srv.Start()
	poll.Until(t, 20*time.Second, "200 published", func() bool { return p.PublishStats().Published == 200 })
	closePublisher(t, p)
	st := newStore()
	c := consume(t, b, st)
	poll.Until(t, 20*time.Second, "200 acknowledged", func() bool { return c.ConsumeStats().Acknowledged == 200 })
	if d, n := st.counts(); d != 200 || n != 200 {
		t.Fatalf("stored %d distinct of %d, want 200 once each", d, n)
	}
	if b.Status().Reconnects == 0 || p.PublishStats().PublishErrors == 0 {
		t.Errorf("status %+v, %+v: want a reconnect and failed publishes counted", b.Status(), p.PublishStats())
	}
}

// TestBoundRefuses: with the server down, the publisher takes entries up
// to its byte bound and then refuses them.
func TestBoundRefuses(t *testing.T) {
	srv := natstest.Start(t)
	b := open(t, srv, bus.Config{Batch: 10})
	e := entry(0)
	p := b.NewPublisher(int64(10 * e.Size()))
	srv.Stop()
	poll.Until(t, 20*time.Second, "disconnected", func() bool { return !b.Connected() })
	for i := range 10 {
		if !p.SubmitWithTimeout(entry(i), 0) {
			t.Fatalf("entry %d refused within the bound", i)
		}
	}
	if p.SubmitWithTimeout(entry(10), 50*time.Millisecond) {
		t.Fatal("entry beyond the bound accepted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); err == nil || p.PublishStats().Lost != 10 {
		t.Fatalf("Close = %v, lost %d: want an error and 10 lost", err, p.PublishStats().Lost)
	}
}

// TestStreamFullHoldsThenDrains: a stream at its byte bound refuses new
// messages; the publisher holds them (stalled), its bound fills and it
// refuses entries rather than grow; once a writer drains the stream,
// everything held is published and stored once.
func TestStreamFullHoldsThenDrains(t *testing.T) {
	srv := natstest.Start(t)
	b := open(t, srv, bus.Config{Batch: 50, MaxBytes: 16 << 10})
	e := entry(0)
	p := b.NewPublisher(int64(400 * e.Size()))
	// Until the bound refuses: the stream is full, and the publisher holds
	// what it refused.
	accepted := 0
	for accepted < 2000 && p.SubmitWithTimeout(entry(accepted), 200*time.Millisecond) {
		accepted++
	}
	if accepted == 2000 {
		t.Fatal("2,000 entries taken: the bound never refused")
	}
	if !p.Stalled() || p.PublishStats().PublishErrors == 0 {
		t.Fatalf("stream never full: %+v", p.PublishStats())
	}
	if got := p.Stats().Bytes; got > int64(400*e.Size()) {
		t.Fatalf("holding %d bytes, over the bound of %d", got, 400*e.Size())
	}
	st := newStore()
	c := consume(t, b, st)
	poll.Until(t, 20*time.Second, "all accepted stored", func() bool { return c.ConsumeStats().Acknowledged == uint64(accepted) })
	closePublisher(t, p)
	if d, n := st.counts(); d != accepted || n != accepted {
		t.Fatalf("stored %d distinct of %d, want the %d accepted once each", d, n, accepted)
	}
	if p.Stalled() {
		t.Error("still stalled after the stream drained")
	}
	t.Logf("accepted %d entries before the bound refused; %d publish attempts refused by the full stream", accepted, p.PublishStats().PublishErrors)
}

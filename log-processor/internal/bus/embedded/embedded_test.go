package embedded_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus"
	"github.com/logpipeline/log-processing-service/log-processor/internal/bus/embedded"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

var discard = slog.New(slog.DiscardHandler)

func start(t *testing.T, dir string) (*embedded.Server, *bus.Bus) {
	t.Helper()
	srv, err := embedded.Start(embedded.Config{Dir: dir, MaxBytes: 64 << 20, Name: "test"}, discard)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Open(context.Background(), bus.Config{InProcess: srv, Name: "test", MaxBytes: 64 << 20}, discard)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	return srv, b
}

// streamState returns what the stream holds: messages and bytes.
func streamState(t testing.TB, b *bus.Bus) (msgs, bytes uint64) {
	t.Helper()
	s, err := b.JetStream().Stream(context.Background(), bus.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs, info.State.Bytes
}

// TestAcknowledgedSurvivesRestart: entries submitted with an ack are
// resolved once the embedded stream has them, and they are still there
// after the server is stopped and started again on the same directory.
func TestAcknowledgedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv, b := start(t, dir)
	p := b.NewPublisher(8 << 20)
	entries := make([]models.LogEntry, 120)
	for i := range entries {
		entries[i] = models.LogEntry{Timestamp: time.Now().UnixMilli(), Level: models.LevelInfo, Service: "s", Message: "m" + strconv.Itoa(i)}
	}
	ack := queue.NewAck(len(entries))
	if err := p.SubmitAll(entries, time.Second, ack); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ack.Wait(ctx); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if got := p.PublishStats().Published; got != uint64(len(entries)) {
		t.Fatalf("ack resolved with %d entries published, want %d", got, len(entries))
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, _ := streamState(t, b)
	b.Close()
	srv.Close()
	if before == 0 {
		t.Fatal("no message in the stream")
	}
	srv, b = start(t, dir)
	defer srv.Close()
	defer b.Close()
	if after, _ := streamState(t, b); after != before {
		t.Fatalf("after a restart the stream holds %d messages, want %d", after, before)
	}
}

// TestNoDirectory: the directory is required.
func TestNoDirectory(t *testing.T) {
	if _, err := embedded.Start(embedded.Config{}, discard); err == nil {
		t.Fatal("Start without a directory succeeded")
	}
}

// BenchmarkStartWithBacklog times a start of the embedded server on a
// stream holding a backlog: LOGPROC_BACKLOG_MIB MiB of stream messages
// (128 by default), written once before the timer starts. It reports the
// start's seconds per op and the backlog's size.
func BenchmarkStartWithBacklog(b *testing.B) {
	mib := 128
	if v, err := strconv.Atoi(os.Getenv("LOGPROC_BACKLOG_MIB")); err == nil && v > 0 {
		mib = v
	}
	dir := b.TempDir()
	cfg := embedded.Config{Dir: dir, MaxBytes: int64(mib+64) << 20, SyncInterval: time.Second, Name: "bench"}
	srv, err := embedded.Start(cfg, discard)
	if err != nil {
		b.Fatal(err)
	}
	bs, err := bus.Open(context.Background(), bus.Config{InProcess: srv, Name: "bench", MaxBytes: cfg.MaxBytes}, discard)
	if err != nil {
		b.Fatal(err)
	}
	p := bs.NewPublisher(64 << 20)
	msg := strings.Repeat("a log line of a realistic length, with some words in it; ", 3)
	batch := make([]models.LogEntry, 500)
	for i := range batch {
		batch[i] = models.LogEntry{Timestamp: time.Now().UnixMilli(), Level: models.LevelInfo, Service: "svc", Message: msg + strconv.Itoa(i)}
	}
	for _, n := streamState(b, bs); n < uint64(mib)<<20; _, n = streamState(b, bs) {
		for range 100 {
			if err := p.SubmitAll(batch, time.Minute, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := p.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	_, size := streamState(b, bs)
	bs.Close()
	srv.Close()
	b.ResetTimer()
	for b.Loop() {
		srv, err := embedded.Start(cfg, discard)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		srv.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(size)/(1<<20), "backlog-MiB")
}

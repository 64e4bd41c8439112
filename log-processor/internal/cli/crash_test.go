package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus/natstest"
	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e"
	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres/pgtest"
)

// crashPusher posts numbered lines in batches, two requests in flight,
// each until it is answered 200, as a shipper with retries does, and
// records which batches were answered 200.
type crashPusher struct {
	url     string
	batches int
	per     int
	keys    bool // send each batch with an Idempotency-Key
	acked   []atomic.Bool
	done    atomic.Int64
	retries atomic.Int64
}

func (c *crashPusher) body(b int) string {
	var s strings.Builder
	now := time.Now().UnixMilli()
	for i := range c.per {
		fmt.Fprintf(&s, `{"timestamp":%d,"level":"INFO","service":"crash","message":"crash-%07d"}`+"\n", now, b*c.per+i)
	}
	return s.String()
}

// run sends every batch, pacing them every pace, until all are acked or
// ctx ends.
func (c *crashPusher) run(ctx context.Context, pace time.Duration) {
	next := make(chan int) // sent to by the pacer, which closes it
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(next)
		t := time.NewTicker(pace)
		defer t.Stop()
		for b := range c.batches {
			select {
			case next <- b:
			case <-ctx.Done():
				return
			}
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	})
	client := &http.Client{Timeout: 10 * time.Second}
	for range 2 {
		wg.Go(func() {
			for b := range next {
				for ctx.Err() == nil {
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(c.body(b)))
					if err != nil {
						panic(err)
					}
					req.Header.Set("Content-Type", "application/x-ndjson")
					if c.keys {
						req.Header.Set("Idempotency-Key", fmt.Sprintf("batch-%d", b))
					}
					resp, err := client.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							c.acked[b].Store(true)
							c.done.Add(1)
							break
						}
					}
					c.retries.Add(1)
					select { // a shipper's backoff, short for a test
					case <-time.After(100 * time.Millisecond):
					case <-ctx.Done():
					}
				}
			}
		})
	}
	wg.Wait()
}

// tally counts, of n numbered messages (format's), those stored not at
// all while acked says they were acknowledged, and the extra copies.
func tally(seen map[string]int, n int, format string, acked func(i int) bool) (lost, twice int) {
	for i := range n {
		c := seen[fmt.Sprintf(format, i)]
		if c == 0 && acked(i) {
			lost++
		}
		twice += max(c-1, 0)
	}
	return lost, twice
}

// freePort returns a loopback address free a moment ago: the processor
// is restarted on it, as a shipper's URL does not change.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestKill9Acknowledged: a pusher with retries sends 50,000 numbered
// entries at a steady rate while the processor is killed with kill -9
// three times and restarted at once, per storage and queue. Every entry
// the pusher was answered 200 for is in the database: at once (SQLite,
// PostgreSQL: --ack stored means committed) or once the stream has
// drained (a bus: --ack stored means on the stream's disk). Each request
// has an Idempotency-Key, so a retry of one whose answer the kill cut off
// is not stored twice. LOGPROC_CRASH_ACK=queued runs it with --ack queued, to see
// what that costs (it fails, counting the entries lost).
func TestKill9Acknowledged(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("kill -9 is a Unix test")
	}
	cases := []struct {
		name    string
		backend string
		bus     string // "", "embedded" or "jetstream"
	}{
		{"sqlite", "sqlite", ""},
		{"postgres", "postgres", ""},
		{"embedded bus + sqlite", "sqlite", "embedded"},
		{"jetstream + postgres", "postgres", "jetstream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dsn := filepath.Join(dir, "logs.db")
			if tc.backend == "postgres" {
				dsn = pgtest.DSN(t)
			}
			ingest := freePort(t)
			args := []string{"--http-addr", "127.0.0.1:0", "--log-format", "json", "--ingest-addr", ingest,
				"--storage", tc.backend, "--dsn", dsn, "--ack", ackMode()}
			switch tc.bus {
			case "embedded":
				args = append(args, "--bus", "embedded", "--data-dir", filepath.Join(dir, "data"))
			case "jetstream":
				srv := natstest.Start(t)
				args = append(args, "--bus", "jetstream", "--nats-url", srv.URL(), "--bus-ack-wait", "2s")
			}
			p := e2e.Start(t, processorBin, args...)
			c := &crashPusher{url: "http://" + ingest + "/ingest", batches: 500, per: 100, keys: true}
			c.acked = make([]atomic.Bool, c.batches)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var pushing sync.WaitGroup
			pushing.Go(func() { c.run(ctx, 5*time.Millisecond) })
			for _, at := range []int64{100, 225, 350} { // of 500 batches answered
				poll.Until(t, time.Minute, "batches answered", func() bool { return c.done.Load() >= at })
				p.Kill()
				p = e2e.Start(t, processorBin, args...)
			}
			pushing.Wait()
			if n := c.done.Load(); n != int64(c.batches) {
				t.Fatalf("the pusher gave up with %d of %d batches answered", n, c.batches)
			}
			count := func() map[string]int {
				seen := map[string]int{}
				for _, m := range dbStrings(t, tc.backend, dsn, "SELECT message FROM logs WHERE service = 'crash'") {
					seen[m]++
				}
				return seen
			}
			acked := func(i int) bool { return c.acked[i/c.per].Load() }
			lost, twice := tally(count(), c.batches*c.per, "crash-%07d", acked)
			// With a bus, entries answered 200 are on the stream, and
			// reach storage after the restart: give them a minute.
			for deadline := time.Now().Add(time.Minute); tc.bus != "" && lost > 0 && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond)
				lost, twice = tally(count(), c.batches*c.per, "crash-%07d", acked)
			}
			if lost > 0 {
				t.Fatalf("%d entries answered 200 are not stored", lost)
			}
			if twice > 0 {
				t.Fatalf("%d entries stored twice, although every request had an Idempotency-Key", twice)
			}
			t.Logf("%d entries in %d batches, 3 kills: none lost; %d stored twice; %d retried requests", c.batches*c.per, c.batches, twice, c.retries.Load())
			if err := p.Stop(20 * time.Second); err != nil {
				t.Error(err)
			}
		})
	}
}

func ackMode() string {
	if a := os.Getenv("LOGPROC_CRASH_ACK"); a != "" {
		return a
	}
	return "stored"
}

// TestGeneratorWSPushAcrossKill9: the generator pushing over WebSocket
// asks for acknowledgements and keeps each frame until it has one; the
// processor (SQLite) is killed with kill -9 mid-push and restarted on the
// same port. The generator sends again what was not acknowledged, so
// every line it made is stored (some, sent again, twice).
func TestGeneratorWSPushAcrossKill9(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("kill -9 is a Unix test")
	}
	const total = 20000
	dsn := filepath.Join(t.TempDir(), "logs.db")
	ingest := freePort(t)
	args := []string{"--http-addr", "127.0.0.1:0", "--log-format", "json", "--ingest-addr", ingest, "--storage", "sqlite", "--dsn", dsn}
	p := e2e.Start(t, processorBin, args...)
	gen := startGenerator(t, "--push-to", "ws://"+ingest+"/ws/ingest",
		"--push-params", fmt.Sprintf("rate=5000&count=%d&service=gen-ws", total), "--push-batch", "250")
	// Killed at a count of lines taken, not stored: anywhere between two
	// commits.
	poll.Until(t, time.Minute, "a quarter taken", func() bool {
		var s stats
		getJSON(t, "http://"+p.Addr+"/stats", &s)
		return s.Submitted >= total/4
	})
	p.Kill()
	p = e2e.Start(t, processorBin, args...)
	poll.Until(t, 2*time.Minute, "the generator to finish pushing", func() bool { return len(gen.Lines("push finished")) > 0 })
	if err := p.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	rows := countRows(t, "sqlite", dsn)
	if rows < total {
		t.Fatalf("%d rows for %d lines pushed: acknowledged frames lost", rows, total)
	}
	t.Logf("%d lines pushed across a kill -9, %d rows: %d sent again after the kill", total, rows, rows-total)
}

// pgCluster is a PostgreSQL server of the test's own, which it may crash:
// scripts/pg-test-cluster.sh's.
type pgCluster struct {
	script, dir, dsn string
}

// startPGCluster starts a private server, skipping (or failing, when
// PostgreSQL is required) the test where there is none; the test's
// cleanup removes it.
func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	script, err := filepath.Abs("../../../scripts/pg-test-cluster.sh")
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd := exec.Command("bash", script, "start")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if os.Getenv("LOGPROC_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("start a PostgreSQL server: %v\n%s", err, stderr.String())
		}
		t.Skipf("no PostgreSQL server to start here: %v\n%s", err, stderr.String())
	}
	c := &pgCluster{script: script}
	for line := range strings.SplitSeq(string(out), "\n") {
		for field := range strings.FieldsSeq(strings.TrimPrefix(line, "export ")) {
			k, v, _ := strings.Cut(field, "=")
			v = strings.Trim(v, "'")
			switch k {
			case "PGTEST_DIR":
				c.dir = v
			case "LOGPROC_TEST_POSTGRES_DSN":
				c.dsn = v
			}
		}
	}
	if c.dir == "" || c.dsn == "" {
		t.Fatalf("pg-test-cluster.sh said %q", out)
	}
	t.Cleanup(func() { _ = exec.Command("bash", script, "stop", c.dir).Run() })
	return c
}

func (c *pgCluster) run(t *testing.T, cmd string) {
	t.Helper()
	if out, err := exec.Command("bash", c.script, cmd, c.dir).CombinedOutput(); err != nil {
		t.Fatalf("pg-test-cluster.sh %s: %v\n%s", cmd, err, out)
	}
}

// TestPostgresCrashAcknowledged: PostgreSQL is stopped with -m immediate
// (a crash) in the middle of a retrying pusher's stream and started again
// once the pusher is being refused. Every entry answered 200 is stored:
// requests made while it was down were answered "retry" and sent again.
// Those may have been stored before their answer was given up on, and are
// then stored twice, unless the pusher sends an Idempotency-Key: then
// none is.
func TestPostgresCrashAcknowledged(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the test's PostgreSQL server is started by a shell script")
	}
	for _, keys := range []bool{false, true} {
		t.Run(fmt.Sprint("idempotency keys ", keys), func(t *testing.T) {
			pg := startPGCluster(t)
			p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--storage", "postgres", "--dsn", pg.dsn,
				"--ack-timeout", "1s", "--max-backoff", "500ms")
			c := &crashPusher{url: "http://" + p.ingest + "/ingest", batches: 300, per: 100, keys: keys}
			c.acked = make([]atomic.Bool, c.batches)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var pushing sync.WaitGroup
			pushing.Go(func() { c.run(ctx, 5*time.Millisecond) })
			poll.Until(t, time.Minute, "a third answered", func() bool { return c.done.Load() >= 100 })
			pg.run(t, "crash")
			retried := c.retries.Load()
			poll.Until(t, time.Minute, "requests refused while PostgreSQL is down", func() bool { return c.retries.Load() > retried+2 })
			pg.run(t, "restart")
			pushing.Wait()
			if n := c.done.Load(); n != int64(c.batches) {
				t.Fatalf("the pusher gave up with %d of %d batches answered", n, c.batches)
			}
			seen := map[string]int{}
			for _, m := range dbStrings(t, "postgres", pg.dsn, "SELECT message FROM logs WHERE service = 'crash'") {
				seen[m]++
			}
			lost, twice := tally(seen, c.batches*c.per, "crash-%07d", func(i int) bool { return c.acked[i/c.per].Load() })
			if lost > 0 {
				t.Fatalf("%d entries answered 200 are not in PostgreSQL after its crash", lost)
			}
			if keys && twice > 0 {
				t.Fatalf("%d entries stored twice, although every request had an Idempotency-Key", twice)
			}
			t.Logf("%d entries, PostgreSQL crashed and restarted mid-stream: none lost, %d stored twice, %d requests retried", c.batches*c.per, twice, c.retries.Load())
			if err := p.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOTLPExporterAcrossKill9: the official OpenTelemetry exporter
// (otlploghttp, its retries on) exports numbered records in batches while
// the processor (SQLite) is killed three times and restarted on the same
// port. A batch whose Export returned nil is stored; one that failed (the
// exporter does not retry a refused connection) is exported again, as the
// application's next export would.
func TestOTLPExporterAcrossKill9(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("kill -9 is a Unix test")
	}
	const batches, per = 200, 100
	dsn := filepath.Join(t.TempDir(), "logs.db")
	ingest := freePort(t)
	args := []string{"--http-addr", "127.0.0.1:0", "--log-format", "json", "--ingest-addr", ingest, "--storage", "sqlite", "--dsn", dsn}
	p := e2e.Start(t, processorBin, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL("http://"+ingest+"/v1/logs"),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: true, InitialInterval: 50 * time.Millisecond,
			MaxInterval: 500 * time.Millisecond, MaxElapsedTime: 30 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer exp.Shutdown(context.Background())
	var done, failed atomic.Int64
	var exporting sync.WaitGroup
	exporting.Go(func() {
		for b := range batches {
			recs := make([]sdklog.Record, per)
			for i := range recs {
				recs[i].SetTimestamp(time.Now())
				recs[i].SetSeverity(otellog.SeverityInfo)
				recs[i].SetBody(attribute.StringValue(fmt.Sprintf("otel-%07d", b*per+i)))
			}
			for ctx.Err() == nil {
				if err := exp.Export(ctx, recs); err == nil {
					break
				}
				failed.Add(1)
				time.Sleep(100 * time.Millisecond) // the application's next export
			}
			done.Add(1)
		}
	})
	for _, at := range []int64{40, 90, 140} {
		poll.Until(t, time.Minute, "batches exported", func() bool { return done.Load() >= at })
		p.Kill()
		p = e2e.Start(t, processorBin, args...)
	}
	exporting.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the exporter did not finish: %d of %d batches", done.Load(), batches)
	}
	seen := map[string]int{}
	for _, m := range dbStrings(t, "sqlite", dsn, "SELECT message FROM logs WHERE message LIKE 'otel-%'") {
		seen[m]++
	}
	lost, twice := tally(seen, batches*per, "otel-%07d", func(int) bool { return true })
	if lost > 0 {
		t.Fatalf("%d records exported (Export returned nil) are not stored", lost)
	}
	t.Logf("%d records exported across 3 kills: none lost, %d stored twice, %d exports failed and were made again", batches*per, twice, failed.Load())
	if err := p.Stop(20 * time.Second); err != nil {
		t.Error(err)
	}
}

// TestEmbeddedBusFullRefuses: with the embedded bus and PostgreSQL
// unreachable, the stream fills up to --bus-max-bytes; from then on pushes
// are refused with a retryable answer, never acknowledged and dropped, and
// no message is deleted to make room. Once the database is back the
// stream drains and every entry answered 200 is stored.
func TestEmbeddedBusFullRefuses(t *testing.T) {
	dsn := pgtest.DSN(t)
	proxied, proxy := e2e.NewDSNProxy(t, dsn)
	dir := t.TempDir()
	p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--storage", "postgres", "--dsn", proxied,
		"--bus", "embedded", "--data-dir", dir, "--bus-max-bytes", "256KiB", "--ack-timeout", "1s", "--max-backoff", "500ms")
	proxy.SetDown(true)
	c := &crashPusher{url: "http://" + p.ingest + "/ingest", batches: 400, per: 100, keys: true}
	c.acked = make([]atomic.Bool, c.batches)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var pushing sync.WaitGroup
	pushing.Go(func() { c.run(ctx, time.Millisecond) })
	var s busView
	poll.Until(t, time.Minute, "the stream full and pushes refused", func() bool {
		s = busStats(t, p.api)
		return c.retries.Load() > 10 && s.Bus.StreamBytes > 128<<10
	})
	if s.Bus.StreamBytes > 256<<10 {
		t.Fatalf("the stream holds %d bytes, past --bus-max-bytes 256KiB", s.Bus.StreamBytes)
	}
	answered := c.done.Load()
	proxy.SetDown(false)
	pushing.Wait()
	if n := c.done.Load(); n != int64(c.batches) {
		t.Fatalf("the pusher gave up with %d of %d batches answered", n, c.batches)
	}
	seen := map[string]int{}
	poll.Until(t, time.Minute, "every acknowledged entry stored", func() bool {
		seen = map[string]int{}
		for _, m := range dbStrings(t, "postgres", dsn, "SELECT message FROM logs WHERE service = 'crash'") {
			seen[m]++
		}
		lost, _ := tally(seen, c.batches*c.per, "crash-%07d", func(i int) bool { return c.acked[i/c.per].Load() })
		return lost == 0
	})
	_, twice := tally(seen, c.batches*c.per, "crash-%07d", func(int) bool { return true })
	if twice > 0 {
		t.Fatalf("%d entries stored twice, although every request had an Idempotency-Key", twice)
	}
	t.Logf("stream full at %d bytes with %d batches answered; %d requests refused and retried; all %d entries stored once",
		s.Bus.StreamBytes, answered, c.retries.Load(), c.batches*c.per)
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

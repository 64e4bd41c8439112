package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
	"github.com/logpipeline/log-processing-service/pkg/models"

	"github.com/nats-io/nats.go"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus"
	"github.com/logpipeline/log-processing-service/log-processor/internal/bus/natstest"
	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres/pgtest"
)

// busView is the part of /stats the bus tests read.
type busView struct {
	Received    uint64            `json:"received"`
	OK          uint64            `json:"ok"`
	Ignored     uint64            `json:"ignored"`
	Submitted   uint64            `json:"submitted"`
	Dropped     uint64            `json:"dropped"`
	DropReasons map[string]uint64 `json:"drop_reasons"`
	Stored      uint64            `json:"stored"`
	Bus         struct {
		Role         string `json:"role"`
		Connected    bool   `json:"connected"`
		Published    uint64 `json:"published"`
		Pending      int64  `json:"pending"`
		Lost         uint64 `json:"lost"`
		Acknowledged uint64 `json:"acknowledged"`
		ConsumerLag  int64  `json:"consumer_lag"`
		StreamBytes  int64  `json:"stream_bytes"`
	} `json:"bus"`
	Cluster *struct {
		ID      string   `json:"id"`
		Members []string `json:"members"`
	} `json:"cluster"`
	Sources []struct {
		URL   string `json:"url"`
		State string `json:"state"`
		Owner string `json:"owner"`
	} `json:"sources"`
}

func busStats(t *testing.T, api string) busView {
	t.Helper()
	var v busView
	if code := getJSON(t, api+"/stats", &v); code != http.StatusOK {
		t.Fatalf("/stats: status %d", code)
	}
	if v.Received != v.OK+v.Ignored || v.OK != v.Submitted+v.Dropped {
		t.Fatalf("/stats does not add up: %+v", v)
	}
	return v
}

func readyStatus(t *testing.T, api string) string {
	t.Helper()
	var rd struct{ Status string }
	getJSON(t, api+"/readyz", &rd)
	return rd.Status
}

func busArgs(srv *natstest.Server, dsn, instance string, more ...string) []string {
	return append([]string{"--bus", "jetstream", "--nats-url", srv.URL(), "--storage", "postgres", "--dsn", dsn,
		"--instance", instance, "--flush-interval", "20ms", "--bus-ack-wait", "3s", "--max-backoff", "500ms"}, more...)
}

// pgInt runs a query returning one integer.
func pgInt(t *testing.T, dsn, query string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(dbStrings(t, "postgres", dsn, query)[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkOnce fails unless every row came over the bus and no bus identity
// is stored twice.
func checkOnce(t *testing.T, dsn string) {
	t.Helper()
	if n := pgInt(t, dsn, "SELECT CAST(count(*) AS TEXT) FROM logs WHERE bus_pos IS NULL"); n != 0 {
		t.Errorf("%d rows did not come over the bus", n)
	}
	if n := pgInt(t, dsn, "SELECT CAST(count(*) - count(DISTINCT (bus_epoch, bus_pos)) AS TEXT) FROM logs"); n != 0 {
		t.Errorf("%d rows stored twice", n)
	}
}

// TestFleetSharesSources (issue 13, test 1): two processors with one
// cluster name and six sources divide them three and three; each source is
// read by exactly one processor, and PostgreSQL holds the sum of the
// counts, none twice.
func TestFleetSharesSources(t *testing.T) {
	srv := natstest.Start(t)
	dsn := pgtest.DSN(t)
	gen := startGenerator(t)
	// The sources answer only once both processors have divided them, so
	// that no source is read, handed over and read again from its start.
	proxy := e2e.NewProxy(t, gen.Addr)
	proxy.SetDown(true)
	counts := []int{1000, 1500, 2000, 2500, 3000, 3500}
	var urls []string
	total := 0
	for i, n := range counts {
		urls = append(urls, fmt.Sprintf("s%d=ws://%s/ws/logs?flood&count=%d&service=svc%d", i, proxy.Addr, n, i))
		total += n
	}
	var procs []*processor
	for _, inst := range []string{"proc-a", "proc-b"} {
		procs = append(procs, startProcessor(t, busArgs(srv, dsn, inst, "--urls", strings.Join(urls, ","),
			"--cluster", "fleet", "--lease-ttl", "3s")...))
	}
	poll.Until(t, 30*time.Second, "two members, each owning three sources", func() bool {
		per := map[string]int{}
		for _, p := range procs {
			s := busStats(t, p.api)
			if s.Cluster == nil || len(s.Cluster.Members) != 2 {
				return false
			}
			for _, src := range s.Sources {
				if src.Owner == s.Cluster.ID {
					per[src.Owner]++
				}
			}
		}
		return len(per) == 2 && per[busStats(t, procs[0].api).Cluster.ID] == 3
	})
	proxy.SetDown(false)
	poll.Until(t, 60*time.Second, "every entry stored", func() bool {
		return countRows(t, "postgres", dsn) >= int64(total)
	})
	for _, p := range procs {
		s := busStats(t, p.api)
		if s.Dropped != 0 {
			t.Errorf("dropped %d: %v", s.Dropped, s.DropReasons)
		}
		for _, src := range s.Sources {
			if (src.State == "standby") == (src.Owner == s.Cluster.ID) {
				t.Errorf("source %s: state %s, owner %s, this processor %s", src.URL, src.State, src.Owner, s.Cluster.ID)
			}
		}
	}
	// Each source was read by exactly one processor: one has its frames
	// (the count and a control frame), the other none.
	ta, tb := sourceTotals(t, procs[0].api), sourceTotals(t, procs[1].api)
	for i, n := range counts {
		name := fmt.Sprintf("s%d", i)
		a, b := ta[name], tb[name]
		if min(a, b) != 0 || max(a, b) != uint64(n+1) {
			t.Errorf("source %s: proc-a received %d frames, proc-b %d; want %d from one of them", name, a, b, n+1)
		}
	}
	// The first to stop gives its leases up and the other takes its
	// sources over, which would read each count again from its start.
	proxy.SetDown(true)
	for _, p := range procs {
		if err := p.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	if n := countRows(t, "postgres", dsn); n != int64(total) {
		t.Errorf("%d rows, want the sum of the counts, %d", n, total)
	}
	checkOnce(t, dsn)
	for i, n := range counts {
		svc := fmt.Sprintf("svc%d", i)
		if got := pgInt(t, dsn, "SELECT CAST(count(*) AS TEXT) FROM logs WHERE service = '"+svc+"'"); got != int64(n) {
			t.Errorf("%s: %d rows, want %d", svc, got, n)
		}
	}
}

// sourceTotals returns the frames each processor received from each
// source, by source name.
func sourceTotals(t *testing.T, api string) map[string]uint64 {
	t.Helper()
	var v struct {
		Sources []struct {
			URL   string `json:"url"`
			Total uint64 `json:"total"`
		} `json:"sources"`
	}
	getJSON(t, api+"/stats", &v)
	out := map[string]uint64{}
	for _, s := range v.Sources {
		out[s.URL] = s.Total
	}
	return out
}

// audit records the entries of every message published on the bus, by
// message ID, as a plain NATS subscriber sees them.
type audit struct {
	mu  sync.Mutex
	ids map[string]int
}

func startAudit(t *testing.T, url string) *audit {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	a := &audit{ids: map[string]int{}}
	_, err = nc.Subscribe(bus.DefaultSubject, func(m *nats.Msg) {
		n, err := bus.Count(m.Data)
		if err != nil {
			t.Errorf("audit: %v", err)
			return
		}
		a.mu.Lock()
		a.ids[m.Header.Get(nats.MsgIdHdr)] = n
		a.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *audit) entries() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.ids {
		n += c
	}
	return n
}

// TestFleetKill9 (issue 13, test 2): kill -9 one of two processors while
// its sources stream. Its sources move to the other within the lease time
// plus backoff, and afterwards every entry published to the stream is in
// PostgreSQL exactly once, the killed processor's unacknowledged messages
// included.
func TestFleetKill9(t *testing.T) {
	srv := natstest.Start(t)
	dsn := pgtest.DSN(t)
	aud := startAudit(t, srv.URL())
	gen := startGenerator(t)
	var urls []string
	for i := range 4 {
		urls = append(urls, fmt.Sprintf("k%d=%s", i, gen.WSURL(fmt.Sprintf("rate=500&service=k%d", i))))
	}
	const ttl = 3 * time.Second
	start := func(inst string) *e2e.Proc {
		return e2e.Start(t, processorBin, busArgs(srv, dsn, inst, "--urls", strings.Join(urls, ","),
			"--cluster", "fleet", "--lease-ttl", ttl.String(), "--http-addr", "127.0.0.1:0", "--log-format", "json")...)
	}
	pa, pb := start("proc-a"), start("proc-b")
	apiA, apiB := "http://"+pa.Addr, "http://"+pb.Addr
	owned := func(api string) (id string, n int) {
		s := busStats(t, api)
		if s.Cluster == nil {
			return "", 0
		}
		for _, src := range s.Sources {
			if src.Owner == s.Cluster.ID && src.State == "connected" {
				n++
			}
		}
		return s.Cluster.ID, n
	}
	poll.Until(t, 30*time.Second, "two sources each, reading", func() bool {
		_, na := owned(apiA)
		_, nb := owned(apiB)
		return na == 2 && nb == 2
	})
	poll.Until(t, 30*time.Second, "both storing", func() bool { return busStats(t, apiA).Stored > 500 && busStats(t, apiB).Stored > 500 })
	pa.Kill()
	killed := time.Now()
	// Within the lease time, a round, and a reconnect's backoff.
	poll.Until(t, ttl+ttl/5+5*time.Second, "the survivor reading all four", func() bool {
		_, n := owned(apiB)
		return n == 4
	})
	t.Logf("sources moved %v after kill -9 (lease %v)", time.Since(killed).Round(100*time.Millisecond), ttl)
	// The killed processor's messages in hand come again to the survivor
	// after --bus-ack-wait; then stop reading and drain.
	poll.Until(t, 30*time.Second, "the stream drained", func() bool {
		s := busStats(t, apiB)
		return s.Bus.ConsumerLag < 5 && s.Stored > 0
	})
	if err := pb.Stop(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	// Whatever is left in the stream is stored by a storing processor.
	ps := startProcessor(t, busArgs(srv, dsn, "proc-c", "--role", "store")...)
	poll.Until(t, 30*time.Second, "the stream empty", func() bool {
		s := busStats(t, ps.api)
		return s.Bus.ConsumerLag == 0 && int64(aud.entries()) == countRows(t, "postgres", dsn)
	})
	if err := ps.stop(t); err != nil {
		t.Fatal(err)
	}
	want, got := aud.entries(), countRows(t, "postgres", dsn)
	if int64(want) != got {
		t.Errorf("%d rows, but %d entries were published to the stream", got, want)
	}
	checkOnce(t, dsn)
	t.Logf("%d entries published in %d messages, each stored once", want, len(aud.ids))
}

// TestNATSRestart (issue 13, test 3): nats-server stops mid-stream and
// comes back with its file store. Readiness degrades and recovers; the
// processor reconnects by itself; what did not fit its bound meanwhile is
// dropped as bus_unavailable, and everything it accepted is stored once.
func TestNATSRestart(t *testing.T) {
	srv := natstest.Start(t)
	dsn := pgtest.DSN(t)
	gen := startGenerator(t)
	const n = 12000
	// A small bound, so that the outage fills it and drops show.
	p := startProcessor(t, busArgs(srv, dsn, "proc-a", "--urls", gen.WSURL(fmt.Sprintf("rate=2000&count=%d", n)),
		"--queue-max-bytes", "256KiB")...)
	poll.Until(t, 30*time.Second, "storing", func() bool { return busStats(t, p.api).Stored >= 2000 })
	srv.Stop()
	poll.Until(t, 15*time.Second, "readiness degraded", func() bool { return readyStatus(t, p.api) == "degraded" })
	if s := busStats(t, p.api); s.Bus.Connected {
		t.Errorf("bus shown connected while NATS is down: %+v", s.Bus)
	}
	poll.Until(t, 15*time.Second, "entries held, then dropped as bus_unavailable", func() bool {
		s := busStats(t, p.api)
		return s.Bus.Pending > 0 && s.DropReasons["bus_unavailable"] > 0
	})
	srv.Start()
	poll.Until(t, 30*time.Second, "readiness recovered", func() bool { return readyStatus(t, p.api) == "ready" })
	poll.Until(t, 60*time.Second, "every entry stored", func() bool {
		s := busStats(t, p.api)
		return s.Received == n+1 && s.Bus.Pending == 0 && int64(s.Submitted) == countRows(t, "postgres", dsn)
	})
	s := busStats(t, p.api)
	if s.Dropped == 0 || s.DropReasons["bus_unavailable"] != s.Dropped {
		t.Errorf("dropped %d: %v; want every drop counted as bus_unavailable", s.Dropped, s.DropReasons)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := countRows(t, "postgres", dsn); got != int64(s.Submitted) || s.Bus.Lost != 0 {
		t.Errorf("%d rows, %d accepted, %d lost: want every accepted entry stored", got, s.Submitted, s.Bus.Lost)
	}
	checkOnce(t, dsn)
	t.Logf("accepted %d, dropped %d (%v), stored %d", s.Submitted, s.Dropped, s.DropReasons, s.Submitted)
}

// TestIngestAndStoreRoles (issue 13, test 4): a processor that only reads
// sources and one that only stores deliver end to end through the stream.
func TestIngestAndStoreRoles(t *testing.T) {
	srv := natstest.Start(t)
	dsn := pgtest.DSN(t)
	gen := startGenerator(t)
	in := startProcessor(t, "--role", "ingest", "--bus", "jetstream", "--nats-url", srv.URL(), "--urls", gen.WSURL("flood&count=3000"))
	st := startProcessor(t, busArgs(srv, dsn, "writer", "--role", "store")...)
	poll.Until(t, 30*time.Second, "3000 stored", func() bool { return countRows(t, "postgres", dsn) == 3000 })
	si, ss := busStats(t, in.api), busStats(t, st.api)
	if si.Bus.Role != "ingest" || si.Bus.Published != 3000 || si.Stored != 0 {
		t.Errorf("ingest processor: %+v", si)
	}
	if ss.Bus.Role != "store" || ss.Bus.Acknowledged != 3000 || ss.Stored != 3000 || len(ss.Sources) != 0 {
		t.Errorf("store processor: %+v", ss)
	}
	for _, p := range []*processor{in, st} {
		if rs := readyStatus(t, p.api); rs != "ready" {
			t.Errorf("readiness %s", rs)
		}
	}
	for _, p := range []*processor{in, st} {
		if err := p.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	checkOnce(t, dsn)
}

// TestNATSCredentialsHidden: credentials in the NATS URL reach the server
// and appear nowhere the processor shows; wrong ones fail the start with
// the server's reason.
func TestNATSCredentialsHidden(t *testing.T) {
	srv := natstest.Start(t, "--user", "alice", "--pass", "hunter2-nats")
	gen := startGenerator(t)
	withCreds := strings.Replace(srv.URL(), "nats://", "nats://alice:hunter2-nats@", 1)
	p := startProcessor(t, "--bus", "jetstream", "--nats-url", withCreds, "--urls", gen.WSURL("flood&count=100"))
	poll.Until(t, 30*time.Second, "100 stored", func() bool { return busStats(t, p.api).Stored == 100 })
	var seen strings.Builder
	for _, path := range []string{"/stats", "/readyz", "/metrics"} {
		resp, err := http.Get(p.api + path)
		if err != nil {
			t.Fatal(err)
		}
		b := new(strings.Builder)
		_, _ = io.Copy(b, resp.Body)
		resp.Body.Close()
		seen.WriteString(b.String())
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	seen.WriteString(p.stderr.String())
	if strings.Contains(seen.String(), "hunter2-nats") {
		t.Error("the NATS password shows in the API or the log")
	}
	wrong := strings.Replace(srv.URL(), "nats://", "nats://alice:wrong@", 1)
	err := run(context.Background(), nil, []string{"--bus", "jetstream", "--nats-url", wrong, "--urls", gen.WSURL(""), "--http-addr", "127.0.0.1:0"},
		io.Discard, io.Discard, nil, nil)
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") || strings.Contains(err.Error(), "wrong@") {
		t.Errorf("start with a wrong password: %v", err)
	}
}

// TestBusFlags: the bus flags are refused where they mean nothing.
func TestBusFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--urls", "ws://x/", "--role", "store"}, "--role store needs --bus jetstream"},
		{[]string{"--urls", "ws://x/", "--cluster", "a"}, "--cluster is for --bus jetstream"},
		{[]string{"--urls", "ws://x/", "--bus", "kafka"}, `--bus "kafka"`},
		{[]string{"--urls", "ws://x/", "--bus", "jetstream", "--role", "both"}, `unknown role "both"`},
		{[]string{"--urls", "ws://x/", "--bus", "jetstream", "--cluster", "a b"}, `--cluster "a b"`},
		{[]string{"--urls", "ws://x/", "--bus", "jetstream", "--lease-ttl", "5s"}, "--lease-ttl is for --cluster"},
		{[]string{"--urls", "ws://x/", "--bus", "jetstream", "--bus-batch", "0"}, "--bus-batch must be greater than zero"},
		{[]string{"--bus", "jetstream", "--role", "store", "--cluster", "a"}, "a --role store processor reads none"},
		{[]string{"--urls", "ws://x/", "--bus", "embedded"}, "--bus embedded needs --data-dir"},
		{[]string{"--urls", "ws://x/", "--bus", "embedded", "--data-dir", "d", "--nats-url", "nats://a:4222"}, "--nats-url is for --bus jetstream (an external NATS)"},
		{[]string{"--urls", "ws://x/", "--bus", "embedded", "--data-dir", "d", "--cluster", "a"}, "--cluster is for --bus jetstream"},
		{[]string{"--bus", "embedded", "--data-dir", "d", "--role", "store"}, "--role store needs --bus jetstream"},
		{[]string{"--urls", "ws://x/", "--bus", "jetstream", "--data-dir", "d"}, "--data-dir is for --bus embedded"},
		{[]string{"--urls", "ws://x/", "--data-dir", "d"}, "--data-dir is for --bus embedded"},
		{[]string{"--urls", "ws://x/", "--bus-max-bytes", "1GiB"}, "--bus-max-bytes is for --bus jetstream or embedded"},
		{[]string{"--urls", "ws://x/", "--ack", "sometimes"}, `--ack: unknown ack "sometimes"`},
		{[]string{"--urls", "ws://x/", "--ack-timeout", "0s"}, "--ack-timeout must be greater than zero"},
	} {
		_, err := parse(c.args, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
	}
	if _, err := parse([]string{"--bus", "jetstream", "--role", "store"}, &strings.Builder{}); err != nil {
		t.Errorf("a storing processor needs no sources: %v", err)
	}
	// The config file takes the bus flags as keys, like every other flag.
	path := writeConfig(t, "bus: jetstream\nnats-url: [nats://a:4222, nats://b:4222]\ncluster: fleet\nlease-ttl: 4s\n"+
		"instance: p1\nurls: [ws://127.0.0.1:1/ws/logs]\n")
	cfg, err := parse([]string{"--config", path}, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.pipeline.Cluster; c == nil || c.Name != "fleet" || c.TTL != 4*time.Second || c.Instance != "p1" ||
		len(cfg.bus.bus.URLs) != 2 || cfg.pipeline.Role != "all" {
		t.Errorf("from the config file: cluster %+v, bus %+v, role %q", c, cfg.bus.bus, cfg.pipeline.Role)
	}
}

// TestBusRevalidates (issue 20): entries published straight to the bus
// subject, past every processor's parser, are checked again before they
// are stored: 150,000 distinct levels, an empty message, times 2^62 and -5
// are counted as invalid and never stored; the good ones beside them are;
// /stats stays small and quick.
func TestBusRevalidates(t *testing.T) {
	srv := natstest.Start(t)
	dsn := filepath.Join(t.TempDir(), "bus.db")
	p := startProcessor(t, "--bus", "jetstream", "--nats-url", srv.URL(), "--storage", "sqlite", "--dsn", dsn,
		"--role", "store", "--flush-interval", "20ms")
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	now := time.Now().UnixMilli()
	good := func(i int) models.LogEntry {
		return models.LogEntry{Timestamp: now, Level: "WARN", Message: fmt.Sprintf("good %d", i), Service: "svc"}
	}
	const levels = 150_000
	var batches [][]models.LogEntry
	var batch []models.LogEntry
	for i := range levels {
		batch = append(batch, models.LogEntry{Timestamp: now, Level: fmt.Sprintf("L%d", i), Message: "m", Service: "svc"})
		if len(batch) == 50_000 {
			batches = append(batches, batch)
			batch = nil
		}
	}
	batches = append(batches, []models.LogEntry{
		good(1), {Timestamp: now, Level: "INFO", Service: "svc"}, {Timestamp: 1 << 62, Level: "INFO", Message: "m", Service: "svc"},
		{Timestamp: -5, Level: "INFO", Message: "m", Service: "svc"}, {Timestamp: now, Level: "", Message: "m", Service: "svc"}, good(2),
	})
	for _, b := range batches {
		if _, err := nc.Request(bus.DefaultSubject, bus.Encode(b, true), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var s struct {
		Bus struct {
			Acknowledged uint64            `json:"acknowledged"`
			Invalid      map[string]uint64 `json:"invalid"`
			ConsumerLag  int64             `json:"consumer_lag"`
		} `json:"bus"`
		Storage struct {
			Totals struct {
				ByLevel map[string]uint64 `json:"by_level"`
			} `json:"totals"`
		} `json:"storage"`
	}
	poll.Until(t, 60*time.Second, "every message handled", func() bool {
		getJSON(t, p.api+"/stats", &s)
		return s.Bus.ConsumerLag == 0 && s.Bus.Invalid["invalid_level"] == levels+1
	})
	if s.Bus.Acknowledged != 2 || s.Bus.Invalid["missing_message"] != 1 || s.Bus.Invalid["timestamp_out_of_range"] != 2 {
		t.Errorf("bus stats %+v: want 2 stored, %d bad levels, 1 without a message, 2 out of range", s.Bus, levels+1)
	}
	if n := countRows(t, "sqlite", dsn); n != 2 {
		t.Errorf("%d rows stored, want the 2 good ones", n)
	}
	start := time.Now()
	body := getBody(t, p.api+"/stats")
	if d := time.Since(start); len(body) > 64<<10 || d > time.Second {
		t.Errorf("/stats: %d bytes in %v", len(body), d)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

package metrics

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus"
	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/buildinfo"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden from the current output")

// snapshot is a fixed pipeline snapshot: a dialed source, a pusher, and a
// database that has written.
type snapshot pipeline.Stats

func (s snapshot) Stats() pipeline.Stats { return pipeline.Stats(s) }

func fixed() snapshot {
	dial := intake.Stats{Name: "checkout", URL: "checkout", Kind: intake.KindDial, State: intake.StateConnected, Reconnects: 2,
		Counters: intake.Counters{Total: 120, OK: 100, ParseErr: 15, Ignored: 1, BelowMinLevel: 4, DefaultLevel: 7, Submitted: 98, Dropped: 2,
			ParseErrors: map[string]uint64{"invalid_json": 10, "invalid_level": 5, "too_large": 0},
			DropReasons: map[string]uint64{"queue_full": 2, "storage_unavailable": 0}}}
	// An unnamed source whose URL has a query string (parameters, maybe
	// secret): its label is host:port/path.
	unnamed := intake.Stats{Name: "127.0.0.1:8080/ws/logs", URL: "ws://127.0.0.1:8080/ws/logs?count=2000&token=REDACTED",
		Kind: intake.KindDial, State: intake.StateBackoff,
		Counters: intake.Counters{ParseErrors: map[string]uint64{}, DropReasons: map[string]uint64{}}}
	pusher := intake.Stats{Name: "push:fluent-bit:ws", URL: "/ws/ingest", Kind: intake.KindPush, State: "listening", Token: "fluent-bit", Clients: 3,
		Counters: intake.Counters{Total: 50, OK: 50, Submitted: 50,
			ParseErrors: map[string]uint64{"invalid_json": 0}, DropReasons: map[string]uint64{"queue_full": 0}}}
	writes := storage.LatencySnapshot{Count: 12, Sum: 0.42, Cumulative: []uint64{1, 3, 5, 8, 10, 11, 12, 12, 12, 12, 12, 12, 12}}
	s := pipeline.Stats{Processed: 140, Queue: 8, Workers: 50, QueueCapacity: 10000, QueueBytes: 2048, QueueMaxBytes: 32 << 20,
		TailClients: 1, Stored: 139, Sources: []intake.Stats{dial, unnamed, pusher},
		Ingest: &push.GateStats{Requests: 2, MaxRequests: 64, InflightBytes: 4096, MaxInflightBytes: 64 << 20, Refused: 3}}
	s.Storage.Status = storage.Status{Backend: "sqlite", State: storage.StateOK, Stored: 139, Rejected: 1, WriteErrors: 2, Writes: &writes}
	// On JetStream, in a cluster, reading the dialed source.
	s.Sources[0].Owner = "proc-a-1f0c"
	s.Cluster = &pipeline.ClusterStats{Name: "fleet", ID: "proc-a-1f0c", Members: []string{"proc-a-1f0c", "proc-b-77d2"}}
	s.Bus = &pipeline.BusStats{Role: pipeline.RoleAll, Status: bus.Status{Kind: "jetstream", Connected: true},
		PublishStats: &bus.PublishStats{Published: 140, Pending: 8, PublishErrors: 1},
		ConsumeStats: &bus.ConsumeStats{Acknowledged: 139, Redelivered: 2, ConsumerLag: 3, Invalid: map[string]uint64{"invalid_level": 4}}}
	return snapshot(s)
}

func scrape(t *testing.T) []byte {
	t.Helper()
	reg := NewRegistry(fixed(), buildinfo.Info{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.26.0"}, false)
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGolden compares the exposition of a fixed snapshot with
// testdata/metrics.golden; go test -run TestGolden -update rewrites it.
func TestGolden(t *testing.T) {
	got := scrape(t)
	golden := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the exposition differs from %s (go test -run TestGolden -update to accept):\n%s", golden, got)
	}
	for _, bad := range []string{"ws://", "service=", "?", "count=", "token"} {
		if bytes.Contains(got, []byte(bad)) {
			t.Errorf("the exposition holds %q: URLs and services must not be labels", bad)
		}
	}
}

// TestPromtool runs promtool check metrics on the golden file. CI sets
// LOGPROC_REQUIRE_PROMTOOL=1 so that it never skips there.
func TestPromtool(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("LOGPROC_REQUIRE_PROMTOOL") != "" {
			t.Fatal("promtool not found, and LOGPROC_REQUIRE_PROMTOOL is set")
		}
		t.Skip("promtool not installed (Debian: apt-get install prometheus)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(scrape(t))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

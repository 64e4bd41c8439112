package cli

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
)

// counters mirrors the per-source and total counters of /stats.
type counters struct {
	Total       uint64            `json:"total"`
	OK          uint64            `json:"ok"`
	ParseErr    uint64            `json:"parse_err"`
	ParseErrors map[string]uint64 `json:"parse_errors"`
	Ignored     uint64            `json:"ignored"`
	BelowMin    uint64            `json:"below_min_level"`
	Submitted   uint64            `json:"submitted"`
	Dropped     uint64            `json:"dropped"`
	// DefaultLevel: entries stored at --default-level, having none.
	DefaultLevel uint64 `json:"default_level"`
}

type sourceStats struct {
	Name       string `json:"name"`
	URL        string `json:"url"`
	Kind       string `json:"kind"`
	State      string `json:"state"`
	Reconnects uint64 `json:"reconnects"`
	LastError  string `json:"last_error"`
	Token      string `json:"token"`
	Clients    int    `json:"clients"`
	Requests   uint64 `json:"requests"`
	Refused    uint64 `json:"refused_requests"`
	counters
}

type stats struct {
	Processed   uint64
	Queue       int
	Workers     int
	Received    uint64            `json:"received"`
	OK          uint64            `json:"ok"`
	ParseErr    uint64            `json:"parse_err"`
	ParseErrors map[string]uint64 `json:"parse_errors"`
	Ignored     uint64            `json:"ignored"`
	BelowMin    uint64            `json:"below_min_level"`
	Submitted   uint64            `json:"submitted"`
	Dropped     uint64            `json:"dropped"`
	DropReasons map[string]uint64 `json:"drop_reasons"`
	Stored      uint64            `json:"stored"`
	ByLevel     map[string]uint64 `json:"by_level"`
	ByService   map[string]uint64 `json:"by_service"`
	Storage     struct {
		Backend         string            `json:"backend"`
		State           string            `json:"state"`
		Stored          uint64            `json:"stored"`
		LastError       string            `json:"last_error"`
		Rejected        uint64            `json:"rejected"`
		RejectedReasons map[string]uint64 `json:"rejected_reasons"`
		Duplicates      uint64            `json:"duplicates"`
		Totals          *struct {
			Total     uint64            `json:"total"`
			ByLevel   map[string]uint64 `json:"by_level"`
			ByService map[string]uint64 `json:"by_service"`
		} `json:"totals"`
	} `json:"storage"`
	Sources []sourceStats `json:"sources"`
}

// checkInvariants fails the test unless the snapshot adds up.
func checkInvariants(t *testing.T, s stats) {
	t.Helper()
	var sum counters
	for _, src := range s.Sources {
		c := src.counters
		var perr uint64
		for _, n := range c.ParseErrors {
			perr += n
		}
		if c.Total != c.OK+c.ParseErr+c.Ignored+c.BelowMin || c.OK != c.Submitted+c.Dropped || c.ParseErr != perr {
			t.Fatalf("source %s does not add up: %+v", src.URL, c)
		}
		sum.Total += c.Total
		sum.Submitted += c.Submitted
		sum.Dropped += c.Dropped
	}
	if s.Received != s.OK+s.ParseErr+s.Ignored+s.BelowMin || s.OK != s.Submitted+s.Dropped {
		t.Fatalf("totals do not add up: %+v", s)
	}
	if s.Received != sum.Total || s.Submitted != sum.Submitted || s.Dropped != sum.Dropped {
		t.Fatalf("totals %+v are not the sum of the sources %+v", s, sum)
	}
	if s.Processed > s.Submitted || s.Stored > s.Processed {
		t.Fatalf("processed %d, stored %d, submitted %d: want stored <= processed <= submitted", s.Processed, s.Stored, s.Submitted)
	}
	var dropped uint64
	for _, n := range s.DropReasons {
		dropped += n
	}
	if dropped != s.Dropped {
		t.Fatalf("drop reasons %v do not add up to %d", s.DropReasons, s.Dropped)
	}
}

// TestEndToEnd: two generators with count set, one processor reading both.
// Every frame sent is accounted for, per source and in total, and the
// counters add up in every snapshot taken while it runs.
func TestEndToEnd(t *testing.T) {
	const nA, nB = 400, 3000
	genA := startGenerator(t)
	genB := startGenerator(t)
	urlA := genA.WSURL("count=400&interval_ms=1&service=alpha&level=WARN")
	urlB := genB.WSURL("count=3000&flood&service=beta")
	p := startProcessor(t, "--urls", urlA+","+urlB)

	resp, err := http.Get(p.api + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz = %d %q", resp.StatusCode, body)
	}

	var s stats
	poll.Until(t, 30*time.Second, "every frame to be received and processed", func() bool {
		s = stats{}
		if code := getJSON(t, p.api+"/stats", &s); code != http.StatusOK {
			t.Fatalf("/stats status %d", code)
		}
		checkInvariants(t, s)
		return s.Received == nA+nB+2 && s.Processed == s.Submitted
	})
	var ready struct {
		Status string `json:"status"`
	}
	if code := getJSON(t, p.api+"/readyz", &ready); code != http.StatusOK || ready.Status != "ready" {
		t.Errorf("/readyz = %d %q, want 200 ready", code, ready.Status)
	}

	if s.Workers != 50 || s.Queue != 0 {
		t.Errorf("Workers=%d Queue=%d, want 50 and 0", s.Workers, s.Queue)
	}
	if s.Ignored != 2 || s.ParseErr != 0 || s.Dropped != 0 || s.Submitted != nA+nB {
		t.Errorf("totals = %+v, want 2 ignored handshakes, %d submitted, no errors or drops", s, nA+nB)
	}
	if len(s.Sources) != 2 || s.Sources[0].URL != urlA || s.Sources[1].URL != urlB {
		t.Fatalf("sources = %+v", s.Sources)
	}
	for i, want := range []uint64{nA, nB} {
		src := s.Sources[i]
		if src.Total != want+1 || src.OK != want || src.Ignored != 1 || src.Submitted != want || src.State != "connected" {
			t.Errorf("source %d = %+v, want total %d, ok %d, 1 ignored, connected", i, src, want+1, want)
		}
	}
	if s.ByService["alpha"] != nA || s.ByService["beta"] != nB {
		t.Errorf("by_service = %v, want alpha %d, beta %d", s.ByService, nA, nB)
	}
	if s.ByLevel["WARN"] < nA || s.ByLevel["INFO"]+s.ByLevel["WARN"]+s.ByLevel["ERROR"] != nA+nB {
		t.Errorf("by_level = %v", s.ByLevel)
	}

	if err := p.stop(t); err != nil {
		t.Fatalf("run returned %v\n%s", err, p.stderr)
	}
	reports := p.logLines(t, "drain report")
	if len(reports) != 1 {
		t.Fatalf("%d drain reports, want 1\n%s", len(reports), p.stderr)
	}
	r := reports[0]
	if r["accepted"] != float64(nA+nB) || r["processed"] != float64(nA+nB) || r["lost"] != float64(0) {
		t.Errorf("drain report = %v", r)
	}
	// The final summary of each source, in the original design's terms.
	finals := map[string]map[string]any{}
	for _, l := range p.logLines(t, "summary") {
		finals[l["ws"].(string)] = l
	}
	for url, want := range map[string]float64{urlA: nA, urlB: nB} {
		l := finals[url]
		pool, _ := l["pool"].(map[string]any)
		if l == nil || l["total"] != want+1 || l["ok"] != want || l["submitted"] != want || l["ignored"] != float64(1) ||
			pool["processed"] != float64(nA+nB) {
			t.Errorf("final summary for %s = %v", url, l)
		}
	}
	for _, l := range p.logLines(t, "Successfully connected to WebSocket server") {
		if l["level"] != "INFO" {
			t.Errorf("connect line %v", l)
		}
	}
	if n := len(p.logLines(t, "Connecting to WebSocket server at: "+urlA)); n != 1 {
		t.Errorf("%d connecting lines for %s, want 1", n, urlA)
	}
}

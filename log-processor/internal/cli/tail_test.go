package cli

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
)

// ingestLines posts NDJSON lines to a processor's ingest endpoint.
func ingestLines(t *testing.T, addr string, lines []string) {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/ingest", "application/x-ndjson", strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /ingest: %s", resp.Status)
	}
}

func logLine(level, service, msg string) string {
	return `{"timestamp":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `,"level":"` + level + `","message":"` + msg + `","service":"` + service + `"}`
}

// TestTailAndMetrics: /logs/tail follows stored entries with the filters
// of /logs, as NDJSON and as Server-Sent Events; the clients are bounded;
// /metrics agrees with /stats; following clients do not hold up the
// shutdown.
func TestTailAndMetrics(t *testing.T) {
	p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--tail-max-clients", "2")
	follow := func(query string) (*http.Response, *bufio.Scanner) {
		resp, err := http.Get(p.api + "/logs/tail?" + query)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp, bufio.NewScanner(resp.Body)
	}
	ndResp, nd := follow("format=ndjson&level=WARN")
	sseResp, sse := follow("service=billing")
	if ct := ndResp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("ndjson tail: Content-Type %q", ct)
	}
	if ct := sseResp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("sse tail: Content-Type %q", ct)
	}
	if resp, err := http.Get(p.api + "/logs/tail"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("third client: %v %v, want 503", resp.Status, err)
	}
	if resp, err := http.Get(p.api + "/logs/tail?limit=5"); err != nil || resp.StatusCode != 400 {
		t.Fatalf("tail with a limit: %v %v, want 400", resp.Status, err)
	}
	var lines []string
	for i := range 10 {
		level, service := "INFO", "shop"
		if i%3 == 0 {
			level = "WARN"
		}
		if i%2 == 0 {
			service = "billing"
		}
		lines = append(lines, logLine(level, service, "m"+strconv.Itoa(i)))
	}
	ingestLines(t, p.ingest, lines)

	var warn []string
	for len(warn) < 4 && nd.Scan() { // i = 0, 3, 6, 9
		var e struct{ Level, Message string }
		if err := json.Unmarshal(nd.Bytes(), &e); err != nil {
			t.Fatalf("ndjson line %q: %v", nd.Text(), err)
		}
		if e.Level != "WARN" {
			t.Fatalf("the WARN tail sent %+v", e)
		}
		warn = append(warn, e.Message)
	}
	if strings.Join(warn, ",") != "m0,m3,m6,m9" {
		t.Fatalf("WARN tail: %v, want m0,m3,m6,m9 in order", warn)
	}
	var billing []string
	for len(billing) < 5 && sse.Scan() {
		data, ok := strings.CutPrefix(sse.Text(), "data: ")
		if !ok {
			continue // comments and blank lines between events
		}
		var e struct{ Service, Message string }
		if err := json.Unmarshal([]byte(data), &e); err != nil || e.Service != "billing" {
			t.Fatalf("sse event %q (%v)", data, err)
		}
		billing = append(billing, e.Message)
	}
	if strings.Join(billing, ",") != "m0,m2,m4,m6,m8" {
		t.Fatalf("billing tail: %v", billing)
	}

	var s stats
	poll.Until(t, 10*time.Second, "10 stored", func() bool { getJSON(t, p.api+"/stats", &s); return s.Stored == 10 })
	m := getBody(t, p.api+"/metrics")
	for _, want := range []string{
		"logproc_entries_stored_total 10",
		`logproc_frames_received_total{outcome="ok",source="push:anonymous:http"} 10`,
		`logproc_entries_submitted_total{source="push:anonymous:http"} 10`,
		"logproc_tail_clients 2",
		"logproc_build_info{",
		"go_goroutines ",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	// Had the streams not ended with the server, its shutdown would have
	// waited for them and then said so.
	if strings.Contains(p.stderr.String(), "connections still open at shutdown") {
		t.Fatal("the tail streams held up the shutdown")
	}
}

package cli

import (
	"net"
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e"
)

func stats1(t *testing.T, p *processor) stats {
	t.Helper()
	var s stats
	if code := getJSON(t, p.api+"/stats", &s); code != http.StatusOK {
		t.Fatalf("/stats status %d", code)
	}
	checkInvariants(t, s)
	return s
}

// TestSourceKilledAndRestarted (fault test 1): a source dies without a
// close frame and comes back on the same port; the processor reconnects,
// its counters carry on, and the other source never pauses.
func TestSourceKilledAndRestarted(t *testing.T) {
	genA := startGenerator(t)
	genB := startGenerator(t)
	urlA, urlB := genA.WSURL("interval_ms=2"), genB.WSURL("interval_ms=2")
	p := startProcessor(t, "--urls", urlA+","+urlB, "--max-backoff", "300ms")

	var s stats
	poll.Until(t, 20*time.Second, "both sources flowing", func() bool {
		s = stats1(t, p)
		return s.Sources[0].OK >= 50 && s.Sources[1].OK >= 50
	})
	genA.Kill()
	poll.Until(t, 20*time.Second, "the processor to notice the dead source", func() bool {
		s = stats1(t, p)
		return s.Sources[0].State != "connected"
	})
	beforeA, bAtKill := s.Sources[0], s.Sources[1].Total

	startGenerator(t, "--url", genA.Addr) // same port
	poll.Until(t, 20*time.Second, "the restarted source to flow", func() bool {
		s = stats1(t, p)
		return s.Sources[0].State == "connected" && s.Sources[0].OK > beforeA.OK+20
	})
	a, b := s.Sources[0], s.Sources[1]
	if a.Reconnects != 1 || a.Ignored != 2 {
		t.Errorf("source A: reconnects %d, ignored %d; want 1 reconnect and 2 handshakes", a.Reconnects, a.Ignored)
	}
	if a.Total < beforeA.Total {
		t.Errorf("source A's total went from %d to %d; counters must carry on", beforeA.Total, a.Total)
	}
	if b.Reconnects != 0 || b.Total <= bAtKill {
		t.Errorf("source B: reconnects %d, total %d -> %d; it should have flowed throughout", b.Reconnects, bAtKill, b.Total)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	warns := 0
	for _, l := range p.logLines(t, "WebSocket source unavailable; will retry") {
		if l["level"] == "WARN" && l["ws"] == urlA {
			warns++
		}
	}
	if warns == 0 {
		t.Error("no WARN line for the lost source")
	}
}

// TestSourceUpLate (fault test 2): a source that refuses connections at
// first; the processor starts anyway, /readyz says degraded, then ready
// once the source comes up.
func TestSourceUpLate(t *testing.T) {
	gen := startGenerator(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lateAddr := ln.Addr().String()
	ln.Close() // refused until the generator below takes the port
	lateURL := "ws://" + lateAddr + "/ws/logs"
	p := startProcessor(t, "--urls", gen.WSURL("interval_ms=5")+","+lateURL, "--max-backoff", "200ms")

	var rd struct {
		Status  string `json:"status"`
		Sources []struct {
			URL       string `json:"url"`
			State     string `json:"state"`
			LastError string `json:"last_error"`
		} `json:"sources"`
	}
	poll.Until(t, 20*time.Second, "/readyz degraded", func() bool {
		code := getJSON(t, p.api+"/readyz", &rd)
		return code == http.StatusServiceUnavailable && rd.Status == "degraded" && rd.Sources[1].LastError != ""
	})
	if rd.Sources[0].State != "connected" || rd.Sources[1].URL != lateURL || !strings.Contains(rd.Sources[1].LastError, "refused") {
		t.Errorf("/readyz = %+v", rd)
	}
	startGenerator(t, "--url", lateAddr)
	poll.Until(t, 20*time.Second, "/readyz ready", func() bool {
		return getJSON(t, p.api+"/readyz", &rd) == http.StatusOK && rd.Status == "ready"
	})
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// faultReasons maps the generator's malformed-frame kinds to the reason the
// processor must count them under.
var faultReasons = map[string]string{
	"truncated":        "invalid_json",
	"trailing_garbage": "invalid_json",
	"not_json":         "invalid_json",
	"invalid_utf8":     "invalid_utf8",
	"array":            "not_object",
	"null":             "not_object",
	"deep_nesting":     "too_deep",
	"duplicate_key":    "duplicate_field",
	"bad_level":        "invalid_level",
	"level_number":     "invalid_level",
	"timestamp_string": "invalid_timestamp",
	"timestamp_bool":   "invalid_timestamp",
	"timestamp_old":    "timestamp_out_of_range",
	"service_too_long": "field_too_long",
	"empty_message":    "missing_message",
	"service_number":   "invalid_field",
	"binary":           "binary_frame",
}

// TestMalformedCounted (fault test 4): with malformed_pct=20 and a fixed
// seed, the processor's parse errors by reason equal what the generator
// says it sent, and the connection survives them all.
func TestMalformedCounted(t *testing.T) {
	const count = 3000
	gen := startGenerator(t)
	p := startProcessor(t, "--urls", gen.WSURL("flood&count=3000&malformed_pct=20&seed=7"))
	var s stats
	poll.Until(t, 30*time.Second, "every frame", func() bool {
		s = stats1(t, p)
		return s.Received == count+1
	})
	var report map[string]any
	poll.Until(t, 10*time.Second, "the generator's report", func() bool {
		lines := gen.Lines("malformed frames sent")
		if len(lines) > 0 {
			report = lines[0]
		}
		return report != nil
	})
	want := map[string]uint64{}
	for kind, n := range report["kinds"].(map[string]any) {
		reason, ok := faultReasons[kind]
		if !ok {
			t.Fatalf("generator kind %q has no expected reason", kind)
		}
		want[reason] += uint64(n.(float64))
	}
	malformed := uint64(report["malformed"].(float64))
	if malformed < count/10 {
		t.Fatalf("only %d malformed frames sent", malformed)
	}
	for reason, n := range s.ParseErrors {
		if n != want[reason] {
			t.Errorf("parse_errors[%s] = %d, generator sent %d", reason, n, want[reason])
		}
	}
	if s.ParseErr != malformed || s.OK != count-malformed || s.Sources[0].Reconnects != 0 {
		t.Errorf("parse_err %d ok %d reconnects %d; want %d, %d, 0", s.ParseErr, s.OK, s.Sources[0].Reconnects, malformed, count-malformed)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestSIGTERMDuringFlood (fault test 7): the real processor binary, under
// flood, exits 0 on SIGTERM with everything it accepted processed.
func TestSIGTERMDuringFlood(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent on Windows")
	}
	gen := startGenerator(t)
	proc := e2e.Start(t, processorBin, "--urls", gen.WSURL("flood&service=a")+","+gen.WSURL("flood&service=b"),
		"--http-addr", "127.0.0.1:0", "--log-format", "json", "--queue-size", "64", "--workers", "2")
	var s stats
	poll.Until(t, 20*time.Second, "the flood to be under way", func() bool {
		s = stats{}
		getJSON(t, "http://"+proc.Addr+"/stats", &s)
		return s.Received > 20000
	})
	if err := proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(15 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, proc.Log())
	}
	reports := proc.Lines("drain report")
	if len(reports) != 1 {
		t.Fatalf("%d drain reports\n%s", len(reports), proc.Log())
	}
	r := reports[0]
	if r["accepted"] != r["processed"] || r["lost"] != float64(0) || r["accepted"].(float64) < float64(s.Submitted) {
		t.Errorf("drain report %v; want accepted == processed >= %d, lost 0", r, s.Submitted)
	}
	if len(proc.Lines("stopped")) != 1 {
		t.Errorf("no 'stopped' line\n%s", proc.Log())
	}
}

// TestAPISilentClientCutOff: a client that connects to the API and sends
// nothing is disconnected by the server's header timeout.
func TestAPISilentClientCutOff(t *testing.T) {
	t.Parallel()
	p := startProcessor(t, "--urls", "ws://127.0.0.1:1/ws/logs")
	c, err := net.Dial("tcp", strings.TrimPrefix(p.api, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err == nil {
		t.Fatal("server sent data to a silent client")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server kept a silent connection open for 30s")
	}
}

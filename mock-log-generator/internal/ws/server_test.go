package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// start serves a Server on a loopback port; the cleanup closes it and
// checks that every connection goroutine finished.
func start(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	s := NewServer(cfg, discard)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/logs"
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		body := ""
		if resp != nil {
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
		}
		t.Fatalf("dial %s: %v %s", url, err, body)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c
}

func readJSON(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	mt, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if mt != websocket.TextMessage {
		t.Fatalf("message type %d, want text", mt)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("frame %q is not a JSON object: %v", data, err)
	}
	return m
}

func readEntry(t *testing.T, c *websocket.Conn) models.LogEntry {
	t.Helper()
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var e models.LogEntry
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("frame %q: %v", data, err)
	}
	return e
}

func TestHandshakeThenLogs(t *testing.T) {
	_, url := start(t, Config{Interval: time.Millisecond})
	c := dial(t, url+"?count=50")
	hs := readJSON(t, c)
	if _, ok := hs["level"]; ok {
		t.Errorf("handshake %v has a level", hs)
	}
	if hs["status"] != "connected" || hs["interval_ms"] != float64(1) || hs["count"] != float64(50) {
		t.Errorf("handshake = %v", hs)
	}
	now := time.Now()
	for range 50 {
		e := readEntry(t, c)
		if models.LevelIndex(e.Level) < 0 || e.Message == "" || e.Service == "" || e.Component == "" {
			t.Errorf("entry %+v lacks a field", e)
		}
		if d := e.Time().Sub(now); d < -time.Minute || d > time.Minute {
			t.Errorf("timestamp %v is not now", e.Time())
		}
		if !isHex(e.TraceID, 32) || !isHex(e.SpanID, 16) || !isHex(e.ParentID, 16) {
			t.Errorf("ids %q %q %q are not 32/16/16 hex digits", e.TraceID, e.SpanID, e.ParentID)
		}
	}
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

// TestCountThenQuiet: after count messages the connection stays open and
// sends no more log frames (pings are control frames, not seen here).
func TestCountThenQuiet(t *testing.T) {
	_, url := start(t, Config{})
	c := dial(t, url+"?count=3&interval_ms=1")
	readJSON(t, c)
	for range 3 {
		readEntry(t, c)
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, data, err := c.ReadMessage(); err == nil {
		t.Fatalf("got frame %q after count was reached", data)
	} else if ne, ok := err.(interface{ Timeout() bool }); !ok || !ne.Timeout() {
		t.Fatalf("connection ended after count: %v", err)
	}
}

func TestFlood(t *testing.T) {
	_, url := start(t, Config{Interval: time.Hour}) // flood ignores the interval
	c := dial(t, url+"?flood&count=5000")
	hs := readJSON(t, c)
	if hs["flood"] != true {
		t.Errorf("handshake = %v", hs)
	}
	for range 5000 {
		readEntry(t, c)
	}
}

func TestOverrides(t *testing.T) {
	_, url := start(t, Config{})
	tests := []struct {
		query string
		check func(models.LogEntry) bool
	}{
		{"service=billing%20%22eu%22", func(e models.LogEntry) bool { return e.Service == `billing "eu"` }},
		{"level=warn", func(e models.LogEntry) bool { return e.Level == models.LevelWarn }},
		{"level_weights=INFO:0,WARN:0,ERROR:5", func(e models.LogEntry) bool { return e.Level == models.LevelError }},
		{"level_weights=info:1", func(e models.LogEntry) bool { return e.Level == models.LevelInfo }},
		{"debug=true", func(e models.LogEntry) bool { return true }},
		{"message_bytes=70000", func(e models.LogEntry) bool { return len(e.Message) == 70000 }},
		{"services=3", func(e models.LogEntry) bool {
			return e.Service == "svc-0000000" || e.Service == "svc-0000001" || e.Service == "svc-0000002"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			c := dial(t, url+"?flood&count=200&"+tc.query)
			readJSON(t, c)
			for range 200 {
				if e := readEntry(t, c); !tc.check(e) {
					t.Fatalf("entry %+v does not honour %s", e, tc.query)
				}
			}
		})
	}
}

// TestRate: a paced connection sends its count at the asked rate (how
// evenly is not asserted: that is timing) and reports the rate.
func TestRate(t *testing.T) {
	_, url := start(t, Config{})
	c := dial(t, url+"?rate=20000&count=2000")
	if hs := readJSON(t, c); hs["rate"] != float64(20000) {
		t.Errorf("handshake = %v", hs)
	}
	for range 2000 {
		readEntry(t, c)
	}
}

func TestDefaultLevelMix(t *testing.T) {
	_, url := start(t, Config{})
	c := dial(t, url+"?flood&count=5000")
	readJSON(t, c)
	var n [3]int
	for range 5000 {
		n[models.LevelIndex(readEntry(t, c).Level)]++
	}
	// 70/20/10 of 5000, with generous room for chance.
	if n[0] < 3200 || n[0] > 3800 || n[1] < 800 || n[1] > 1200 || n[2] < 350 || n[2] > 650 {
		t.Errorf("level counts INFO/WARN/ERROR = %v, want about 3500/1000/500", n)
	}
}

func TestRandomIntervalPerConnection(t *testing.T) {
	_, url := start(t, Config{}) // Interval 0: random per connection
	c := dial(t, url+"?count=0")
	ms := readJSON(t, c)["interval_ms"].(float64)
	if ms < randomIntervalMin || ms > randomIntervalMax {
		t.Errorf("random interval %v ms outside %d-%d", ms, randomIntervalMin, randomIntervalMax)
	}
}

func TestBadQueries(t *testing.T) {
	_, url := start(t, Config{})
	httpURL := "http" + strings.TrimPrefix(url, "ws")
	tests := []struct{ query, reason string }{
		{"interval_ms=abc", `invalid interval_ms="abc": not an integer`},
		{"interval_ms=-5", `invalid interval_ms="-5": want 0 to 3600000`},
		{"interval_ms=3600001", `want 0 to 3600000`},
		{"interval_ms=1&interval_ms=2", `given 2 times`},
		{"count=x", `invalid count="x": not an integer`},
		{"count=-1", `invalid count="-1"`},
		{"level=DEBUG", `invalid level="DEBUG": "DEBUG" is not INFO, WARN or ERROR`},
		{"level_weights=INFO", `is not LEVEL:WEIGHT`},
		{"level_weights=INFO:x", `weight of INFO: not an integer`},
		{"level_weights=TRACE:5", `"TRACE" is not INFO, WARN or ERROR`},
		{"level_weights=INFO:0,WARN:0", `weights add up to zero`},
		{"level_weights=INFO:1,INFO:2", `level INFO given twice`},
		{"level=INFO&level_weights=INFO:1", `not both`},
		{"service=", `invalid service=""`},
		{"service=" + strings.Repeat("s", 129), `want 1 to 128 characters`},
		{"flood=maybe", `invalid flood="maybe": not a boolean`},
		{"debug=2", `invalid debug="2": not a boolean`},
		{"intervl_ms=5", `unknown query parameter "intervl_ms"`},
		{"rate=0", `invalid rate="0": want 1 to 10000000`},
		{"pad=-1", `invalid pad="-1": want 0 to 16777216`},
		{"message_bytes=0", `invalid message_bytes="0": want 1 to 1048576`},
		{"services=0", `invalid services="0"`},
		{"services=2&service=a", `give service or services, not both`},
		{"rate=fast", `invalid rate="fast": not an integer`},
		{"rate=100&flood", `give one of interval_ms, rate and flood`},
		{"rate=100&interval_ms=5", `give one of interval_ms, rate and flood`},
		{"malformed_pct=101", `invalid malformed_pct="101": want 0 to 100`},
		{"malformed_pct=ten", `invalid malformed_pct="ten": not an integer`},
		{"drop_after=-3", `invalid drop_after="-3"`},
		{"seed=-1", `invalid seed="-1": not an unsigned integer`},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			// The request is rejected before any upgrade, so plain HTTP
			// shows the answer.
			resp, err := http.Get(httpURL + "?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d, want 400", resp.StatusCode)
			}
			if lines := strings.Count(strings.TrimSpace(string(body)), "\n"); lines != 0 {
				t.Errorf("body %q is not one line", body)
			}
			if !strings.Contains(string(body), tc.reason) {
				t.Errorf("body %q, want it to contain %q", body, tc.reason)
			}
			// And a WebSocket client sees the same refusal.
			_, wresp, err := websocket.DefaultDialer.Dial(url+"?"+tc.query, nil)
			if err == nil || wresp == nil || wresp.StatusCode != http.StatusBadRequest {
				t.Errorf("websocket dial: err %v, want a 400 refusal", err)
			}
		})
	}
}

func TestMaxConns(t *testing.T) {
	_, url := start(t, Config{MaxConns: 2})
	dial(t, url+"?count=0")
	dial(t, url+"?count=0")
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third connection: err %v, want 503", err)
	}
}

func TestAllowedOrigins(t *testing.T) {
	_, url := start(t, Config{AllowedOrigins: []string{"example.com"}})
	for origin, ok := range map[string]bool{"": true, "https://example.com": true, "http://evil.test": false} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, _, err := websocket.DefaultDialer.Dial(url+"?count=0", h)
		if (err == nil) != ok {
			t.Errorf("origin %q: err %v, want allowed=%v", origin, err, ok)
		}
		if c != nil {
			c.Close()
		}
	}
}

// TestCloseSendsCloseFrames: on Close every client gets a normal close
// frame, and Close returns once their goroutines are done.
func TestCloseSendsCloseFrames(t *testing.T) {
	s, url := start(t, Config{Interval: 5 * time.Millisecond})
	clients := []*websocket.Conn{dial(t, url), dial(t, url+"?flood"), dial(t, url+"?count=0")}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	codes := make(chan int, len(clients))
	var readers sync.WaitGroup
	defer readers.Wait()
	for _, c := range clients {
		readJSON(t, c)
		c.SetCloseHandler(func(code int, _ string) error {
			codes <- code
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
		})
		// Read as a real client would, so the close frame is seen and
		// answered; the reader ends when the server drops the connection.
		readers.Go(func() {
			for {
				if _, _, err := c.NextReader(); err != nil {
					return
				}
			}
		})
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range clients {
		select {
		case code := <-codes:
			if code != websocket.CloseNormalClosure {
				t.Errorf("close code %d, want %d", code, websocket.CloseNormalClosure)
			}
		case <-ctx.Done():
			t.Fatal("a client got no close frame")
		}
	}
	// After Close new clients are refused.
	if _, resp, err := websocket.DefaultDialer.Dial(url, nil); err == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Close: %v, want 503", err)
	}
}

func BenchmarkAppendLog(b *testing.B) {
	w := newLogWriter(params{weights: defaultWeights}, newRand(params{}))
	buf := make([]byte, 0, 512)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		buf = w.append(buf[:0], now)
	}
	b.SetBytes(int64(len(buf)))
}

// TestPingsDuringFlood: the client's pings are answered while frames go out
// in bulk, and no frame is corrupted by a pong written in between.
func TestPingsDuringFlood(t *testing.T) {
	_, url := start(t, Config{})
	c := dial(t, url+"?flood&count=20000")
	pongs := make(chan struct{}, 100)
	c.SetPongHandler(func(string) error {
		select {
		case pongs <- struct{}{}:
		default:
		}
		return nil
	})
	readJSON(t, c)
	for i := range 20000 {
		if i%500 == 0 {
			if err := c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		readEntry(t, c)
	}
	// Pongs are read along with the frames; at least one must have come.
	if len(pongs) == 0 {
		_ = c.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for len(pongs) == 0 {
			if _, _, err := c.ReadMessage(); err != nil {
				t.Fatalf("no pong: %v", err)
			}
		}
	}
}

// TestCompressionNeverNegotiated: a client offering permessage-deflate is
// not granted it, since bursts are written as raw uncompressed frames, and
// it reads them as such.
func TestCompressionNeverNegotiated(t *testing.T) {
	_, url := start(t, Config{})
	d := websocket.Dialer{EnableCompression: true}
	c, resp, err := d.Dial(url+"?flood&count=500", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("the server negotiated %q", ext)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	readJSON(t, c)
	for range 500 {
		readEntry(t, c)
	}
}

func TestAppendFrame(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		b := appendFrame(nil, websocket.TextMessage, make([]byte, n))
		hdr := map[bool]int{true: 2}[n < 126] + map[bool]int{true: 4}[n >= 126 && n <= 65535] + map[bool]int{true: 10}[n > 65535]
		if len(b) != hdr+n || b[0] != 0x81 {
			t.Errorf("n=%d: frame of %d bytes, first byte %#x; want %d, 0x81", n, len(b), b[0], hdr+n)
		}
	}
}

// BenchmarkFlood measures the generator's flood to one read-and-discard
// client over loopback (both in this process).
func BenchmarkFlood(b *testing.B) {
	s := NewServer(Config{}, discard)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	defer s.Close(context.Background())
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/ws/logs?flood", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ReportAllocs()
	for b.Loop() {
		_, r, err := c.NextReader()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFrameInPlace(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 300, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'x'}, n)
		b := append([]byte("prefix"), 0, 0, 0, 0)
		b = append(b, payload...)
		got := frameInPlace(b, len("prefix"), websocket.TextMessage)
		want := append([]byte("prefix"), appendFrame(nil, websocket.TextMessage, payload)...)
		if !bytes.Equal(got, want) {
			t.Errorf("n=%d: frame differs from appendFrame's", n)
		}
	}
}

// TestPad: pad adds an unknown field of that many bytes between message and
// service, keeping the frame valid JSON.
func TestPad(t *testing.T) {
	w := newLogWriter(params{weights: defaultWeights, pad: 100000}, newRand(params{}))
	buf := w.append(nil, time.Now())
	var m map[string]any
	if err := json.Unmarshal(buf, &m); err != nil {
		t.Fatal(err)
	}
	if p, _ := m["pad"].(string); len(p) != 100000 || m["service"] == nil {
		t.Errorf("pad of %d bytes, service %v", len(p), m["service"])
	}
}

// TestOriginRefusedWithReason: a refused origin gets 403 with a reason,
// like every other refusal.
func TestOriginRefusedWithReason(t *testing.T) {
	_, url := start(t, Config{AllowedOrigins: []string{"example.com"}})
	h := http.Header{"Origin": {"http://evil.test"}}
	_, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("err %v, resp %v; want 403", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `origin "http://evil.test" is not allowed (see --allowed-origins)`) {
		t.Errorf("body %q", body)
	}
}

// TestPlainHTTPExplained: a GET without the upgrade is told it reached a
// WebSocket endpoint.
func TestPlainHTTPExplained(t *testing.T) {
	_, url := start(t, Config{})
	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(string(body), "is a WebSocket endpoint") {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
}

// TestDebugLogsThePayload: ?debug logs each frame's JSON, not the
// WebSocket header bytes in front of it.
func TestDebugLogsThePayload(t *testing.T) {
	var logs syncBuf
	s := NewServer(Config{}, slog.New(slog.NewJSONHandler(&logs, nil)))
	ts := httptest.NewServer(s.Handler())
	defer func() {
		ts.Close()
		_ = s.Close(context.Background())
	}()
	c := dial(t, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws/logs?debug&flood&count=3")
	readJSON(t, c)
	for range 3 {
		readEntry(t, c)
	}
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(logs.String(), `"msg":"sent"`) < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	n := 0
	for line := range strings.SplitSeq(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "sent" {
			continue
		}
		n++
		frame, _ := m["frame"].(string)
		if !strings.HasPrefix(frame, "{") || !json.Valid([]byte(frame)) {
			t.Errorf("debug frame %q is not the JSON payload", frame)
		}
	}
	if n != 4 {
		t.Errorf("%d debug lines, want the handshake and 3 messages", n)
	}
}

// TestHandshakeSaysThePace: with rate or flood the handshake carries no
// interval.
func TestHandshakeSaysThePace(t *testing.T) {
	_, url := start(t, Config{Interval: 250 * time.Millisecond})
	for q, want := range map[string]string{
		"rate=100&count=0": `{"status":"connected","rate":100}`,
		"flood&count=0":    `{"status":"connected","flood":true}`,
		"count=0":          `{"status":"connected","interval_ms":250}`,
	} {
		c := dial(t, url+"?"+q)
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s: handshake %s, want %s", q, b, want)
		}
		c.Close()
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTokenRequired(t *testing.T) {
	_, url := start(t, Config{Token: "gen-secret"})
	for _, tc := range []struct {
		name   string
		suffix string
		header http.Header
		code   int
	}{
		{"no token", "", nil, 401},
		{"wrong token", "", http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"header", "", http.Header{"Authorization": {"Bearer gen-secret"}}, 101},
		{"query", "?token=gen-secret&count=1", nil, 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := websocket.DefaultDialer.Dial(url+tc.suffix, tc.header)
			if resp == nil || resp.StatusCode != tc.code {
				t.Fatalf("status %v (err %v), want %d", resp, err, tc.code)
			}
			if c != nil {
				c.Close()
			}
		})
	}
}

// TestSubscribeMessage: a text message from the client applies settings
// from then on, acknowledged by a "subscribed" frame; a bad one is
// ignored and the stream goes on.
func TestSubscribeMessage(t *testing.T) {
	_, url := start(t, Config{})
	c := dial(t, url+"?count=0")
	if hs := readJSON(t, c); hs["status"] != "connected" {
		t.Fatalf("handshake %v", hs)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("count=not-a-number")); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"service":"sub","count":3,"interval_ms":1}`)); err != nil {
		t.Fatal(err)
	}
	if ack := readJSON(t, c); ack["status"] != "subscribed" || ack["service"] != "sub" || ack["count"] != 3.0 {
		t.Fatalf("ack %v, want subscribed with service sub and count 3", ack)
	}
	for range 3 {
		if e := readEntry(t, c); e.Service != "sub" {
			t.Fatalf("entry of service %q after subscribing to sub", e.Service)
		}
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("service=again&count=1&interval_ms=1")); err != nil {
		t.Fatal(err)
	}
	readJSON(t, c)
	if e := readEntry(t, c); e.Service != "again" {
		t.Fatalf("entry of service %q after subscribing again", e.Service)
	}
}

// TestIndexAndQueryHelp: GET / answers with the endpoint and every query
// parameter the server reads (the same text as --help).
func TestIndexAndQueryHelp(t *testing.T) {
	_, url := start(t, Config{})
	resp, err := http.Get("http" + strings.TrimSuffix(strings.TrimPrefix(url, "ws"), "/ws/logs") + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "GET /ws/logs") {
		t.Fatalf("GET /: %d %q", resp.StatusCode, body)
	}
	for _, name := range []string{"interval_ms", "flood", "rate", "count", "service", "services", "level", "level_weights",
		"message_bytes", "pad", "debug", "malformed_pct", "drop_after", "seed"} {
		if _, err := parseParams(neturl.Values{name: {"1"}}, 0); err != nil && strings.Contains(err.Error(), "unknown") {
			t.Errorf("%s is not a parameter the server reads: %v", name, err)
		}
		if !strings.Contains(string(body), "  "+name) {
			t.Errorf("GET / and --help do not describe %s", name)
		}
	}
}

package ws

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// readAll reads n frames after the handshake and returns them with their
// message types.
func readFrames(t *testing.T, c *websocket.Conn, n int) (frames []string, types []int) {
	t.Helper()
	readJSON(t, c) // handshake
	for range n {
		mt, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read after %d frames: %v", len(frames), err)
		}
		frames = append(frames, string(data))
		types = append(types, mt)
	}
	return frames, types
}

// TestMalformedDeterministic: the same seed gives the same stream, about
// the asked share of it malformed, and every kind of fault appears.
func TestMalformedDeterministic(t *testing.T) {
	_, url := start(t, Config{})
	q := "?flood&count=2000&malformed_pct=30&seed=42&service=svc"
	a, ta := readFrames(t, dial(t, url+q), 2000)
	b, _ := readFrames(t, dial(t, url+q), 2000)
	bad := 0
	for i := range a {
		// Timestamps may differ between the two runs; nothing else does.
		if stripTimestamps(a[i]) != stripTimestamps(b[i]) {
			t.Fatalf("frame %d differs with the same seed:\n%s\n%s", i, a[i], b[i])
		}
		var m map[string]any
		if ta[i] == websocket.BinaryMessage || json.Unmarshal([]byte(a[i]), &m) != nil || !validShape(m) {
			bad++
		}
	}
	if bad < 450 || bad > 750 {
		t.Errorf("%d of 2000 frames malformed, want about 600", bad)
	}
}

// stripTimestamps removes the digits of millisecond timestamps.
func stripTimestamps(s string) string {
	var b strings.Builder
	digits := 0
	for _, r := range s {
		if r >= '0' && r <= '9' {
			digits++
			continue
		}
		if digits > 0 && digits < 10 {
			b.WriteString(strings.Repeat("#", digits)) // short numbers are content
		}
		digits = 0
		b.WriteRune(r)
	}
	return b.String()
}

// validShape reports whether m looks like a good log message.
func validShape(m map[string]any) bool {
	ts, ok := m["timestamp"].(float64)
	if !ok || ts != float64(int64(ts)) || time.Since(time.UnixMilli(int64(ts))) > time.Hour {
		return false
	}
	lvl, _ := m["level"].(string)
	svc, _ := m["service"].(string)
	msg, _ := m["message"].(string)
	if _, nested := m["extra"]; nested {
		return false
	}
	return (lvl == "INFO" || lvl == "WARN" || lvl == "ERROR") && svc != "" && len(svc) <= 256 && msg != "" && !strings.Contains(msg, "\uFFFD")
}

func TestEveryFaultKind(t *testing.T) {
	w := newLogWriter(params{weights: defaultWeights}, newRand(params{hasSeed: true, seed: 1}))
	now := time.Now()
	for f := range numFaults {
		frame, binary := w.appendFault(nil, now, f)
		var m map[string]any
		err := json.Unmarshal(frame, &m)
		good := err == nil && validShape(m) && !binary
		if good && f != faultDuplicateKey { // encoding/json keeps the last duplicate
			t.Errorf("fault %v produced a valid message: %s", f, frame)
		}
	}
}

// TestDropAfter: after N frames the TCP connection ends without a close frame.
func TestDropAfter(t *testing.T) {
	_, url := start(t, Config{})
	c := dial(t, url+"?flood&drop_after=25")
	readFrames(t, c, 25)
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if err == nil || (errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure) {
		t.Fatalf("after drop_after frames: %v, want an abrupt end (no close frame)", err)
	}
}

// TestSlowClientDoesNotStallOthers (fault test 8): one client never reads;
// it is cut off after the write timeout while the others get every frame.
func TestSlowClientDoesNotStallOthers(t *testing.T) {
	s := NewServer(Config{WriteTimeout: 300 * time.Millisecond}, discard)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/ws/logs"

	// The stuck client: a raw TCP connection that upgrades and never reads,
	// with a tiny receive buffer so that the server's writes block soon.
	stuck := dialStuck(t, ts.Listener.Addr().String())
	defer stuck.Close()

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c, _, err := websocket.DefaultDialer.Dial(url+"?interval_ms=2&count=300", nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			for i := range 301 {
				if _, _, err := c.ReadMessage(); err != nil {
					t.Errorf("reader stalled after %d frames: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()

	// The stuck client is dropped once a write to it times out.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := s.conns
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open; the stuck client was not cut off", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// dialStuck opens a flood connection by hand and never reads from it.
func dialStuck(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	req := "GET /ws/logs?flood HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	return c
}

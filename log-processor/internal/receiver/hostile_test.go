package receiver

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e/hostile"
)

// TestEndlessHandshake: a source answering the upgrade with endless headers
// fails the dial after MaxHandshakeBytes, each time, instead of growing
// memory without bound.
func TestEndlessHandshake(t *testing.T) {
	for name, serve := range map[string]func(*hostile.Server, net.Conn){
		"many lines": hostile.EndlessHeaderLines,
		"one line":   hostile.EndlessHeaderLine,
	} {
		t.Run(name, func(t *testing.T) {
			src := hostile.Raw(t, serve)
			r := New(Config{URL: src.URL, MaxBackoff: 50 * time.Millisecond}, sinkFor(&pool{}), discard)
			run(t, r)
			poll.Until(t, 15*time.Second, "two refused dials", func() bool {
				return src.Conns.Load() >= 2 && strings.Contains(r.Stats()[0].LastError, "upgrade response too large")
			})
			// The source wrote until the processor hung up: the handshake
			// bound plus what the sockets buffer, never the source's
			// hundreds of MiB.
			if w := src.Written.Load() / int64(src.Conns.Load()); w > 32<<20 {
				t.Errorf("source wrote %d bytes per connection before being cut off", w)
			}
		})
	}
}

// TestStopCancelsDial: a source that accepts and never answers the upgrade
// does not hold shutdown for ConnectTimeout.
func TestStopCancelsDial(t *testing.T) {
	src := hostile.Raw(t, hostile.Silent)
	r := New(Config{URL: src.URL, ConnectTimeout: time.Hour}, sinkFor(&pool{}), discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	poll.Until(t, 15*time.Second, "the dial to reach the source", func() bool { return src.Conns.Load() == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still dialing 10 s after cancel (ConnectTimeout is an hour)")
	}
}

// TestCredentialsInURL: user information is sent as basic authentication,
// and neither it nor a token in the query string appears in the source's
// name, stats or entries.
func TestCredentialsInURL(t *testing.T) {
	type auth struct{ user, pass, token string }
	got := make(chan auth, 4)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		got <- auth{u, p, r.URL.Query().Get("token")}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, logFrame(1))
		hold(c)
	}))
	defer srv.Close()
	defer srv.CloseClientConnections()
	raw := "ws://alice:s3cr%20t@" + strings.TrimPrefix(srv.URL, "http://") + "/ws/logs?token=tok-123&interval_ms=5"
	p := &pool{}
	r := New(Config{URL: raw}, sinkFor(p), discard)
	stop := run(t, r)
	a := <-got
	if a != (auth{"alice", "s3cr t", "tok-123"}) {
		t.Errorf("source saw %+v", a)
	}
	poll.Until(t, 15*time.Second, "an entry", func() bool { return r.Stats()[0].OK == 1 })
	stop()
	st := r.Stats()[0]
	p.mu.Lock()
	source := p.entries[0].Source
	p.mu.Unlock()
	for what, v := range map[string]string{"stats url": st.URL, "entry source": source, "last error": st.LastError} {
		if strings.Contains(v, "alice") || strings.Contains(v, "s3cr") || strings.Contains(v, "tok-123") {
			t.Errorf("%s leaks a credential: %q", what, v)
		}
	}
	if !strings.Contains(st.URL, "token=REDACTED") || !strings.Contains(st.URL, "interval_ms=5") {
		t.Errorf("stats url = %q, want the token redacted and the rest kept", st.URL)
	}
}

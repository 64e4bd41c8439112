package receiver

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// pool accepts every entry and remembers it.
type pool struct {
	mu      sync.Mutex
	entries []models.LogEntry
}

func (p *pool) SubmitWithTimeout(e models.LogEntry, _ time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entries = append(p.entries, e)
	return true
}

func (p *pool) SubmitAll(es []models.LogEntry, _ time.Duration, _ *queue.Ack) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.entries = append(p.entries, es...)
	return nil
}

func (p *pool) Stats() queue.Stats          { return queue.Stats{} }
func (p *pool) Capacity() (int, int64)      { return 0, 0 }
func (p *pool) Close(context.Context) error { return nil }

// sinkFor is a sink submitting into q.
func sinkFor(q queue.Queue) *intake.Sink {
	s := intake.NewSink(intake.SinkConfig{})
	s.Connect(q, nil)
	return s
}

// source is a WebSocket server whose behaviour per connection is given by
// serve; it counts connections and closes them all on cleanup.
type source struct {
	srv   *httptest.Server
	conns atomic.Int32
	url   string
}

func newSource(t *testing.T, serve func(n int, c *websocket.Conn)) *source {
	t.Helper()
	s := &source{}
	// Handlers start serving goroutines under mu until closed, so that none
	// starts once the cleanup waits for them (httptest's Close does not wait
	// for handlers whose connection was hijacked).
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool
	)
	up := websocket.Upgrader{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		n := int(s.conns.Add(1))
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return
		}
		wg.Go(func() {
			defer c.Close()
			serve(n, c)
		})
	}))
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		mu.Unlock()
		s.srv.CloseClientConnections()
		s.srv.Close()
		wg.Wait()
	})
	s.url = "ws" + strings.TrimPrefix(s.srv.URL, "http")
	return s
}

// run starts r.Run and returns a stop function that cancels it and checks
// that it returned nil.
func run(t *testing.T, r *Receiver) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func logFrame(i int) []byte {
	return []byte(`{"timestamp":` + strconv.FormatInt(time.Now().UnixMilli(), 10) +
		`,"level":"INFO","message":"m` + strconv.Itoa(i) + `","service":"s"}`)
}

// hold keeps a connection open, reading (and so answering pings) until it
// is closed.
func hold(c *websocket.Conn) {
	for {
		if _, _, err := c.NextReader(); err != nil {
			return
		}
	}
}

// TestCountsAddUp sends one frame of each outcome and checks every counter.
func TestCountsAddUp(t *testing.T) {
	frames := [][]byte{
		[]byte(`{"status":"connected"}`), logFrame(1), logFrame(2),
		[]byte(`{"level":"INFO"`), []byte(`[1]`), []byte(`{"timestamp":1,"level":"INFO","message":"m","service":"s"}`),
	}
	src := newSource(t, func(_ int, c *websocket.Conn) {
		for _, f := range frames {
			_ = c.WriteMessage(websocket.TextMessage, f)
		}
		hold(c)
	})
	p := &pool{}
	r := New(Config{URL: src.url}, sinkFor(p), discard)
	run(t, r)
	poll.Until(t, 15*time.Second, "all frames", func() bool { return r.Stats()[0].Total == uint64(len(frames)) })
	s := r.Stats()[0]
	c := s.Counters
	if c.OK != 2 || c.Submitted != 2 || c.Ignored != 1 || c.ParseErr != 3 || c.Dropped != 0 {
		t.Errorf("counters = %+v", c)
	}
	for reason, n := range map[string]uint64{"invalid_json": 1, "not_object": 1, "timestamp_out_of_range": 1} {
		if c.ParseErrors[reason] != n {
			t.Errorf("parse_errors[%s] = %d, want %d", reason, c.ParseErrors[reason], n)
		}
	}
	if s.State != intake.StateConnected || s.ConnectedSince.IsZero() || s.LastMessageAt.IsZero() || s.Reconnects != 0 {
		t.Errorf("state = %+v", s)
	}
	if len(p.entries) != 2 || p.entries[0].Message != "m1" || p.entries[1].Message != "m2" {
		t.Errorf("entries = %+v", p.entries)
	}
}

// TestExportFrame: a frame that is an OpenTelemetry export of several
// records, between two plain frames, gives each of its records as an
// entry (or a counted refusal), in order.
func TestExportFrame(t *testing.T) {
	ns := strconv.FormatInt(time.Now().UnixNano(), 10)
	export := `{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},` +
		`"scopeLogs":[{"logRecords":[{"timeUnixNano":"` + ns + `","severityNumber":9,"body":{"stringValue":"a"}},` +
		`{"timeUnixNano":"1","severityNumber":9,"body":{"stringValue":"too old"}},` +
		`{"timeUnixNano":"` + ns + `","severityText":"WARN","body":{"stringValue":"b"}}]}]}]}`
	src := newSource(t, func(_ int, c *websocket.Conn) {
		for _, f := range [][]byte{logFrame(1), []byte(export), logFrame(2)} {
			_ = c.WriteMessage(websocket.TextMessage, f)
		}
		hold(c)
	})
	p := &pool{}
	r := New(Config{URL: src.url}, sinkFor(p), discard)
	run(t, r)
	poll.Until(t, 15*time.Second, "all records", func() bool { return r.Stats()[0].Submitted+r.Stats()[0].ParseErr == 5 })
	c := r.Stats()[0].Counters
	if c.OK != 4 || c.ParseErrors["timestamp_out_of_range"] != 1 {
		t.Errorf("counters = %+v", c)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var got []string
	for _, e := range p.entries {
		got = append(got, e.Service+"/"+e.Level+"/"+e.Message)
	}
	if want := "s/INFO/m1 svc/INFO/a svc/WARN/b s/INFO/m2"; strings.Join(got, " ") != want {
		t.Errorf("entries %q, want %q", strings.Join(got, " "), want)
	}
}

// TestOversizedAndBinary (fault test 5): frames over the read limit and
// binary frames are counted and skipped on a live connection; a frame past
// the hard limit ends the connection, which is re-established.
func TestOversizedAndBinary(t *testing.T) {
	const limit = 1024
	src := newSource(t, func(n int, c *websocket.Conn) {
		if n == 1 {
			_ = c.WriteMessage(websocket.TextMessage, logFrame(1))
			_ = c.WriteMessage(websocket.BinaryMessage, logFrame(2))
			_ = c.WriteMessage(websocket.TextMessage, []byte(`{"message":"`+strings.Repeat("x", 4*limit)+`"}`))
			_ = c.WriteMessage(websocket.TextMessage, logFrame(3))
			// Past the hard limit: the receiver drops the connection.
			_ = c.WriteMessage(websocket.TextMessage, make([]byte, hardLimitFactor*limit+1))
		} else {
			_ = c.WriteMessage(websocket.TextMessage, logFrame(4))
		}
		hold(c)
	})
	p := &pool{}
	r := New(Config{URL: src.url, MaxMessageSize: limit}, sinkFor(p), discard)
	run(t, r)
	poll.Until(t, 15*time.Second, "the second connection's frame", func() bool { return r.Stats()[0].OK == 3 })
	s := r.Stats()[0]
	if s.ParseErrors["binary_frame"] != 1 || s.ParseErrors["too_large"] != 2 || s.Total != 6 {
		t.Errorf("counters = %+v, want 1 binary, 2 too large, 6 in all", s.Counters)
	}
	if s.Reconnects != 1 || !strings.Contains(s.LastError, "read limit") {
		t.Errorf("reconnects = %d, last error %q; want 1 and a read-limit error", s.Reconnects, s.LastError)
	}
}

// TestSilentSourceReplaced (fault test 3): a source that accepts the
// upgrade and then neither sends nor answers pings is detected once the
// pong wait passes, and a new connection replaces it.
func TestSilentSourceReplaced(t *testing.T) {
	release := make(chan struct{})
	src := newSource(t, func(n int, c *websocket.Conn) {
		if n == 1 {
			<-release // silent: no reads (so no pongs), no writes
			return
		}
		_ = c.WriteMessage(websocket.TextMessage, logFrame(1))
		hold(c)
	})
	defer close(release)
	r := New(Config{URL: src.url, PingInterval: 50 * time.Millisecond, PongWait: 300 * time.Millisecond}, sinkFor(&pool{}), discard)
	run(t, r)
	poll.Until(t, 15*time.Second, "a frame from the replacement connection", func() bool { return r.Stats()[0].OK == 1 })
	s := r.Stats()[0]
	if s.Reconnects != 1 || !strings.Contains(s.LastError, "timeout") {
		t.Errorf("reconnects = %d, last error %q; want 1 and a timeout", s.Reconnects, s.LastError)
	}
}

// TestIdleTimeout: a source that answers pings but sends no data is
// replaced when IdleTimeout is set.
func TestIdleTimeout(t *testing.T) {
	src := newSource(t, func(n int, c *websocket.Conn) {
		_ = c.WriteMessage(websocket.TextMessage, logFrame(n))
		hold(c) // answers pings, sends nothing more
	})
	r := New(Config{URL: src.url, PingInterval: 20 * time.Millisecond, IdleTimeout: 100 * time.Millisecond}, sinkFor(&pool{}), discard)
	run(t, r)
	poll.Until(t, 15*time.Second, "a second connection", func() bool { return r.Stats()[0].OK == 2 })
	if s := r.Stats()[0]; !strings.Contains(s.LastError, "no data for 100ms") {
		t.Errorf("last error %q, want the idle timeout", s.LastError)
	}
}

// TestStopSendsNormalClose: when ctx ends the source gets a normal close
// frame and Run returns nil.
func TestStopSendsNormalClose(t *testing.T) {
	got := make(chan error, 1)
	src := newSource(t, func(_ int, c *websocket.Conn) {
		_ = c.WriteMessage(websocket.TextMessage, logFrame(1))
		for {
			if _, _, err := c.NextReader(); err != nil {
				got <- err
				return
			}
		}
	})
	r := New(Config{URL: src.url}, sinkFor(&pool{}), discard)
	stop := run(t, r)
	poll.Until(t, 15*time.Second, "the first frame", func() bool { return r.Stats()[0].OK == 1 })
	stop()
	err := <-got
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("source saw %v, want a normal close", err)
	}
	if s := r.Stats()[0]; s.State != intake.StateStopped {
		t.Errorf("state after stop = %s", s.State)
	}
}

// TestRefusedUpgradeReason: a source answering the upgrade with an HTTP
// error shows its status and body in last_error, and is retried.
func TestRefusedUpgradeReason(t *testing.T) {
	var tries atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		tries.Add(1)
		http.Error(w, "invalid interval_ms=\"x\": not an integer", http.StatusBadRequest)
	}))
	defer srv.Close()
	r := New(Config{URL: "ws" + strings.TrimPrefix(srv.URL, "http")}, sinkFor(&pool{}), discard)
	run(t, r)
	poll.Until(t, 15*time.Second, "a retry", func() bool { return tries.Load() >= 2 })
	s := r.Stats()[0]
	if !strings.Contains(s.LastError, "400 Bad Request: invalid interval_ms") || s.State == intake.StateConnected {
		t.Errorf("stats = %+v", s)
	}
}

func TestReadFrame(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 513, 1024, 1025, 5000} {
		data := strings.Repeat("a", n)
		got, tooLarge, err := ReadFrame(strings.NewReader(data), nil, 1024)
		if err != nil {
			t.Fatal(err)
		}
		if wantLarge := n > 1024; tooLarge != wantLarge || (!tooLarge && string(got) != data) {
			t.Errorf("n=%d: tooLarge=%v len=%d", n, tooLarge, len(got))
		}
		if cap(got) > 2*1025 {
			t.Errorf("n=%d: buffer grew to %d", n, cap(got))
		}
	}
}

// TestLeaseKey: the key a cluster leases names the source and digests its
// definition, so that two processors given one name for two different
// sources lease (and read) both, rather than one leaving the other unread.
func TestLeaseKey(t *testing.T) {
	sink := sinkFor(&pool{})
	key := func(c Config) string { return New(c, sink, discard).LeaseKey() }
	base := Config{Name: "checkout", URL: "ws://a:1/ws", Header: http.Header{"Authorization": {"Bearer x"}}, OpenMessage: "sub"}
	same := base
	same.Header = http.Header{"Authorization": {"Bearer x"}}
	if key(base) != key(same) || !strings.HasPrefix(key(base), "checkout@") {
		t.Fatalf("equal definitions: %q and %q", key(base), key(same))
	}
	for name, edit := range map[string]func(c *Config){
		"url":          func(c *Config) { c.URL = "ws://b:1/ws" },
		"header":       func(c *Config) { c.Header = http.Header{"Authorization": {"Bearer y"}} },
		"open message": func(c *Config) { c.OpenMessage = "other" },
	} {
		c := base
		edit(&c)
		if key(c) == key(base) {
			t.Errorf("another %s, same lease key %q", name, key(c))
		}
	}
	if got := key(Config{URL: "ws://a:1/ws?token=s3cret"}); strings.Contains(got, "s3cret") || !strings.HasPrefix(got, "a:1/ws@") {
		t.Errorf("unnamed source's key %q: want host:port/path and a digest, no query", got)
	}
}

// dialCounter is a log handler counting the receiver's dial attempts.
type dialCounter struct{ n atomic.Int32 }

func (d *dialCounter) Enabled(context.Context, slog.Level) bool { return true }
func (d *dialCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "Connecting to WebSocket server at: ") {
		d.n.Add(1)
	}
	return nil
}
func (d *dialCounter) WithAttrs([]slog.Attr) slog.Handler { return d }
func (d *dialCounter) WithGroup(string) slog.Handler      { return d }

// TestRetriesOftenBeforeFirstConnect: a source that has never answered is
// retried at most two seconds apart (a processor started before its
// generator), however high --max-backoff is.
func TestRetriesOftenBeforeFirstConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + ln.Addr().String() + "/ws/logs"
	ln.Close() // refused from now on
	dials := &dialCounter{}
	r := New(Config{URL: url, MaxBackoff: time.Minute}, sinkFor(&pool{}), slog.New(dials))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	// Attempts at 0, then within 0.25, 0.5, 1, 2, 2, 2 s of each other:
	// seven take under 8 s; with the plain backoff the seventh could come
	// only after 16 s of waiting.
	start := time.Now()
	poll.Until(t, 20*time.Second, "seven dials", func() bool { return dials.n.Load() >= 7 })
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("seven dials took %v, want under 10 s", d)
	}
}

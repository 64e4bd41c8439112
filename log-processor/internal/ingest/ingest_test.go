package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push/pushtest"
)

var discard = slog.New(slog.DiscardHandler)

const secret = "s3cret-token-value"

type fixture struct {
	store *pushtest.Store
	sink  *intake.Sink
	posts *HTTP
	ws    *WS
	url   string
}

// newFixture serves the ingest endpoints on loopback in front of a real
// pool of one worker and a queue of eight, saving into a pushtest.Store.
func newFixture(t *testing.T, open bool) *fixture {
	return newFixtureWith(t, open, Config{SubmitTimeout: 20 * time.Millisecond, MaxBodyBytes: 64 << 10}, push.GateConfig{})
}

func newFixtureWith(t *testing.T, open bool, cfg Config, gate push.GateConfig) *fixture {
	return newFixtureSink(t, open, cfg, gate, intake.SinkConfig{})
}

func newFixtureSink(t *testing.T, open bool, cfg Config, gate push.GateConfig, sc intake.SinkConfig) *fixture {
	t.Helper()
	f := &fixture{store: pushtest.NewStore(open)}
	env := pushtest.EnvWith(t, f.store, 8, sc, gate, push.Token{Name: "shipper", Value: secret})
	f.sink, f.posts, f.ws = env.Sink, NewHTTP(cfg, env, discard), NewWS(cfg, env, discard)
	f.url = pushtest.Serve(t, f.posts, f.ws)
	return f
}

func line(i int, level string) string {
	return `{"timestamp":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `,"level":"` + level +
		`","message":"m` + strconv.Itoa(i) + `","service":"svc"}`
}

func lines(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(line(i, "INFO") + "\n")
	}
	return b.String()
}

func (f *fixture) post(t *testing.T, body io.Reader, header map[string]string) (int, Result, http.Header) {
	t.Helper()
	target := f.url + PathHTTP
	if q := header["X-Query"]; q != "" {
		target += "?" + q
	}
	req, err := http.NewRequest(http.MethodPost, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res Result
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatalf("answer %q: %v", b, err)
		}
	}
	return resp.StatusCode, res, resp.Header
}

func gz(t *testing.T, s string) io.Reader {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return &b
}

func TestPostAnswers(t *testing.T) {
	f := newFixture(t, true)
	cases := []struct {
		name   string
		body   io.Reader
		header map[string]string
		code   int
		want   Result
	}{
		{"ndjson", strings.NewReader(line(1, "INFO") + "\n\n" + line(2, "LOUD") + "\r\n" + line(3, "WARN")), nil, 200,
			Result{Accepted: 2, Rejected: map[string]uint64{"invalid_level": 1}}},
		{"gzip", gz(t, lines(5)), map[string]string{"Content-Encoding": "gzip"}, 200, Result{Accepted: 5}},
		{"x-gzip", gz(t, lines(2)), map[string]string{"Content-Encoding": "x-gzip"}, 200, Result{Accepted: 2}},
		{"bearer in lower case", strings.NewReader(lines(1)), map[string]string{"Authorization": "bearer " + secret}, 200, Result{Accepted: 1}},
		{"token in the query of a POST", strings.NewReader(lines(1)), map[string]string{"Authorization": "", "X-Query": "token=" + secret}, 401, Result{}},
		{"json array", strings.NewReader("[" + line(1, "INFO") + "," + line(2, "DEBUG") + "]"), nil, 200, Result{Accepted: 1, BelowMinLevel: 1}},
		{"control and no-level lines", strings.NewReader(`{"status":"hi"}` + "\n" + `{"timestamp":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `,"message":"no level","service":"s"}`),
			nil, 200, Result{Accepted: 1, Ignored: 1, DefaultLevel: 1}},
		{"not json", strings.NewReader("hello\n"), nil, 200, Result{Rejected: map[string]uint64{"invalid_json": 1}}},
		{"bad array", strings.NewReader("[1,"), nil, 400, Result{}},
		{"bad gzip", strings.NewReader("not gzip"), map[string]string{"Content-Encoding": "gzip"}, 400, Result{}},
		{"other encoding", strings.NewReader(lines(1)), map[string]string{"Content-Encoding": "br"}, 415, Result{}},
		{"too large", strings.NewReader(strings.Repeat(lines(1), 1000)), nil, 413, Result{}},
		{"more than the queue", strings.NewReader(lines(20)), nil, 413, Result{}},
		{"gzip bomb", gz(t, strings.Repeat(" ", 1<<20)), map[string]string{"Content-Encoding": "gzip"}, 413, Result{}},
		{"no token", strings.NewReader(lines(1)), map[string]string{"Authorization": ""}, 401, Result{}},
		{"wrong token", strings.NewReader(lines(1)), map[string]string{"Authorization": "Bearer nope"}, 401, Result{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, res, _ := f.post(t, tc.body, tc.header)
			if code != tc.code {
				t.Fatalf("status %d, want %d", code, tc.code)
			}
			if code == 200 && (res.Accepted != tc.want.Accepted || res.Ignored != tc.want.Ignored || res.BelowMinLevel != tc.want.BelowMinLevel ||
				res.DefaultLevel != tc.want.DefaultLevel || len(res.Rejected) != len(tc.want.Rejected)) {
				t.Fatalf("answer %+v, want %+v", res, tc.want)
			}
			for k, v := range tc.want.Rejected {
				if res.Rejected[k] != v {
					t.Fatalf("rejected %v, want %v", res.Rejected, tc.want.Rejected)
				}
			}
		})
	}
	st := f.posts.Stats()
	if len(st) != 1 || st[0].Kind != intake.KindPush || st[0].Token != "shipper" || st[0].URL != PathHTTP || st[0].Name != "push:shipper:http" {
		t.Fatalf("stats %+v, want one push source for shipper on %s", st, PathHTTP)
	}
	c := st[0].Counters
	if c.Submitted != 12 || c.ParseErr != 2 || c.BelowMinLevel != 1 || c.DefaultLevel != 1 || c.Ignored != 1 || c.Total != c.OK+c.ParseErr+c.Ignored+c.BelowMinLevel {
		t.Fatalf("counters %+v, want 12 submitted (1 at the default level), 2 parse errors, 1 below the floor, 1 ignored, adding up", c)
	}
}

// TestPostFullQueue: with storage stalled the queue fills; a request it
// cannot take whole is refused whole with 503 and counted nowhere but
// refused_requests; its retry, once storage moves, is taken: nothing lost,
// nothing doubled.
func TestPostFullQueue(t *testing.T) {
	f := newFixture(t, false)
	body := lines(5)
	accepted, code := 0, 0
	var h http.Header
	for range 40 { // the queue holds a few requests' worth: 40 is far more
		var res Result
		code, res, h = f.post(t, strings.NewReader(body), nil)
		if code != http.StatusOK {
			break
		}
		accepted += res.Accepted
	}
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || accepted == 0 {
		t.Fatalf("filling the queue: status %d (Retry-After %q) after %d accepted, want 503 with Retry-After", code, h.Get("Retry-After"), accepted)
	}
	st := f.posts.Stats()[0]
	if st.Refused != 1 || st.Submitted != uint64(accepted) || st.Total != uint64(accepted) {
		t.Fatalf("after a refusal: %+v, want 1 refused request and only the %d accepted lines counted", st, accepted)
	}
	f.store.SetOpen(true)
	if code, res, _ := f.post(t, strings.NewReader(body), nil); code != 200 || res.Accepted != 5 {
		t.Fatalf("retry: %d %+v", code, res)
	}
	poll.Until(t, 10*time.Second, "the condition", func() bool { return f.store.Len() == accepted+5 })
	if st := f.posts.Stats()[0]; st.Submitted != uint64(accepted+5) || st.Dropped != 0 || st.Refused != 1 {
		t.Fatalf("after the retry: %+v, want %d submitted, 1 refused, none dropped", st, accepted+5)
	}
}

// TestPostAckStored: with --ack stored a request is answered once its
// entries are saved; while storage stalls, the answer is a retryable 503
// after the ack timeout (the entries are counted as unconfirmed), and the
// request's retry once storage moves is answered 200 with its entries
// saved by then.
func TestPostAckStored(t *testing.T) {
	f := newFixtureSink(t, false, Config{SubmitTimeout: time.Second, MaxBodyBytes: 64 << 10}, push.GateConfig{},
		intake.SinkConfig{Ack: intake.AckStored, AckTimeout: 50 * time.Millisecond})
	code, _, h := f.post(t, strings.NewReader(lines(3)), nil)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("storage stalled: status %d (Retry-After %q), want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	if st := f.posts.Stats()[0]; st.Unconfirmed != 3 || st.Refused != 1 {
		t.Fatalf("after the unconfirmed request: %+v, want 3 unconfirmed in 1 refused request", st)
	}
	f.store.SetOpen(true)
	for i := range 5 {
		code, res, _ := f.post(t, strings.NewReader(lines(4)), nil)
		if code != 200 || res.Accepted != 4 {
			t.Fatalf("request %d with storage open: %d %+v", i, code, res)
		}
		// The first request's 3 are saved too (they were queued), before
		// or with these.
		if got, want := f.store.Len(), 3+4*(i+1); got != want {
			t.Fatalf("answered 200 with %d entries saved, want %d", got, want)
		}
	}
}

// TestWebSocketPusherIsSlowedNotDropped: with storage stalled, a WebSocket
// pusher's frames wait (the processor stops reading) instead of being
// dropped; every line arrives once storage moves.
func TestWebSocketPusherIsSlowedNotDropped(t *testing.T) {
	f := newFixture(t, false)
	url := "ws" + strings.TrimPrefix(f.url, "http") + PathWS
	if _, resp, err := websocket.DefaultDialer.Dial(url, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("dial without a token: err %v, want 401", err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(url+"?token="+secret, nil) // as a browser would
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const frames = 20
	for i := range frames {
		mt := websocket.TextMessage
		if i%2 == 1 {
			mt = websocket.BinaryMessage // some shippers send only binary frames
		}
		if err := conn.WriteMessage(mt, []byte(lines(2))); err != nil {
			t.Fatal(err)
		}
	}
	// The queue fills; the rest wait in the socket.
	poll.Until(t, 10*time.Second, "the condition", func() bool { return f.sink.QueueStats().Queued >= 8 })
	f.store.SetOpen(true)
	poll.Until(t, 10*time.Second, "the condition", func() bool { return f.store.Len() == 2*frames })
	st := f.ws.Stats()
	if len(st) != 1 || st[0].Submitted != 2*frames || st[0].Dropped != 0 || st[0].Clients != 1 {
		t.Fatalf("stats %+v, want %d submitted, none dropped, one client", st, 2*frames)
	}
	conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	poll.Until(t, 10*time.Second, "the condition", func() bool { return f.ws.Stats()[0].Clients == 0 })
	if st := f.ws.Stats()[0]; st.Submitted != 2*frames || st.Total != 2*frames {
		t.Fatalf("after the pusher left: %+v, want its counts kept", st)
	}
}

func TestIdempotencyKey(t *testing.T) {
	for _, c := range []struct {
		header, want string
		bad          bool
	}{
		{"", "", false},
		{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`, "8e03978e-40d5-43e8-bc93-6894a57f9324", false},
		{"req-1", "req-1", false},
		{`""`, "", true},
		{"two words", "", true},
		{"caf\xc3\xa9", "", true},
		{strings.Repeat("k", 255), strings.Repeat("k", 255), false},
		{strings.Repeat("k", 256), "", true},
	} {
		got, err := idempotencyKey(c.header)
		if got != c.want || (err != nil) != c.bad {
			t.Errorf("idempotencyKey(%q) = %q, %v; want %q (bad: %t)", c.header, got, err, c.want, c.bad)
		}
	}
	f := newFixture(t, true)
	if code, _, _ := f.post(t, strings.NewReader(lines(1)), map[string]string{"Idempotency-Key": "two words"}); code != http.StatusBadRequest {
		t.Errorf("a bad Idempotency-Key: status %d, want 400", code)
	}
}

// TestWebSocketAcks: a pusher that asks for acknowledgements (?ack=1) gets
// {"acked":N} once the Nth frame's entries are stored; while storage
// stalls past the ack timeout, the connection is closed with 1013 (try
// again later), and what was acknowledged before stays stored.
func TestWebSocketAcks(t *testing.T) {
	f := newFixtureSink(t, true, Config{SubmitTimeout: time.Second, MaxBodyBytes: 64 << 10}, push.GateConfig{},
		intake.SinkConfig{Ack: intake.AckStored, AckTimeout: 100 * time.Millisecond})
	url := "ws" + strings.TrimPrefix(f.url, "http") + PathWS + "?ack=1"
	conn, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + secret}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 1; i <= 3; i++ {
		if err := conn.WriteMessage(websocket.TextMessage, []byte(lines(4))); err != nil {
			t.Fatal(err)
		}
		var ack struct{ Acked int }
		if err := conn.ReadJSON(&ack); err != nil || ack.Acked != i {
			t.Fatalf("frame %d: ack %+v, %v", i, ack, err)
		}
		if got := f.store.Len(); got != 4*i {
			t.Fatalf("frame %d acknowledged with %d entries stored, want %d", i, got, 4*i)
		}
	}
	f.store.SetOpen(false)
	if err := conn.WriteMessage(websocket.TextMessage, []byte(lines(4))); err != nil {
		t.Fatal(err)
	}
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseTryAgainLater {
		t.Fatalf("storage stalled: read %v, want a close with 1013", err)
	}
	if st := f.ws.Stats()[0]; st.Unconfirmed != 4 || st.Submitted != 16 {
		t.Fatalf("after the unconfirmed frame: %+v, want 16 submitted, 4 unconfirmed", st)
	}
}

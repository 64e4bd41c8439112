package ws

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// DefaultPushBatch is how many lines go in one pushed frame or request.
const DefaultPushBatch = 500

// PushConfig describes pushing generated logs to a processor's ingest
// endpoint, as a shipper would.
type PushConfig struct {
	// URL is ws:// or wss:// (a WebSocket, one frame per batch of lines)
	// or http:// or https:// (one POST of newline-delimited JSON per batch).
	URL string
	// Token, when set, is sent as Authorization: Bearer.
	Token string
	// Params are the stream's settings in the query string's terms
	// (rate=1000&count=5000&service=checkout).
	Params   string
	Interval time.Duration // the interval when Params gives none; 0 = random
	Batch    int           // lines per frame or request; 0 = DefaultPushBatch
	TLS      *tls.Config   // nil = the system's roots
}

// pushWriteWait bounds each write or request.
const pushWriteWait = 10 * time.Second

// Push sends generated logs to cfg.URL until ctx ends or the count is
// sent. A failed connection is retried every second; a request refused
// with 503 is sent again after its Retry-After, so nothing is lost or
// doubled. It returns nil when the count was sent or ctx ended.
func Push(ctx context.Context, cfg PushConfig, logger *slog.Logger) error {
	q, err := url.ParseQuery(cfg.Params)
	if err != nil {
		return fmt.Errorf("push params: %w", err)
	}
	p, err := parseParams(q, cfg.Interval)
	if err != nil {
		return fmt.Errorf("push params: %w", err)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--push-to %q: want ws://, wss://, http:// or https://host:port/path", cfg.URL)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultPushBatch
	}
	rng := newRand(p)
	if p.interval == 0 {
		p.interval = randomInterval(rng)
	}
	var send sender
	inFlight := 1
	switch u.Scheme {
	case "ws", "wss":
		send = newWSSender(ctx, cfg) // one connection, frames in order, acknowledged
	case "http", "https":
		// Two requests in flight, as shippers run several workers: the
		// next batch is made while the last is parsed.
		send = &httpSender{cfg: cfg, client: &http.Client{Timeout: pushWriteWait, Transport: &http.Transport{TLSClientConfig: cfg.TLS}}}
		inFlight = 2
	default:
		return fmt.Errorf("--push-to %q: want ws://, wss://, http:// or https://", cfg.URL)
	}
	log := logger.With("push_to", u.Redacted())
	out := newDispatcher(ctx, send, inFlight, log)
	defer send.close()
	defer out.wait()
	log.Info("pushing logs", "pace", p.pace(), "count", p.count)

	logs := newLogWriter(p, rng)
	sent, queued := 0, 0 // lines taken by the processor; lines in buf
	more := func() bool { return p.count < 0 || sent+queued < p.count }
	period := p.interval
	if p.rate > 0 || p.flood {
		period = ratePeriod
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	start := time.Now()
	buf := out.next()
	var first time.Time // when the oldest line in buf was made
	for {
		n := 1
		if p.flood {
			n = cfg.Batch
		} else if more() {
			select {
			case <-ctx.Done():
				return nil
			case now := <-tick.C:
				if p.rate > 0 {
					n = max(int(now.Sub(start).Seconds()*float64(p.rate))-sent-queued, 0)
				}
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		now := time.Now()
		for ; n > 0 && more(); n-- {
			if queued == 0 {
				first = now
			}
			buf = logs.append(buf, now)
			buf = append(buf, '\n')
			queued++
			if queued == cfg.Batch {
				buf = out.send(buf)
				sent, queued = sent+queued, 0
			}
		}
		// A shipper flushes what it holds at least every flushEvery, and
		// at the end.
		if queued > 0 && (!more() || now.Sub(first) >= pushFlushEvery) {
			buf = out.send(buf)
			sent, queued = sent+queued, 0
		}
		if !more() && queued == 0 {
			break
		}
	}
	out.wait()
	send.close() // a WebSocket's frames: once acknowledged
	log.Info("push finished", "sent", sent)
	return nil
}

// dispatcher sends batches on up to n goroutines at once. Its buffers
// circulate: the caller fills one while the others are in flight.
type dispatcher struct {
	ctx  context.Context
	snd  sender
	log  *slog.Logger
	free chan []byte   // n+1 buffers: n in flight, one being filled
	sem  chan struct{} // n: the batches in flight
	wg   sync.WaitGroup
}

func newDispatcher(ctx context.Context, snd sender, n int, log *slog.Logger) *dispatcher {
	d := &dispatcher{ctx: ctx, snd: snd, log: log, free: make(chan []byte, n+1), sem: make(chan struct{}, n)}
	for range n + 1 {
		d.free <- nil
	}
	return d
}

// next returns an empty buffer to fill, waiting for one to come back.
func (d *dispatcher) next() []byte { return (<-d.free)[:0] }

// send hands batch over to be sent (until it is taken, or ctx ends) and
// returns the next buffer to fill.
func (d *dispatcher) send(batch []byte) []byte {
	d.sem <- struct{}{}
	d.wg.Go(func() {
		_ = sendRetrying(d.ctx, d.snd, batch, d.log)
		<-d.sem
		d.free <- batch
	})
	return d.next()
}

// wait waits for the batches in flight.
func (d *dispatcher) wait() { d.wg.Wait() }

// pushFlushEvery is the longest a generated line waits to be pushed.
const pushFlushEvery = 200 * time.Millisecond

// sendRetrying sends batch until it is taken or ctx ends.
func sendRetrying(ctx context.Context, send sender, batch []byte, log *slog.Logger) error {
	for {
		wait, err := send.send(ctx, batch)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("push failed; retrying", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// sender delivers one batch of lines, or says how long to wait before
// trying it again.
type sender interface {
	send(ctx context.Context, batch []byte) (retryIn time.Duration, err error)
	close()
}

func authHeader(token string) http.Header {
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

// wsWindow bounds the frames a WebSocket pusher holds sent and not yet
// acknowledged: it waits for an acknowledgement past it.
const wsWindow = 32

// wsSender pushes frames over one WebSocket connection, asking the
// processor to acknowledge them (?ack=1): each {"acked":N} says the
// connection's first N frames are stored. It keeps every frame until it
// is acknowledged, and after a lost connection sends those again, in
// order, on the next: nothing is lost, and only what was not acknowledged
// is sent twice.
type wsSender struct {
	cfg PushConfig
	ctx context.Context // Push's: once it ends, close waits for nothing

	mu      sync.Mutex
	changed *sync.Cond // signalled when acks arrive or the connection fails
	conn    *websocket.Conn
	broken  bool     // conn failed; the next send dials again
	unacked [][]byte // sent (or to be sent again), oldest first
	acked   uint64   // frames of conn acknowledged
	reading sync.WaitGroup
}

func newWSSender(ctx context.Context, cfg PushConfig) *wsSender {
	s := &wsSender{cfg: cfg, ctx: ctx}
	s.changed = sync.NewCond(&s.mu)
	return s
}

// ackURL is the push URL asking for acknowledgements.
func ackURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set("ack", "1")
	u.RawQuery = q.Encode()
	return u.String()
}

// dial connects, starts the reader of acknowledgements, and sends again
// what is unacknowledged. s.mu is held.
func (s *wsSender) dial(ctx context.Context) error {
	d := websocket.Dialer{HandshakeTimeout: pushWriteWait, TLSClientConfig: s.cfg.TLS}
	conn, resp, err := d.DialContext(ctx, ackURL(s.cfg.URL), authHeader(s.cfg.Token))
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			err = fmt.Errorf("%w: %s: %s", err, resp.Status, strings.TrimSpace(string(body)))
		}
		return err
	}
	s.conn, s.broken, s.acked = conn, false, 0
	s.reading.Go(func() { s.readAcks(conn) })
	for _, f := range s.unacked {
		if err := s.write(f); err != nil {
			return err
		}
	}
	return nil
}

// readAcks reads the processor's acknowledgements until conn fails.
func (s *wsSender) readAcks(conn *websocket.Conn) {
	for {
		var ack struct {
			Acked uint64 `json:"acked"`
		}
		err := conn.ReadJSON(&ack)
		s.mu.Lock()
		if s.conn == conn {
			if err != nil {
				s.broken = true
			} else if n := ack.Acked - s.acked; ack.Acked > s.acked && n <= uint64(len(s.unacked)) {
				clear(s.unacked[:n])
				s.unacked, s.acked = s.unacked[n:], ack.Acked
			}
			s.changed.Broadcast()
		}
		s.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// write sends one frame on conn. s.mu is held.
func (s *wsSender) write(f []byte) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(pushWriteWait))
	if err := s.conn.WriteMessage(websocket.TextMessage, f); err != nil {
		s.broken = true
		return err
	}
	return nil
}

// drop closes a failed connection. s.mu is held.
func (s *wsSender) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

func (s *wsSender) send(ctx context.Context, batch []byte) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		s.drop()
	}
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			s.drop()
			return time.Second, err
		}
	}
	// Within the window: wait for acknowledgements (or a failure, after
	// which the frames held are sent again on a new connection).
	if err := s.wait(ctx, func() bool { return len(s.unacked) < wsWindow }); err != nil {
		s.drop()
		return time.Second, err
	}
	f := append([]byte(nil), batch...) // kept until acknowledged; batch is reused
	s.unacked = append(s.unacked, f)
	if err := s.write(f); err != nil {
		s.drop()
		return time.Second, nil // held: sent again after the next dial
	}
	return 0, nil
}

// wait waits until ok, the connection fails, or pushWriteWait passes with
// no acknowledgement. s.mu is held.
func (s *wsSender) wait(ctx context.Context, ok func() bool) error {
	deadline := time.Now().Add(pushWriteWait)
	stop := context.AfterFunc(ctx, func() { s.mu.Lock(); s.changed.Broadcast(); s.mu.Unlock() })
	defer stop()
	t := time.AfterFunc(pushWriteWait, func() { s.mu.Lock(); s.changed.Broadcast(); s.mu.Unlock() })
	defer t.Stop()
	for !ok() {
		switch {
		case s.broken:
			return errors.New("connection lost; sending the unacknowledged frames again")
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			s.broken = true
			return errors.New("no acknowledgement in time; sending the unacknowledged frames again")
		}
		s.changed.Wait()
	}
	return nil
}

// close waits (a while, unless the push was stopped) until every frame
// is acknowledged, dialling again as often as needed, then says goodbye.
func (s *wsSender) close() {
	s.mu.Lock()
	ctx, cancel := context.WithTimeout(s.ctx, 3*pushWriteWait)
	defer cancel()
	for len(s.unacked) > 0 && ctx.Err() == nil {
		if s.broken {
			s.drop()
		}
		if s.conn == nil {
			if err := s.dial(ctx); err != nil {
				s.drop()
				s.mu.Unlock()
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
				s.mu.Lock()
				continue
			}
		}
		_ = s.wait(ctx, func() bool { return len(s.unacked) == 0 })
	}
	if s.conn != nil {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "generator done")
		_ = s.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		s.conn.Close()
		s.conn = nil
	}
	s.mu.Unlock()
	s.reading.Wait()
}

type httpSender struct {
	cfg    PushConfig
	client *http.Client
}

func (s *httpSender) send(ctx context.Context, batch []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(batch))
	if err != nil {
		return time.Second, err
	}
	req.Header = authHeader(s.cfg.Token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := s.client.Do(req)
	if err != nil {
		return time.Second, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return 0, nil
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
		wait := time.Second
		if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
			wait = time.Duration(secs) * time.Second
		}
		return wait, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return 5 * time.Second, errors.New(resp.Status + ": " + strings.TrimSpace(string(body)))
}

func (s *httpSender) close() { s.client.CloseIdleConnections() }

// CheckParams reports whether s is a valid query string of stream
// settings, as --push-params takes.
func CheckParams(s string) error {
	q, err := url.ParseQuery(s)
	if err != nil {
		return err
	}
	_, err = parseParams(q, 0)
	return err
}

// Package ws is the mock generator's WebSocket endpoint: GET /ws/logs sends
// a handshake frame, then JSON log messages at the connection's interval.
// Each connection has one writer and one reader goroutine; a client that
// stops reading is disconnected after Config.WriteTimeout, never waited on.
package ws

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/pkg/bearer"
)

const (
	// pongWait is how long a client may stay silent (no pong, no frame)
	// before it is considered dead.
	pongWait = 60 * time.Second
	// pingPeriod is how often clients are pinged; below pongWait so that a
	// live client's pong arrives in time.
	pingPeriod = pongWait * 9 / 10
	// maxClientMessage is the largest frame a client may send us; clients
	// are not expected to send anything but control frames.
	maxClientMessage = 4096
	// closeGrace is how long a closing connection waits for the client to
	// answer the close frame.
	closeGrace = time.Second
	// floodBurst is how many flood-mode frames go out in one write system
	// call, between checks for shutdown and pings.
	floodBurst = 128
	// ratePeriod is how often a connection with a rate sends what it owes.
	ratePeriod = 5 * time.Millisecond
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxConns     = 1000
	DefaultWriteTimeout = 10 * time.Second
)

// Config holds the server-wide defaults. A zero field means its default.
type Config struct {
	// Interval between messages on a connection that does not ask for one.
	// Zero picks a random interval per connection, 10-1000 ms.
	Interval time.Duration
	// MaxConns is the most connections served at once; past it an upgrade
	// is answered 503.
	MaxConns int
	// AllowedOrigins lists the Origin hosts (host or host:port) browsers may
	// connect from. Empty allows any; requests without Origin are allowed.
	AllowedOrigins []string
	// WriteTimeout bounds every write; a client that does not take a frame
	// within it is disconnected.
	WriteTimeout time.Duration
	// Token, when set, is the bearer token a client must present, in its
	// Authorization header or its token query parameter; 401 otherwise.
	Token string
}

// totals are a Server's counters over all its connections.
type totals struct {
	frames atomic.Uint64
	faults [numFaults]atomic.Uint64
}

// Totals are what a Server has done, for its metrics.
type Totals struct {
	Clients int               // connections served now
	Frames  uint64            // frames sent after the handshakes, malformed ones included
	Faults  map[string]uint64 // malformed frames sent, by kind
}

// Totals returns the server's counts so far.
func (s *Server) Totals() Totals {
	t := Totals{Frames: s.totals.frames.Load(), Faults: make(map[string]uint64, numFaults)}
	for f := range numFaults {
		t.Faults[faultNames[f]] = s.totals.faults[f].Load()
	}
	s.mu.Lock()
	t.Clients = s.conns
	s.mu.Unlock()
	return t
}

// Server serves /ws/logs. Its methods are safe for concurrent use.
type Server struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader

	totals *totals // frames and faults sent, over every connection

	mu      sync.Mutex
	conns   int           // connections being served
	closing chan struct{} // closed by Close; every connection then says goodbye
	closed  bool
	wg      sync.WaitGroup // one per connection goroutine
}

// NewServer returns a Server with cfg's defaults.
func NewServer(cfg Config, logger *slog.Logger) *Server {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	s := &Server{totals: &totals{}, cfg: cfg, log: logger, closing: make(chan struct{})}
	s.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.WriteTimeout,
		ReadBufferSize:   1024,
		WriteBufferSize:  64 << 10,
		// EnableCompression stays off: sendBurst writes raw frames.
		// serveLogs checks the origin itself, to explain a refusal.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return s
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/logs", s.serveLogs)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "mock-log-generator\n\nGET /ws/logs    a WebSocket: a handshake frame, then JSON log messages\n\n"+QueryHelp)
	})
	return mux
}

// QueryHelp describes the per-connection settings, for --help and GET /.
const QueryHelp = `Per-connection query parameters (ws://host:port/ws/logs?...):
  interval_ms=N      interval between messages (0 = random 10-1000 ms)
  flood              send as fast as the connection takes
  rate=N             send N messages per second (paced every 5 ms)
  count=N            send N messages, then stay connected and quiet
  service=NAME       fixed service name
  services=N         cycle through N generated service names (svc-0000000, ...)
  level=LEVEL        fixed level: INFO, WARN or ERROR
  level_weights=W    level mix, e.g. INFO:50,WARN:30,ERROR:20 (default 70/20/10)
  message_bytes=N    messages of N bytes
  pad=N              an unknown "pad" field of N bytes in every message
  debug              log every frame sent
  malformed_pct=P    send P% of frames malformed, of assorted kinds (for testing consumers)
  drop_after=N       cut the TCP connection without a close frame after N frames
  seed=S             seed the connection's randomness, to replay a stream

A text message from the client applies the same settings from then on (a subscribe
message): service=checkout&rate=50, or {"service":"checkout","rate":50}.
`

// Close sends a close frame to every connection and waits for their
// goroutines, or for ctx to end. New upgrades are refused from then on.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close connections: %w", ctx.Err())
	}
}

func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if len(s.cfg.AllowedOrigins) == 0 || origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	for _, allowed := range s.cfg.AllowedOrigins {
		if strings.EqualFold(u.Host, allowed) || strings.EqualFold(u.Hostname(), allowed) {
			return true
		}
	}
	return false
}

// acquire reserves a connection slot; false when closing or full.
func (s *Server) acquire() (ok bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return false, "server shutting down"
	case s.conns >= s.cfg.MaxConns:
		return false, fmt.Sprintf("too many connections (limit %d)", s.cfg.MaxConns)
	}
	s.conns++
	s.wg.Add(1)
	return true, ""
}

func (s *Server) release() {
	s.mu.Lock()
	s.conns--
	s.mu.Unlock()
	s.wg.Done()
}

// authorized reports whether r carries the token, when one is required.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	return bearer.Equal(bearer.From(r, true), s.cfg.Token)
}

func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(r) {
		s.log.Warn("refused a client", "remote", r.RemoteAddr, "reason", "origin not allowed", "origin", r.Header.Get("Origin"))
		http.Error(w, fmt.Sprintf("origin %q is not allowed (see --allowed-origins)", r.Header.Get("Origin")), http.StatusForbidden)
		return
	}
	if !s.authorized(r) {
		s.log.Warn("refused a client", "remote", r.RemoteAddr, "reason", "no valid token")
		w.Header().Set("WWW-Authenticate", `Bearer realm="mock-log-generator"`)
		http.Error(w, "unauthorized: connect with Authorization: Bearer <token> (see --token)", http.StatusUnauthorized)
		return
	}
	query := r.URL.Query()
	query.Del("token")
	p, err := parseParams(query, s.cfg.Interval)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "/ws/logs is a WebSocket endpoint: connect with a WebSocket client (ws://"+r.Host+"/ws/logs), not plain HTTP",
			http.StatusUpgradeRequired)
		return
	}
	rng := newRand(p)
	if p.interval == 0 {
		p.interval = randomInterval(rng)
	}
	ok, reason := s.acquire()
	if !ok {
		s.log.Warn("refused a client", "remote", r.RemoteAddr, "reason", reason)
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.release() // Upgrade has already answered the client
		s.log.Warn("upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := &client{
		conn:      conn,
		p:         p,
		rng:       rng,
		logs:      newLogWriter(p, rng),
		log:       s.log.With("remote", r.RemoteAddr),
		closed:    s.closing,
		writeWait: s.cfg.WriteTimeout,
		pongs:     make(chan string, 1),
		query:     query,
		defInt:    s.cfg.Interval,
		subs:      make(chan params, 1),
		totals:    s.totals,
	}
	go func() {
		defer s.release()
		c.run()
	}()
}

// client is one connection.
type client struct {
	conn      *websocket.Conn
	p         params
	rng       *rand.Rand
	logs      *logWriter
	log       *slog.Logger
	closed    <-chan struct{} // the server is closing
	writeWait time.Duration
	readErr   error // why the reader ended; read by the writer after readDone

	sent   int            // frames sent after the handshake, malformed ones included
	faults [numFaults]int // malformed frames sent, by kind
	out    []byte         // reused buffer for a burst of encoded frames

	// pongs carries ping payloads from the reader to the writer, which
	// answers them: every write happens on the writer goroutine, so frames
	// written in bulk to the socket are never interleaved with another.
	pongs chan string

	// A text message from the client is a subscribe message: overrides
	// in the query string's terms (service=checkout&rate=50, or the JSON
	// object {"service":"checkout","rate":50}), applied over the query.
	// The reader parses it and hands the new params to the writer.
	query  url.Values
	defInt time.Duration
	subs   chan params

	totals *totals // the server's
}

// errDropped ends a connection closed on purpose by drop_after.
var errDropped = errors.New("dropped abruptly (drop_after)")

// handshake is the first frame; it has no "level", so processors can tell
// it from a log message.
type handshake struct {
	Status     string `json:"status"`
	IntervalMs int64  `json:"interval_ms,omitempty"` // absent with rate or flood
	Rate       int    `json:"rate,omitempty"`
	Flood      bool   `json:"flood,omitempty"`
	Count      int    `json:"count,omitempty"`
	Service    string `json:"service,omitempty"`
}

// run is the writer; it starts the reader and waits for it before returning.
func (c *client) run() {
	defer c.conn.Close()
	c.log.Info("client connected", "pace", c.p.pace(), "count", c.p.count)

	// readDone is closed by the reader when the client goes away.
	readDone := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { defer close(readDone); c.readErr = c.read() })

	err := c.write(readDone)
	if err != nil {
		c.conn.Close() // unblocks the reader
	}
	c.log.Info("client disconnected", "sent", c.sent, "reason", reasonOf(err))
	if c.p.malformedPct > 0 && c.more() {
		c.reportFaults() // not reported yet: the count was not reached
	}
}

func reasonOf(err error) string {
	if err == nil {
		return "server shutting down"
	}
	return err.Error()
}

// read consumes control frames (pings, pongs, close) until the connection
// ends, and returns why it ended. It writes nothing: pings are answered by
// the writer, and a close frame ends the reader, after which the writer
// answers it.
func (c *client) read() error {
	c.conn.SetReadLimit(maxClientMessage)
	_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(pongWait))
	})
	c.conn.SetPingHandler(func(data string) error {
		select {
		case c.pongs <- data:
		default: // one pong is already due; it answers this ping too
		}
		return nil
	})
	c.conn.SetCloseHandler(func(int, string) error { return nil })
	for {
		mt, rd, err := c.conn.NextReader()
		if err != nil {
			return err
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		if mt != websocket.TextMessage {
			continue
		}
		msg, err := io.ReadAll(rd)
		if err != nil {
			return err
		}
		p, err := c.subscribe(msg)
		if err != nil {
			c.log.Warn("subscribe message refused", "err", err)
			continue
		}
		select {
		case <-c.subs: // an older one not yet applied: this one replaces it
		default:
		}
		c.subs <- p
	}
}

// subscribe reads a subscribe message: a query string or a JSON object.
func (c *client) subscribe(msg []byte) (params, error) {
	over := url.Values{}
	if t := bytes.TrimSpace(msg); len(t) > 0 && t[0] == '{' {
		var m map[string]any
		if err := json.Unmarshal(t, &m); err != nil {
			return params{}, fmt.Errorf("not a JSON object: %w", err)
		}
		for k, v := range m {
			switch v := v.(type) {
			case string:
				over.Set(k, v)
			case float64:
				over.Set(k, strconv.FormatFloat(v, 'f', -1, 64))
			case bool:
				if v {
					over.Set(k, "")
				}
			default:
				return params{}, fmt.Errorf("%s: want a string, number or true", k)
			}
		}
	} else {
		var err error
		if over, err = url.ParseQuery(string(t)); err != nil {
			return params{}, fmt.Errorf("not a query string: %w", err)
		}
	}
	q := url.Values{}
	for k, v := range c.query {
		q[k] = v
	}
	for k, v := range over {
		q[k] = v
	}
	p, err := parseParams(q, c.defInt)
	if err == nil && p.interval == 0 {
		p.interval = randomInterval(c.rng)
	}
	return p, err
}

// write sends the handshake and the logs until the client goes away (an
// error) or the server closes (nil, after the close handshake).
func (c *client) write(readDone <-chan struct{}) error {
	hs, _ := json.Marshal(handshake{
		Status: "connected", IntervalMs: c.p.intervalMs(), Rate: c.p.rate, Flood: c.p.flood,
		Count: max(c.p.count, 0), Service: c.p.service,
	})
	now := time.Now()
	if err := c.conn.SetWriteDeadline(now.Add(c.writeWait)); err != nil {
		return err
	}
	if err := c.conn.WriteMessage(websocket.TextMessage, hs); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if c.p.debug {
		c.log.Info("sent", "frame", string(hs))
	}

	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	// tick paces the stream (none for flood, or once the count is sent);
	// pace sets it up for the current settings, anew after a subscribe.
	var tick <-chan time.Time
	stopTick := func() {}
	defer func() { stopTick() }()
	pace := func() {
		stopTick()
		stopTick, tick = func() {}, nil
		if !c.p.flood && c.more() {
			period := c.p.interval
			if c.p.rate > 0 {
				period = ratePeriod
			}
			t := time.NewTicker(period)
			stopTick, tick = t.Stop, t.C
		}
	}
	pace()
	start := time.Now()
	c.out = make([]byte, 0, 32<<10)
	for {
		burst := 1
		var flood <-chan time.Time
		if c.p.flood && c.more() {
			flood = closedTimeChan // ready at once: flood between other events
		}
		select {
		case <-c.closed:
			return c.goodbye(readDone)
		case <-readDone:
			c.answerClose()
			return fmt.Errorf("client went away: %w", c.readErr)
		case now := <-ping.C:
			if err := c.control(websocket.PingMessage, nil, now); err != nil {
				return err
			}
			continue
		case data := <-c.pongs:
			if err := c.control(websocket.PongMessage, []byte(data), time.Now()); err != nil {
				return err
			}
			continue
		case p := <-c.subs:
			// Subscribed: the new settings apply from here, paced anew.
			c.p, c.logs, c.sent, start = p, newLogWriter(p, c.rng), 0, time.Now()
			pace()
			ack, _ := json.Marshal(handshake{Status: "subscribed", IntervalMs: c.p.intervalMs(), Rate: c.p.rate, Flood: c.p.flood,
				Count: max(c.p.count, 0), Service: c.p.service})
			if err := c.conn.SetWriteDeadline(time.Now().Add(c.writeWait)); err != nil {
				return err
			}
			if err := c.conn.WriteMessage(websocket.TextMessage, ack); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			c.log.Info("client subscribed", "pace", c.p.pace(), "count", c.p.count, "service", c.p.service)
			continue
		case now := <-tick:
			if c.p.rate > 0 {
				// Send what the rate owes since the start, in bursts.
				due := int(now.Sub(start).Seconds()*float64(c.p.rate)) - c.sent
				for due > floodBurst {
					if err := c.sendBurst(floodBurst); err != nil {
						return err
					}
					due -= floodBurst
				}
				burst = max(due, 0)
			}
		case <-flood:
			burst = floodBurst
		}
		if err := c.sendBurst(burst); err != nil {
			return err
		}
		if !c.more() {
			tick = nil // count reached: stay connected, quiet
		}
	}
}

// more reports whether the count allows another frame.
func (c *client) more() bool { return c.p.count < 0 || c.sent < c.p.count }

// closedTimeChan is always ready to receive from; a select with it as a
// case never blocks on the others.
var closedTimeChan = func() <-chan time.Time {
	ch := make(chan time.Time)
	close(ch)
	return ch
}()

// sendBurst encodes up to n frames and writes them to the socket in one
// system call, stopping early at the count or at drop_after.
func (c *client) sendBurst(n int) error {
	now := time.Now()
	c.out = c.out[:0]
	sent0 := c.sent
	drop := false
	for range n {
		if !c.more() {
			break
		}
		if c.sent == c.p.dropAfter {
			drop = true
			break
		}
		// Encode the payload straight after room for a 4-byte header,
		// then write the header in front of it.
		start := len(c.out)
		c.out = append(c.out, 0, 0, 0, 0)
		op := byte(websocket.TextMessage)
		if c.p.malformedPct > 0 && c.rng.IntN(100) < c.p.malformedPct {
			f := fault(c.rng.IntN(int(numFaults)))
			var binary bool
			c.out, binary = c.logs.appendFault(c.out, now, f)
			if binary {
				op = websocket.BinaryMessage
			}
			c.faults[f]++
			c.totals.faults[f].Add(1)
		} else {
			c.out = c.logs.append(c.out, now)
		}
		if c.p.debug { // the payload, before the header goes in front of it
			c.log.Info("sent", "frame", string(c.out[start+4:]))
		}
		c.out = frameInPlace(c.out, start, op)
		c.sent++
		if c.p.malformedPct > 0 && !c.more() {
			c.reportFaults()
		}
	}
	// Counted once per burst (no shared cache line per frame), before the
	// write, so that a client holding the frames sees them counted.
	c.totals.frames.Add(uint64(c.sent - sent0))
	if len(c.out) > 0 {
		// Frames written past the WebSocket library, straight to the
		// socket, stay well-formed only because of two invariants:
		//  1. one writer: every write to this connection (these bursts,
		//     the handshake, pongs, close frames) happens on the writer
		//     goroutine, so no frame lands inside another
		//     (TestPingsDuringFlood);
		//  2. compression is never negotiated: the upgrader leaves
		//     EnableCompression off, so frames need no RSV1 bit and no
		//     deflate (TestCompressionNeverNegotiated).
		nc := c.conn.NetConn()
		if err := nc.SetWriteDeadline(now.Add(c.writeWait)); err != nil {
			return err
		}
		if _, err := nc.Write(c.out); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	if drop {
		c.conn.NetConn().Close() // no close frame: an abrupt end
		return errDropped
	}
	return nil
}

// frameInPlace turns b[start:], four reserved bytes followed by a payload,
// into one WebSocket frame by writing its header, and returns b (the header
// takes two bytes for payloads under 126: the payload moves down then).
// Payloads over 64 KiB take the slow way through appendFrame.
func frameInPlace(b []byte, start int, op byte) []byte {
	payload := b[start+4:]
	switch n := len(payload); {
	case n < 126:
		b[start], b[start+1] = 0x80|op, byte(n)
		copy(b[start+2:], payload)
		return b[:len(b)-2]
	case n <= 0xffff:
		b[start], b[start+1], b[start+2], b[start+3] = 0x80|op, 126, byte(n>>8), byte(n)
		return b
	default:
		return appendFrame(b[:start], op, bytes.Clone(payload))
	}
}

// appendFrame appends an unmasked, final WebSocket frame (RFC 6455 5.2),
// as a server sends, with opcode op and the given payload.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// reportFaults logs how many malformed frames of each kind were sent.
func (c *client) reportFaults() {
	attrs := make([]any, 0, 2*numFaults)
	total := 0
	for f, n := range c.faults {
		attrs = append(attrs, fault(f).String(), n)
		total += n
	}
	c.log.Info("malformed frames sent", "sent", c.sent, "malformed", total, slog.Group("kinds", attrs...))
}

// control writes a control frame; only the writer goroutine calls it.
func (c *client) control(op int, data []byte, now time.Time) error {
	if err := c.conn.WriteControl(op, data, now.Add(c.writeWait)); err != nil {
		return fmt.Errorf("write control frame: %w", err)
	}
	return nil
}

// answerClose echoes a close frame the client sent, best effort.
func (c *client) answerClose() {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	_ = c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
}

// goodbye sends a normal close frame and waits, bounded, for the client to
// answer it (the reader then ends).
func (c *client) goodbye(readDone <-chan struct{}) error {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "generator shutting down")
	_ = c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.writeWait))
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-readDone:
	case <-t.C:
		c.conn.Close()
	}
	return nil
}

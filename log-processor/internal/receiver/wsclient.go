// Package receiver is the dialed source kind: it reads log frames from one
// WebSocket source and feeds them to an intake, which parses them and
// submits the valid entries to the queue. A Receiver reconnects forever
// with jittered backoff, detects dead peers with pings, and counts what
// became of every frame.
package receiver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/log-processor/internal/backoff"
	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/redact"
)

// Defaults for the zero fields of Config.
const (
	DefaultSubmitTimeout  = intake.DefaultSubmitTimeout
	DefaultMaxMessageSize = 1 << 20
	DefaultConnectTimeout = 10 * time.Second
	DefaultPingInterval   = 10 * time.Second
	DefaultPongWait       = 30 * time.Second
	DefaultMaxBackoff     = 30 * time.Second
	// DefaultMaxHandshakeBytes bounds the source's answer to the upgrade
	// request (status line and headers).
	DefaultMaxHandshakeBytes = 64 << 10
)

const (
	// writeWait bounds each control frame (ping, pong, close) we write.
	writeWait = 5 * time.Second
	// closeGrace is how long a stopping receiver waits for the source to
	// answer its close frame before dropping the connection.
	closeGrace = time.Second
	// healthyAfter is how long a connection must last for the backoff to
	// start again from its shortest delay.
	healthyAfter = 10 * time.Second
	// deadlineRefresh is how often, at most, a data frame pushes the read
	// deadline forward; refreshing per frame would cost a timer update each.
	deadlineRefresh = time.Second
	// hardLimitFactor times MaxMessageSize is the frame size past which the
	// connection is dropped instead of the frame being skipped.
	hardLimitFactor = 64
	// readBufferSize is the socket read buffer; large enough to take many
	// small frames per read system call. A source whose frames fill it at
	// every read gets up to maxReadBufferSize: four times fewer system
	// calls took 2-3% off the processor's time under the flood.
	readBufferSize    = 64 << 10
	maxReadBufferSize = 256 << 10
	// handshakeBufferSize is gorilla's read buffer when it only reads the
	// upgrade response (ws://, see dial's direct).
	handshakeBufferSize = 4 << 10
	// firstPatience is how long a source that has never connected is
	// retried often, at most firstRetry apart: a processor started just
	// before its generator connects within a second or two of it.
	firstPatience = 30 * time.Second
	firstRetry    = 2 * time.Second
)

// Config describes one source. A zero field means its default.
type Config struct {
	// URL of the source, ws:// or wss://; required. User information in it
	// is sent as HTTP basic authentication. Wherever the source is shown
	// (logs, stats, the Source of its entries) its credentials are
	// redacted.
	URL string
	// Name names the source in logs, /stats, /metrics and the Source of
	// its entries, and is the service of entries that name none. Empty
	// means the URL (credentials redacted) in logs, /stats and entries,
	// host:port/path in /metrics, and host:port as the service.
	Name string

	MaxHandshakeBytes int // bound on the source's upgrade response; a longer one fails the dial

	// Header is sent with the upgrade request (Authorization, a tenant
	// header...). Its values are never logged.
	Header http.Header
	// OpenMessage, when not empty, is sent as a text frame after every
	// connect and reconnect: a subscribe message, as Benthos's
	// open_message and Vector's initial_message.
	OpenMessage string
	// TLS configures wss:// connections; nil means the system's roots.
	TLS *tls.Config

	SubmitTimeout  time.Duration // longest wait for room in the pool before dropping
	MaxMessageSize int           // longer frames are skipped and counted as too_large
	ConnectTimeout time.Duration // bound on dial plus WebSocket handshake
	PingInterval   time.Duration // how often to ping the source
	PongWait       time.Duration // silence (no frame, no pong) after which the connection is dead
	IdleTimeout    time.Duration // no data frame for this long means reconnect; 0 = off
	MaxBackoff     time.Duration // cap on the delay between reconnect attempts

}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SubmitTimeout, DefaultSubmitTimeout)
	def(&c.ConnectTimeout, DefaultConnectTimeout)
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.PongWait, DefaultPongWait)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MaxHandshakeBytes <= 0 {
		c.MaxHandshakeBytes = DefaultMaxHandshakeBytes
	}
	return c
}

// Receiver consumes one source. Run is called once at a time (again after
// it returned, when a cluster hands the source back); Stats, Health and
// LogSummary are safe to call concurrently with it.
type Receiver struct {
	in    *intake.Intake // fed by the Run goroutine
	cfg   Config
	name  string // Config.Name, or the URL with credentials redacted
	label string // Config.Name, or host:port/path
	log   *slog.Logger

	mu             sync.Mutex // guards the connection state below
	state          string
	connectedSince time.Time
	reconnects     uint64
	lastError      string
}

// New returns a Receiver for cfg.URL feeding sink.
func New(cfg Config, sink *intake.Sink, logger *slog.Logger) *Receiver {
	name := cfg.Name
	if name == "" {
		name = redact.URL(cfg.URL)
	}
	log := logger.With("component", "receiver", "ws", name)
	cfg = cfg.withDefaults()
	in := sink.NewIntake(intake.Config{Name: name, Service: defaultService(cfg), SubmitTimeout: cfg.SubmitTimeout}, log)
	return &Receiver{in: in, cfg: cfg, name: name, label: Label(cfg), log: log, state: intake.StateConnecting}
}

// Label is a source's name in /metrics: its name, or host:port/path of its
// URL, never the query string (parameters, sometimes secret ones) or user
// information.
func Label(cfg Config) string {
	if cfg.Name != "" {
		return cfg.Name
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" {
		return "unknown"
	}
	return u.Host + u.Path
}

// LeaseKey is what the processors of a cluster lease to decide which of
// them reads the source: its name (or URL) and a digest of everything
// that defines it, so that two processors given different definitions
// under one name both read theirs rather than one leaving the other's
// unread.
func (r *Receiver) LeaseKey() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", r.cfg.URL, r.cfg.OpenMessage)
	keys := make([]string, 0, len(r.cfg.Header))
	for k := range r.cfg.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s\x00%s\x00", k, strings.Join(r.cfg.Header[k], "\x00"))
	}
	id := r.cfg.Name
	if id == "" {
		id = r.label
	}
	return id + "@" + hex.EncodeToString(h.Sum(nil)[:6])
}

// LogSummary logs the source's summary line.
func (r *Receiver) LogSummary() { r.in.LogSummary() }

// defaultService is the service of entries that name none: the source's
// name, or its host:port.
func defaultService(cfg Config) string {
	if cfg.Name != "" {
		return cfg.Name
	}
	if u, err := url.Parse(cfg.URL); err == nil && u.Host != "" {
		return u.Host
	}
	return "unknown"
}

// Run connects, reads and reconnects until ctx ends, then sends the source
// a normal close frame, logs its summary and returns nil. It submits nothing
// after it returns.
func (r *Receiver) Run(ctx context.Context) error {
	defer r.in.LogSummary()
	bo := backoff.Backoff{Max: r.cfg.MaxBackoff}
	var rd readers // reused from one connection to the next
	connected := false
	began := time.Now()
	for {
		r.setState(intake.StateConnecting, nil)
		r.log.Info("Connecting to WebSocket server at: " + r.name)
		conn, stamped, direct, err := r.dial(ctx)
		if err == nil {
			r.mu.Lock()
			if connected {
				r.reconnects++
			}
			r.state, r.connectedSince = intake.StateConnected, time.Now()
			r.mu.Unlock()
			connected = true
			r.log.Info("Successfully connected to WebSocket server")
			start := time.Now()
			err = r.serve(ctx, conn, stamped, r.source(&rd, conn, stamped, direct))
			if time.Since(start) >= healthyAfter {
				bo.Reset()
			}
		}
		if ctx.Err() != nil {
			r.setState(intake.StateStopped, nil)
			return nil
		}
		d := bo.Next()
		if !connected && time.Since(began) < firstPatience {
			d = min(d, firstRetry)
		}
		r.setState(intake.StateBackoff, err)
		r.log.Warn("WebSocket source unavailable; will retry", "err", err, "retry_in", d.Round(time.Millisecond))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			r.setState(intake.StateStopped, nil)
			return nil
		case <-t.C:
		}
	}
}

func (r *Receiver) setState(state string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state = state
	if state != intake.StateConnected {
		r.connectedSince = time.Time{}
	}
	if err != nil {
		r.lastError = err.Error()
	}
}

// stampedConn notes when each socket read returned data. The frames a read
// brings in (up to readBufferSize bytes of them) share its time as their
// receive time, which saves a clock read per frame. Read is called only by
// the goroutine that reads the WebSocket, which also reads at.
//
// Until the handshake is done, reads are limited to handshakeLeft bytes in
// all, so that a source answering the upgrade with endless headers fails
// the dial instead of growing memory. And no read returns bytes past the
// end of a response head (the blank line): what the socket brought in
// after it is held back, and returned by the next reads. So when the
// handshake is done, gorilla's buffer holds nothing of the frames, and
// the frames can be read from this connection directly (see clean).
//
// Before each read it calls beforeRead (when set): the intake flushes the
// entries it holds before the goroutine may wait for the network.
type stampedConn struct {
	net.Conn
	at            time.Time
	handshakeLeft int // < 0 once the handshake is done
	beforeRead    func()

	held     []byte // read from the socket during the handshake, not yet returned
	heldBuf  []byte
	tail     uint32 // the last four bytes returned during the handshake
	heads    int    // response heads returned whole
	pastHead int    // bytes returned after the last head's end
	bareLF   bool   // a line ended without CR: the head's end is not ours to find
}

// errHandshakeTooLarge fails a dial whose upgrade response is too long.
var errHandshakeTooLarge = errors.New("upgrade response too large")

func (c *stampedConn) Read(p []byte) (int, error) {
	if c.beforeRead != nil {
		c.beforeRead()
	}
	if c.handshakeLeft >= 0 {
		return c.handshakeRead(p)
	}
	if len(c.held) > 0 {
		n := copy(p, c.held)
		c.held = c.held[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.at = time.Now()
	}
	return n, err
}

// handshakeRead returns what the socket brings in, up to the end of the
// next response head.
func (c *stampedConn) handshakeRead(p []byte) (int, error) {
	if len(c.held) == 0 {
		if c.handshakeLeft == 0 {
			return 0, errHandshakeTooLarge
		}
		if c.heldBuf == nil {
			c.heldBuf = make([]byte, 4096)
		}
		n, err := c.Conn.Read(c.heldBuf[:min(len(c.heldBuf), c.handshakeLeft)])
		c.handshakeLeft -= n
		if n == 0 {
			return 0, err
		}
		c.at = time.Now()
		c.held = c.heldBuf[:n]
	}
	n := min(len(p), len(c.held))
	for i, b := range c.held[:n] {
		if b == '\n' && byte(c.tail) != '\r' {
			c.bareLF = true
		}
		c.tail = c.tail<<8 | uint32(b)
		c.pastHead++
		if c.tail == 0x0d0a0d0a { // CR LF CR LF: a head ends here
			c.heads++
			c.pastHead = 0
			n = i + 1
			break
		}
	}
	copy(p, c.held[:n])
	c.held = c.held[n:]
	return n, nil
}

// clean reports whether gorilla's buffer holds nothing past the last
// response head, so that the frames can be read from c: the heads ended
// with a blank line, every line with CR LF (the end of a head found here
// is then the one gorilla's reader found), and no byte after the last
// head was returned.
func (c *stampedConn) clean() bool {
	return c.heads > 0 && c.pastHead == 0 && !c.bareLF
}

// dial opens the connection, bounded by ConnectTimeout, by
// MaxHandshakeBytes, and by ctx: cancelling ctx fails a dial in progress at
// once, even mid-handshake.
//
// direct reports whether the frames can be read from the returned
// stampedConn itself (see stampedConn.clean): gorilla reads from it (no
// TLS in between), its buffer holds nothing, and no extension was
// negotiated.
func (r *Receiver) dial(ctx context.Context) (conn *websocket.Conn, sc *stampedConn, direct bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	target, header, err := dialTarget(r.cfg.URL)
	if err != nil {
		return nil, nil, false, err
	}
	if len(r.cfg.Header) > 0 {
		if header == nil {
			header = http.Header{}
		}
		for k, vs := range r.cfg.Header {
			header[k] = append(header[k], vs...)
		}
	}
	var stamped atomic.Pointer[stampedConn] // set by NetDialContext, read by the wake-up
	var nd net.Dialer
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: r.cfg.ConnectTimeout,
		TLSClientConfig:  r.cfg.TLS,
		ReadBufferSize:   gorillaBuffer(target),
		WriteBufferSize:  1024,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			sc := &stampedConn{Conn: c, handshakeLeft: r.cfg.MaxHandshakeBytes}
			stamped.Store(sc)
			return sc, nil
		},
	}
	// The dialer honours only ctx's deadline once connected: wake a
	// handshake blocked in a read or write when ctx is cancelled.
	stopWake := context.AfterFunc(ctx, func() {
		if c := stamped.Load(); c != nil {
			_ = c.SetDeadline(time.Now())
		}
	})
	conn, resp, err := d.DialContext(ctx, target, header)
	woke := !stopWake()
	if err != nil {
		if errors.Is(err, errHandshakeTooLarge) {
			err = fmt.Errorf("%w: more than %d bytes", err, r.cfg.MaxHandshakeBytes)
		}
		if ctx.Err() != nil && woke {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		if resp != nil {
			// The generator explains a refused upgrade in a one-line body.
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			return nil, nil, false, fmt.Errorf("dial: %w: %s: %s", err, resp.Status, strings.TrimSpace(string(body)))
		}
		return nil, nil, false, fmt.Errorf("dial: %w", err)
	}
	if woke { // cancelled just as the handshake finished
		conn.Close()
		return nil, nil, false, fmt.Errorf("dial: %w", ctx.Err())
	}
	sc = stamped.Load()
	sc.handshakeLeft = -1
	direct = conn.NetConn() == net.Conn(sc) && sc.clean() && len(resp.Header.Values("Sec-WebSocket-Extensions")) == 0
	sc.beforeRead = r.in.Flush
	if r.cfg.OpenMessage != "" {
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := conn.WriteMessage(websocket.TextMessage, []byte(r.cfg.OpenMessage)); err != nil {
			conn.Close()
			return nil, nil, false, fmt.Errorf("send open message: %w", err)
		}
		_ = conn.SetWriteDeadline(time.Time{})
	}
	return conn, sc, direct, nil
}

// gorillaBuffer is gorilla's read buffer for target: small for ws://, whose
// frames are read directly once connected, except after an unusual
// handshake (see dial).
func gorillaBuffer(target string) int {
	if strings.HasPrefix(strings.ToLower(target), "ws://") {
		return handshakeBufferSize
	}
	return readBufferSize
}

// dialTarget splits the user information off a source URL, which the
// WebSocket dialer refuses, into a basic authentication header.
func dialTarget(raw string) (string, http.Header, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("dial: invalid URL %s", redact.URL(raw))
	}
	if u.User == nil {
		return raw, nil, nil
	}
	pass, _ := u.User.Password()
	req := http.Request{Header: http.Header{}}
	req.SetBasicAuth(u.User.Username(), pass)
	u.User = nil
	return u.String(), req.Header, nil
}

// serve reads one connection until it fails or ctx ends, then closes it.
func (r *Receiver) serve(ctx context.Context, conn *websocket.Conn, stamped *stampedConn, src frameSource) error {
	conn.SetReadLimit(int64(r.cfg.MaxMessageSize) * hardLimitFactor)
	conn.SetPongHandler(func(string) error { return r.pong(conn) })
	conn.SetPingHandler(func(data string) error { return r.ping(conn, []byte(data)) })
	if err := conn.SetReadDeadline(time.Now().Add(r.cfg.PongWait)); err != nil {
		conn.Close()
		return err
	}

	// readDone is closed by the reader (this goroutine) when it returns;
	// the keepalive goroutine stops on it.
	readDone := make(chan struct{})
	var idleErr error // set by keepalive, read after wg.Wait
	var wg sync.WaitGroup
	wg.Go(func() { idleErr = r.keepalive(ctx, conn, readDone) })
	err := r.read(ctx, conn, stamped, src)
	r.in.Flush() // what the last frames held
	close(readDone)
	wg.Wait()
	conn.Close()
	if ctx.Err() != nil {
		return nil
	}
	if idleErr != nil {
		return idleErr
	}
	return fmt.Errorf("read: %w", err)
}

// keepalive pings the source, enforces IdleTimeout, and when ctx ends sends
// the close frame and bounds the wait for the source's answer. It returns
// the idle-timeout error if that is why it closed the connection.
func (r *Receiver) keepalive(ctx context.Context, conn *websocket.Conn, readDone <-chan struct{}) error {
	ping := time.NewTicker(r.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-readDone:
			return nil
		case <-ctx.Done():
			r.log.Debug("sending close frame")
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "processor shutting down")
			_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
			_ = conn.SetReadDeadline(time.Now().Add(closeGrace))
			t := time.NewTimer(closeGrace)
			defer t.Stop()
			select {
			case <-readDone:
			case <-t.C:
				conn.Close() // the source never answered; unblock the reader
			}
			return nil
		case now := <-ping.C:
			if r.cfg.IdleTimeout > 0 {
				if last := r.in.LastMessageAt(); !last.IsZero() && now.Sub(last) > r.cfg.IdleTimeout {
					conn.Close()
					return fmt.Errorf("no data for %s", r.cfg.IdleTimeout)
				}
			}
			r.log.Debug("ping sent")
			if err := conn.WriteControl(websocket.PingMessage, nil, now.Add(writeWait)); err != nil {
				r.log.Debug("ping failed", "err", err)
			}
		}
	}
}

// ping answers a ping with a pong.
func (r *Receiver) ping(conn *websocket.Conn, data []byte) error {
	r.log.Debug("ping received; sending pong")
	err := conn.WriteControl(websocket.PongMessage, data, time.Now().Add(writeWait))
	if err == nil || errors.Is(err, websocket.ErrCloseSent) {
		return nil
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

// pong notes that the source is alive.
func (r *Receiver) pong(conn *websocket.Conn) error {
	r.log.Debug("pong received")
	return conn.SetReadDeadline(time.Now().Add(r.cfg.PongWait))
}

// A frameSource yields a connection's data messages, answering its
// control frames on the way: frames, reading the socket itself, or
// gorillaFrames.
type frameSource interface {
	// next returns a message's type and payload (valid until the next
	// call), or tooLarge for one longer than the limit, which it skipped.
	next() (mt int, data []byte, tooLarge bool, err error)
}

// gorillaFrames reads messages through gorilla into a reused buffer, which
// grows to the largest message accepted, at most MaxMessageSize+1.
type gorillaFrames struct {
	conn  *websocket.Conn
	buf   []byte
	limit int
}

func (g *gorillaFrames) next() (int, []byte, bool, error) {
	mt, rd, err := g.conn.NextReader()
	if err != nil {
		return 0, nil, false, err
	}
	data, tooLarge, err := ReadFrame(rd, g.buf, g.limit)
	if err != nil {
		return 0, nil, false, err
	}
	g.buf = data[:0]
	return mt, data, tooLarge, nil
}

// readers holds a Receiver's two frame sources, whose buffers are kept from
// one connection to the next.
type readers struct {
	direct  frames
	gorilla gorillaFrames
}

// source returns the frame source for a connection just dialed (see dial
// for direct).
func (r *Receiver) source(rs *readers, conn *websocket.Conn, sc *stampedConn, direct bool) frameSource {
	if !direct {
		rs.gorilla.conn, rs.gorilla.limit = conn, r.cfg.MaxMessageSize
		return &rs.gorilla
	}
	f := &rs.direct
	f.reset(sc)
	f.limit, f.hard = r.cfg.MaxMessageSize, int64(r.cfg.MaxMessageSize)*hardLimitFactor
	f.ping = func(data []byte) error { return r.ping(conn, data) }
	f.pong = func([]byte) error { return r.pong(conn) }
	f.close = func(data []byte) { _ = conn.WriteControl(websocket.CloseMessage, data, time.Now().Add(writeWait)) }
	return f
}

// read consumes messages until the connection fails.
func (r *Receiver) read(ctx context.Context, conn *websocket.Conn, stamped *stampedConn, src frameSource) error {
	lastRefresh := time.Now()
	for {
		mt, data, tooLarge, err := src.next()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				r.in.Count(parser.TooLarge, time.Now())
			}
			return err
		}
		now := stamped.at
		r.handle(mt, data, tooLarge, now)
		if now.Sub(lastRefresh) >= deadlineRefresh && ctx.Err() == nil {
			lastRefresh = now
			if err := conn.SetReadDeadline(now.Add(r.cfg.PongWait)); err != nil {
				return err
			}
		}
	}
}

// ReadFrame reads one message into buf. A message longer than limit is
// read to its end and discarded, and reported with tooLarge set.
func ReadFrame(rd io.Reader, buf []byte, limit int) (data []byte, tooLarge bool, err error) {
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				_, err := io.Copy(io.Discard, rd)
				return buf[:0], true, err
			}
			buf = append(buf, make([]byte, min(max(len(buf), 512), limit+1-len(buf)))...)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == io.EOF:
			if len(buf) > limit {
				return buf[:0], true, nil
			}
			return buf, false, nil
		case err != nil:
			return buf[:0], false, err
		}
	}
}

// handle accounts for one frame and submits what it holds.
func (r *Receiver) handle(mt int, data []byte, tooLarge bool, now time.Time) {
	switch {
	case tooLarge:
		r.in.Count(parser.TooLarge, now)
	case mt == websocket.BinaryMessage:
		r.in.Count(parser.BinaryFrame, now)
	default:
		r.in.Frame(data, now)
	}
}

// Stats returns a snapshot that adds up (see intake.Counters).
func (r *Receiver) Stats() []intake.Stats {
	s := intake.Stats{Name: r.label, URL: r.name, Kind: intake.KindDial, Counters: r.in.Counters(), LastMessageAt: r.in.LastMessageAt()}
	r.mu.Lock()
	s.State, s.Reconnects, s.LastError = r.state, r.reconnects, r.lastError
	if !r.connectedSince.IsZero() {
		s.ConnectedSince = r.connectedSince.UTC()
	}
	r.mu.Unlock()
	return []intake.Stats{s}
}

// Health reports the connection's state.
func (r *Receiver) Health() intake.Health {
	h := intake.Health{Name: r.label, URL: r.name, Kind: intake.KindDial}
	r.mu.Lock()
	h.State, h.LastError = r.state, r.lastError
	if !r.connectedSince.IsZero() {
		h.ConnectedSince = r.connectedSince.UTC()
	}
	r.mu.Unlock()
	return h
}

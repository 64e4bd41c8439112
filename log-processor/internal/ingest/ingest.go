// Package ingest receives logs that sources push: over a WebSocket
// (GET /ws/ingest) and over HTTP (POST /ingest), as newline-delimited JSON,
// behind bearer tokens. It is the push-side twin of package receiver, whose
// Intake it feeds, and keeps receiver's promises: every line is counted,
// and none is silently dropped. When the queue stays full a WebSocket
// pusher is slowed (its frames are not read, so TCP pushes back) and an
// HTTP request is refused whole with 503, so a pusher that retries neither
// loses nor duplicates lines.
package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/receiver"
	"github.com/logpipeline/log-processing-service/log-processor/internal/workerpool"
	"github.com/logpipeline/log-processing-service/pkg/bearer"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Defaults for the zero fields of Config.
const (
	DefaultMaxBodyBytes  = 8 << 20
	DefaultMaxClients    = 256
	DefaultSubmitTimeout = 2 * time.Second
	DefaultPingInterval  = 10 * time.Second
	DefaultPongWait      = 30 * time.Second
)

// Paths served.
const (
	PathWS   = "/ws/ingest"
	PathHTTP = "/ingest"
)

// Anonymous names the pushers when no token is configured.
const Anonymous = "anonymous"

// Token is a bearer token a pusher presents, and the name it is known by
// in /stats and in the Source of its entries.
type Token struct {
	Name  string
	Value string
}

// Config describes the ingest endpoints. A zero field means its default.
type Config struct {
	// Tokens are the accepted bearer tokens; with none, any pusher is
	// accepted (as Anonymous).
	Tokens []Token
	// MaxBodyBytes bounds an HTTP body (after gzip decoding) and a
	// WebSocket frame; longer ones are refused (413) or counted as
	// too_large.
	MaxBodyBytes int64
	// MaxClients bounds the WebSocket pushers connected at once.
	MaxClients int
	// SubmitTimeout is how long an HTTP request waits for room in the
	// queue before it is refused with 503.
	SubmitTimeout time.Duration
	PingInterval  time.Duration
	PongWait      time.Duration

	Parser          parser.Parser
	Blocked         func() string
	SummaryInterval time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxClients <= 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.SubmitTimeout <= 0 {
		c.SubmitTimeout = DefaultSubmitTimeout
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PongWait <= 0 {
		c.PongWait = DefaultPongWait
	}
	return c
}

// Pool is what ingest needs of the worker pool.
type Pool interface {
	receiver.Pool
	// SubmitAll queues entries whole or not at all: nil, or
	// workerpool.ErrTooLarge (they never fit) or workerpool.ErrFull.
	SubmitAll(entries []models.LogEntry, timeout time.Duration) error
}

// Server serves the ingest endpoints. It is an http.Handler; Close stops
// it. Stats is safe to call at any time.
type Server struct {
	cfg  Config
	pool Pool
	log  *slog.Logger
	mux  *http.ServeMux
	up   websocket.Upgrader

	ctx    context.Context // ended by Close: pushers stop
	cancel context.CancelFunc

	mu      sync.Mutex
	closed  bool
	clients int                      // WebSocket pushers connected
	conns   map[*websocket.Conn]bool // to close them on Close
	sources map[string]*source       // by kind and token name: PathWS+" "+name
	order   []*source                // as first seen, for Stats
	active  sync.WaitGroup           // handlers running

	// Reused per request: bodies (entries copy their own bytes, so a
	// body is free once parsed) and tallies (the pool copies entries in,
	// so a tally is free once submitted).
	bodies  sync.Pool // *bytes.Buffer
	tallies sync.Pool // *receiver.Tally
}

// source is one token's pushes on one path: the counters of its finished
// WebSocket connections (or its HTTP intake), and those still connected.
type source struct {
	path, token string
	http        *receiver.Intake // PathHTTP: shared by its requests (Prepare/Commit)
	done        receiver.Counters
	live        map[*receiver.Intake]bool
	lastMsg     time.Time
	remote      string
	requests    uint64
	refused     uint64
}

// New returns a Server feeding pool.
func New(cfg Config, pool Pool, logger *slog.Logger) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg: cfg.withDefaults(), pool: pool, log: logger.With("component", "ingest"), ctx: ctx, cancel: cancel,
		conns: map[*websocket.Conn]bool{}, sources: map[string]*source{},
	}
	s.up = websocket.Upgrader{
		ReadBufferSize:  64 << 10,
		WriteBufferSize: 1024,
		// Pushers authenticate with a token, never a cookie, so a page from
		// another origin gains nothing by connecting: browsers are welcome.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET "+PathWS, s.serveWS)
	s.mux.HandleFunc("POST "+PathHTTP, s.serveHTTP)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close refuses new pushes, closes the WebSocket pushers (after the frame
// each is handling) and waits for every handler to return: after Close,
// nothing is submitted.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.cancel()
	for c := range s.conns {
		msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "processor shutting down")
		_ = c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
	}
	s.mu.Unlock()
	s.active.Wait()
}

// enter registers a handler; it fails once Close has begun.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active.Add(1)
	return true
}

// auth returns the name of the token r carries, in its Authorization
// header or (for browsers, which cannot set headers on a WebSocket) its
// token query parameter.
func (s *Server) auth(r *http.Request) (string, bool) {
	if len(s.cfg.Tokens) == 0 {
		return Anonymous, true
	}
	got := bearer.From(r, true)
	name, ok := "", false
	for _, t := range s.cfg.Tokens { // every token compared, in constant time
		if bearer.Equal(got, t.Value) {
			name, ok = t.Name, true
		}
	}
	return name, ok
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="log-processor ingest"`)
	http.Error(w, "unauthorized: push with Authorization: Bearer <ingest token> (or ?token= on a WebSocket)", http.StatusUnauthorized)
}

// sourceFor returns the source of token on path, creating it; s.mu held.
func (s *Server) sourceFor(path, token string) *source {
	key := path + " " + token
	src := s.sources[key]
	if src == nil {
		src = &source{path: path, token: token, live: map[*receiver.Intake]bool{}}
		if path == PathHTTP {
			src.http = s.intake(token, nil)
		}
		s.sources[key] = src
		s.order = append(s.order, src)
	}
	return src
}

// intake returns a new Intake for token's pushes; block, when set, slows
// the pusher instead of dropping.
func (s *Server) intake(token string, block context.Context) *receiver.Intake {
	name := "push:" + token
	p := s.cfg.Parser
	p.DefaultService = token
	return receiver.NewIntake(receiver.IntakeConfig{
		Name: name, Parser: p, Block: block,
		Blocked: s.cfg.Blocked, SummaryInterval: s.cfg.SummaryInterval,
	}, s.pool, s.log.With("source", name))
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	token, ok := s.auth(r)
	if !ok {
		unauthorized(w)
		return
	}
	if !s.enter() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.active.Done()
	s.mu.Lock()
	if s.clients >= s.cfg.MaxClients {
		s.mu.Unlock()
		w.Header().Set("Retry-After", "5")
		http.Error(w, fmt.Sprintf("too many pushers connected (%d, --ingest-max-clients)", s.cfg.MaxClients), http.StatusServiceUnavailable)
		return
	}
	s.clients++
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.clients--; s.mu.Unlock() }()

	conn, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	in := s.intake(token, s.ctx)
	s.mu.Lock()
	src := s.sourceFor(PathWS, token)
	src.live[in] = true
	src.remote = r.RemoteAddr
	s.conns[conn] = true
	s.mu.Unlock()
	s.log.Info("pusher connected", "token", token, "remote", r.RemoteAddr)

	err = s.readPusher(conn, in)

	s.mu.Lock()
	delete(s.conns, conn)
	delete(src.live, in)
	src.done.Add(in.Counters())
	if t := in.LastMessageAt(); t.After(src.lastMsg) {
		src.lastMsg = t
	}
	s.mu.Unlock()
	conn.Close()
	in.LogSummary()
	s.log.Info("pusher disconnected", "token", token, "remote", r.RemoteAddr, "err", err)
}

// readPusher reads frames until the pusher goes or Close ends the server.
func (s *Server) readPusher(conn *websocket.Conn, in *receiver.Intake) error {
	limit := int(s.cfg.MaxBodyBytes)
	conn.SetReadLimit(int64(limit) * 4)
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.PongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(s.cfg.PongWait)) })
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(s.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				_ = conn.WriteControl(websocket.PingMessage, nil, now.Add(5*time.Second))
			}
		}
	}()
	buf := make([]byte, 0, 4096)
	for {
		_, rd, err := conn.NextReader()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				in.Count(parser.TooLarge, time.Now())
			}
			return err
		}
		data, tooLarge, err := receiver.ReadFrame(rd, buf, limit)
		if err != nil {
			return err
		}
		buf = data[:0]
		now := time.Now()
		// Text or binary alike: some shippers send only binary frames.
		if tooLarge {
			in.Count(parser.TooLarge, now)
		} else {
			in.Lines(data, now) // blocks while the queue is full: the pusher is slowed
		}
		_ = conn.SetReadDeadline(now.Add(s.cfg.PongWait))
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
	}
}

// Result is the answer to POST /ingest: every line is in one of its
// counts.
type Result struct {
	Accepted int               `json:"accepted"`           // entries queued for storage
	Rejected map[string]uint64 `json:"rejected,omitempty"` // lines refused, by reason
	Ignored  int               `json:"ignored,omitempty"`  // control lines: neither a level nor a message
	// BelowMinLevel counts valid lines below --min-level, not stored.
	BelowMinLevel int `json:"below_min_level,omitempty"`
	// DefaultLevel counts the accepted entries that named no level and
	// were given --default-level.
	DefaultLevel int `json:"default_level,omitempty"`
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := s.auth(r)
	if !ok {
		unauthorized(w)
		return
	}
	if !s.enter() {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.active.Done()
	buf, _ := s.bodies.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() { buf.Reset(); s.bodies.Put(buf) }()
	body, status, err := s.readBody(w, r, buf)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	now := time.Now()
	s.mu.Lock()
	src := s.sourceFor(PathHTTP, token)
	src.remote = r.RemoteAddr
	s.mu.Unlock()

	t, _ := s.tallies.Get().(*receiver.Tally)
	if t == nil {
		t = new(receiver.Tally)
	}
	defer func() {
		clear(t.Entries) // let their strings go
		t.Entries, t.Outcomes = t.Entries[:0], [parser.NumReasons]uint64{}
		s.tallies.Put(t)
	}()
	if n := bytes.Count(body, []byte{'\n'}) + 1; cap(t.Entries) < n {
		t.Entries = make([]models.LogEntry, 0, n)
	}
	var elements [][]byte
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(trimmed, &arr); err != nil {
			http.Error(w, "body starts with [ but is not a JSON array: "+err.Error(), http.StatusBadRequest)
			return
		}
		elements = make([][]byte, len(arr))
		for i := range arr {
			elements[i] = arr[i]
		}
		body = nil
	}
	src.http.Prepare(t, body, elements, now)
	switch err := s.pool.SubmitAll(t.Entries, s.cfg.SubmitTimeout); {
	case errors.Is(err, workerpool.ErrTooLarge):
		http.Error(w, fmt.Sprintf("%d entries are more than the queue holds at once (--queue-size, --queue-max-bytes): send smaller batches",
			len(t.Entries)), http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		s.mu.Lock()
		src.refused++
		s.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("queue full: none of the %d entries was taken; retry", len(t.Entries)), http.StatusServiceUnavailable)
		return
	}
	src.http.Commit(t, now)
	s.mu.Lock()
	src.requests++
	s.mu.Unlock()
	res := Result{Accepted: len(t.Entries), Ignored: int(t.Outcomes[parser.Control]),
		BelowMinLevel: int(t.Outcomes[parser.BelowMinLevel]), DefaultLevel: int(t.Outcomes[parser.DefaultLevel])}
	for reason, n := range t.Outcomes {
		if r := parser.Reason(reason); n > 0 && r.IsError() {
			if res.Rejected == nil {
				res.Rejected = map[string]uint64{}
			}
			res.Rejected[r.String()] = n
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// readBody reads the request body into buf, decoding gzip, within
// MaxBodyBytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) ([]byte, int, error) {
	limit := s.cfg.MaxBodyBytes
	var rd io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(rd)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip body: %v", err)
		}
		defer zr.Close()
		rd = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Encoding %q: send gzip or nothing", enc)
	}
	if r.ContentLength > 0 && r.ContentLength <= limit {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(rd, limit+1))
	body := buf.Bytes()
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), int64(len(body)) > limit:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes (--ingest-max-body-bytes): send smaller batches", limit)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %v", err)
	}
	return body, 0, nil
}

// Stats returns a snapshot of every token's pushes seen so far, each
// adding up as a dialed source's does.
func (s *Server) Stats() []receiver.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]receiver.Stats, 0, len(s.order))
	for _, src := range s.order {
		st := receiver.Stats{URL: src.path, Kind: receiver.KindPush, State: "listening", Token: src.token,
			RemoteAddr: src.remote, Clients: len(src.live), Requests: src.requests, Refused: src.refused}
		if s.closed {
			st.State = receiver.StateStopped
		}
		var c receiver.Counters
		c.Add(src.done)
		last := src.lastMsg
		if src.http != nil {
			c.Add(src.http.Counters())
			last = src.http.LastMessageAt()
		}
		for in := range src.live {
			c.Add(in.Counters())
			if t := in.LastMessageAt(); t.After(last) {
				last = t
			}
		}
		st.Counters, st.LastMessageAt = c, last
		out = append(out, st)
	}
	return out
}

// LogSummary logs the summary line of each HTTP source (WebSocket
// pushers log theirs as they go).
func (s *Server) LogSummary() {
	s.mu.Lock()
	var ins []*receiver.Intake
	for _, src := range s.order {
		if src.http != nil {
			ins = append(ins, src.http)
		}
	}
	s.mu.Unlock()
	for _, in := range ins {
		in.LogSummary()
	}
}

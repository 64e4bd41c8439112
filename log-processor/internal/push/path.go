package push

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
)

// Path is one push path's (one protocol's) bookkeeping: the intake of each
// token's pushes and their counters, the requests and streams in flight,
// and its stop. Every push source kind holds one. Safe for concurrent use.
type Path struct {
	sink  *intake.Sink
	path  string // as /stats shows it: "/ingest", "/v1/logs"...
	proto string // in the source's name: push:TOKEN:proto
	log   *slog.Logger

	mu      sync.Mutex
	closed  bool
	active  sync.WaitGroup // handlers and streams in flight
	tokens  map[string]*tokenTally
	order   []*tokenTally // as first seen, for Stats
	onClose []func()      // run by Close: streams to end
}

// tokenTally is one token's pushes on a path.
type tokenTally struct {
	token    string
	req      *intake.Intake // shared by the token's requests
	done     intake.Counters
	live     map[*intake.Intake]bool // streams open now
	lastMsg  time.Time
	remote   string
	requests uint64
	refused  uint64
}

// NewPath returns the bookkeeping of the push path path, whose pushes are
// named push:TOKEN:proto.
func NewPath(sink *intake.Sink, path, proto string, logger *slog.Logger) *Path {
	return &Path{sink: sink, path: path, proto: proto, log: logger, tokens: map[string]*tokenTally{}}
}

// Name is the source name of token's pushes on the path.
func (p *Path) Name(token string) string { return "push:" + token + ":" + p.proto }

// tally returns token's tally, creating it; p.mu held.
func (p *Path) tally(token string) *tokenTally {
	t := p.tokens[token]
	if t == nil {
		t = &tokenTally{token: token, live: map[*intake.Intake]bool{}}
		p.tokens[token] = t
		p.order = append(p.order, t)
	}
	return t
}

// intakeConfig is the intake of token's pushes: entries recorded as from
// push:TOKEN, with the token's name as their default service.
func (p *Path) intakeConfig(token string) intake.Config {
	return intake.Config{Name: "push:" + token, Service: token}
}

// Enter registers a request (or stream) in flight; false once Close has
// begun (answer 503). Every true is matched by a Leave.
func (p *Path) Enter() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.active.Add(1)
	return true
}

// Leave ends what Enter began.
func (p *Path) Leave() { p.active.Done() }

// Requests returns the intake token's requests share, noting the request
// from remote.
func (p *Path) Requests(token, remote string) *intake.Intake {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tally(token)
	t.remote = remote
	if t.req == nil {
		t.req = p.sink.NewIntake(p.intakeConfig(token), p.log.With("source", p.Name(token)))
	}
	return t.req
}

// Done counts a request of token's as taken, or refused whole (to be
// retried by the pusher).
func (p *Path) Done(token string, refused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.tally(token)
	if refused {
		t.refused++
	} else {
		t.requests++
	}
}

// OpenStream returns the intake of a stream of token's from remote (a
// WebSocket pusher), which block slows rather than drops, and the function
// that closes it; stop, run at Close, ends the stream.
func (p *Path) OpenStream(token, remote string, block context.Context, stop func()) (*intake.Intake, func()) {
	cfg := p.intakeConfig(token)
	cfg.Block = block
	in := p.sink.NewIntake(cfg, p.log.With("source", p.Name(token)))
	p.mu.Lock()
	t := p.tally(token)
	t.live[in] = true
	t.remote = remote
	p.onClose = append(p.onClose, stop)
	idx := len(p.onClose) - 1
	p.mu.Unlock()
	return in, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(t.live, in)
		t.done.Add(in.Counters())
		if last := in.LastMessageAt(); last.After(t.lastMsg) {
			t.lastMsg = last
		}
		p.onClose[idx] = nil
	}
}

// Close refuses new requests and streams, ends the open streams, and waits
// for every one in flight to finish: after Close nothing is submitted.
func (p *Path) Close() {
	p.mu.Lock()
	p.closed = true
	stops := p.onClose
	p.onClose = nil
	p.mu.Unlock()
	for _, stop := range stops {
		if stop != nil {
			stop()
		}
	}
	p.active.Wait()
}

// Stats returns a row per token seen, each adding up as a dialed source's
// does.
func (p *Path) Stats() []intake.Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]intake.Stats, 0, len(p.order))
	for _, t := range p.order {
		st := intake.Stats{Name: p.Name(t.token), URL: p.path, Kind: intake.KindPush, State: intake.StateListening,
			Token: t.token, RemoteAddr: t.remote, Clients: len(t.live), Requests: t.requests, Refused: t.refused}
		if p.closed {
			st.State = intake.StateStopped
		}
		c := t.done.Clone()
		last := t.lastMsg
		if t.req != nil {
			c.Add(t.req.Counters())
			if l := t.req.LastMessageAt(); l.After(last) {
				last = l
			}
		}
		for in := range t.live {
			c.Add(in.Counters())
			if l := in.LastMessageAt(); l.After(last) {
				last = l
			}
		}
		if c.ParseErrors == nil { // no push counted yet
			c.Add(intake.Counters{})
		}
		st.Counters, st.LastMessageAt = c, last
		out = append(out, st)
	}
	return out
}

// Health says whether the path takes pushes.
func (p *Path) Health() intake.Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := intake.Health{Name: "push:" + p.proto, URL: p.path, Kind: intake.KindPush, State: intake.StateListening}
	if p.closed {
		h.State = intake.StateStopped
	}
	return h
}

// Serve is the Run of a request-based push source: it waits for ctx to
// end, then closes the path (Close) and logs its summary.
func (p *Path) Serve(ctx context.Context) error {
	<-ctx.Done()
	p.Close()
	p.LogSummary()
	return nil
}

// LogSummary logs the summary line of each token's requests (streams log
// theirs as they go and when they end).
func (p *Path) LogSummary() {
	p.mu.Lock()
	var ins []*intake.Intake
	for _, t := range p.order {
		if t.req != nil {
			ins = append(ins, t.req)
		}
	}
	p.mu.Unlock()
	for _, in := range ins {
		in.LogSummary()
	}
}

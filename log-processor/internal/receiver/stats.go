package receiver

import (
	"context"
	"log/slog"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
)

// Counters say what became of a source's frames, under the names of the
// summary line. They always add up:
//
//	Total = OK + ParseErr + Ignored + BelowMinLevel
//	OK    = Submitted + Dropped
//	ParseErr = sum of ParseErrors
//	Dropped  = sum of DropReasons
type Counters struct {
	Total       uint64            `json:"total"`        // frames received
	OK          uint64            `json:"ok"`           // valid entries
	ParseErr    uint64            `json:"parse_err"`    // rejected frames
	ParseErrors map[string]uint64 `json:"parse_errors"` // rejected frames by reason
	Ignored     uint64            `json:"ignored"`      // control frames (the handshake)
	// BelowMinLevel counts valid entries below the level floor (DEBUG and
	// TRACE by default): not errors, and not stored.
	BelowMinLevel uint64            `json:"below_min_level"`
	Submitted     uint64            `json:"submitted"`    // valid entries the pool accepted
	Dropped       uint64            `json:"dropped"`      // valid entries refused after SubmitTimeout
	DropReasons   map[string]uint64 `json:"drop_reasons"` // dropped, by why the pool was full
}

// Why a valid entry was dropped.
const (
	dropQueueFull = iota // the workers were behind
	dropStorage          // storage was failing, so the workers were blocked
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"queue_full", "storage_unavailable"}

// Add adds o's counts to c.
func (c *Counters) Add(o Counters) {
	c.Total += o.Total
	c.OK += o.OK
	c.ParseErr += o.ParseErr
	c.Ignored += o.Ignored
	c.BelowMinLevel += o.BelowMinLevel
	c.Submitted += o.Submitted
	c.Dropped += o.Dropped
	if c.ParseErrors == nil {
		c.ParseErrors = make(map[string]uint64, len(o.ParseErrors))
	}
	for k, v := range o.ParseErrors {
		c.ParseErrors[k] += v
	}
	if c.DropReasons == nil {
		c.DropReasons = make(map[string]uint64, len(o.DropReasons))
	}
	for k, v := range o.DropReasons {
		c.DropReasons[k] += v
	}
}

// Stats is a snapshot of one source: its connection state and its counters,
// which carry on across reconnects.
type Stats struct {
	URL            string    `json:"url"`   // credentials redacted
	State          string    `json:"state"` // connecting, connected, backoff or stopped
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	Reconnects     uint64    `json:"reconnects"` // connections made after the first
	LastError      string    `json:"last_error,omitempty"`
	LastMessageAt  time.Time `json:"last_message_at,omitzero"`
	Counters
}

// Stats returns a snapshot that adds up (see Counters).
func (r *Receiver) Stats() Stats {
	s := Stats{URL: r.name, Counters: r.counters()}
	if ns := r.lastMsg.Load(); ns != 0 {
		s.LastMessageAt = time.Unix(0, ns).UTC()
	}
	r.mu.Lock()
	s.State, s.Reconnects, s.LastError = r.state, r.reconnects, r.lastError
	if !r.connectedSince.IsZero() {
		s.ConnectedSince = r.connectedSince.UTC()
	}
	r.mu.Unlock()
	return s
}

func (r *Receiver) counters() Counters {
	c := Counters{
		ParseErrors:   make(map[string]uint64, parser.NumReasons),
		Ignored:       r.outcomes[parser.Control].Load(),
		BelowMinLevel: r.outcomes[parser.BelowMinLevel].Load(),
		Submitted:     r.submitted.Load(),
		DropReasons:   make(map[string]uint64, numDropReasons),
	}
	for i := range r.dropped {
		n := r.dropped[i].Load()
		c.DropReasons[dropReasonNames[i]] = n
		c.Dropped += n
	}
	for reason := parser.Control + 1; reason < parser.NumReasons; reason++ {
		if !reason.IsError() {
			continue
		}
		n := r.outcomes[reason].Load()
		c.ParseErrors[reason.String()] = n
		c.ParseErr += n
	}
	c.OK = c.Submitted + c.Dropped
	c.Total = c.OK + c.ParseErr + c.Ignored + c.BelowMinLevel
	return c
}

// LogSummary logs the source's summary line, in the seed's terms, at Info,
// or at Warn when entries have been dropped since the previous line.
func (r *Receiver) LogSummary() {
	c := r.counters()
	p := r.pool.Stats()
	level := slog.LevelInfo
	if prev := r.summaryDrop.Swap(c.Dropped); c.Dropped > prev {
		level = slog.LevelWarn
	}
	// queue, processed and workers are the pool's, shared by every source:
	// grouped as pool.* so that a fan-in line does not read as this
	// source's own.
	r.log.Log(context.Background(), level, "summary",
		"total", c.Total, "ok", c.OK, "parse_err", c.ParseErr, "ignored", c.Ignored, "below_min_level", c.BelowMinLevel,
		"submitted", c.Submitted, "dropped", c.Dropped,
		slog.Group("pool", "queue", p.Queue, "processed", p.Processed, "workers", p.Workers))
}

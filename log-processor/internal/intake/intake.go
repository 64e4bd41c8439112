// Package intake turns what sources receive into entries for the queue
// and counts what became of every frame, line or record: every source
// kind (a dialed WebSocket, a pushing client, each ingest protocol) feeds
// one Intake per source, and they all submit through one Sink, the
// pipeline's queue.
//
// A source that reads a stream (a WebSocket) calls Frame, Lines, Count and
// Flush from its one reading goroutine; entries are submitted in small
// batches (at most PendingMax, and whenever the source is about to wait
// for more input it calls Flush), and a full queue drops them (or, with
// Config.Block, slows the source). A
// source that takes requests (an HTTP push) parses each request into a
// Batch and submits it whole or not at all, so that a pusher told to retry
// neither loses nor doubles lines; its requests may run concurrently.
package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// DefaultSummaryInterval is how often, at most, a streaming source logs
// its summary line while frames flow.
const DefaultSummaryInterval = 10 * time.Second

// PendingMax is the most entries a streaming source holds before it
// submits them: one queue operation per batch instead of one per entry.
// It matches the pool's batch (workerpool.DefaultMaxBatch), so that a
// flood's batch reaches one worker and one Store.Save whole.
const PendingMax = 256

// DefaultSubmitTimeout is how long a streaming source waits for room in a
// full queue before dropping an entry, when Config.SubmitTimeout is zero.
const DefaultSubmitTimeout = 10 * time.Millisecond

// Sink is where every source's intakes submit: the pipeline's queue, the
// parser settings they share, and why the queue cannot drain when it
// cannot. NewSink makes it; pipeline.New connects it to the queue, once,
// before any source runs. Its methods are safe for concurrent use.
type Sink struct {
	parser     parser.Parser
	summary    time.Duration
	ack        Ack
	ackTimeout time.Duration
	queue      queue.Queue
	blocked    func() string
	// keep is how many bytes of a record the parser refused on a request
	// path are kept as a dead letter (0: none); setAside keeps them.
	keep     int
	setAside func(ctx context.Context, source string, rs []Refusal) error
}

// Refusal is a record the parser refused on a request path: its reason,
// its first bytes and the service it was parsed with, kept as a dead
// letter.
type Refusal struct {
	Reason    parser.Reason
	Record    []byte
	Truncated bool
	Service   string
}

// MaxRefusalsKept and MaxRefusedBytesKept bound the refused records of
// one request kept as dead letters; the rest are counted only.
const (
	MaxRefusalsKept     = 100
	MaxRefusedBytesKept = 256 << 10
)

// SinkConfig describes a Sink. A zero field means its default.
type SinkConfig struct {
	// Parser holds the settings every source parses with; each intake
	// sets its own DefaultService.
	Parser parser.Parser
	// SummaryInterval is how often a streaming source logs its summary
	// line while frames flow; 0: only when it stops.
	SummaryInterval time.Duration
	// Ack is when a request's entries are acknowledged (AckQueued when
	// empty), and AckTimeout (DefaultAckTimeout when zero) how long, at
	// most, a request waits with AckStored.
	Ack        Ack
	AckTimeout time.Duration
	// KeepRefused is how many bytes of each record the parser refuses on
	// a request path are kept as a dead letter; 0 keeps none.
	KeepRefused int
}

// Ack is when a request's entries count as taken: the answer a pushing
// client gets says so.
type Ack string

// Acks.
const (
	// AckQueued: once they are in the queue (memory, or the bus's
	// publisher); a crash before they are stored loses them.
	AckQueued Ack = "queued"
	// AckStored: once they are durable: committed by the store, or
	// acknowledged by the stream.
	AckStored Ack = "stored"
)

// ParseAck returns the Ack named s.
func ParseAck(s string) (Ack, error) {
	switch a := Ack(s); a {
	case AckQueued, AckStored:
		return a, nil
	}
	return "", fmt.Errorf("unknown ack %q: want stored or queued", s)
}

// DefaultAckTimeout bounds a request's wait for its entries to be stored
// (with AckStored): a batch's linger and a commit, with room to spare.
const DefaultAckTimeout = 5 * time.Second

// NewSink returns a Sink, to be connected to a queue before use.
func NewSink(cfg SinkConfig) *Sink {
	if cfg.Ack == "" {
		cfg.Ack = AckQueued
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
	}
	return &Sink{parser: cfg.Parser, summary: cfg.SummaryInterval, ack: cfg.Ack, ackTimeout: cfg.AckTimeout, keep: cfg.KeepRefused}
}

// SetAsideWith sets where the records refused on request paths are kept
// (the store's dead letters). Called once, before any source runs.
func (s *Sink) SetAsideWith(f func(ctx context.Context, source string, rs []Refusal) error) {
	s.setAside = f
}

// AckTimeout returns how long, at most, a request waits for its entries
// to be stored.
func (s *Sink) AckTimeout() time.Duration { return s.ackTimeout }

// Ack returns when the sink's requests are acknowledged.
func (s *Sink) Ack() Ack { return s.ack }

// Connect sets the queue the intakes submit into and blocked, which says
// why it cannot drain (a drop reason such as DropStorageUnavailable), or ""
// when it can; blocked may be nil. Called once, before any source runs.
func (s *Sink) Connect(q queue.Queue, blocked func() string) {
	s.queue, s.blocked = q, blocked
}

// Parser returns the parser settings every source shares.
func (s *Sink) Parser() parser.Parser { return s.parser }

// QueueStats returns the queue's stats, for the sources' summary lines.
func (s *Sink) QueueStats() queue.Stats { return s.queue.Stats() }

// Config describes one Intake. A zero field means its default.
type Config struct {
	// Name is recorded as each entry's Source and names the source in its
	// summary lines.
	Name string
	// Service names the service of entries that name none.
	Service string
	// SubmitTimeout is how long a streaming source waits for room in a
	// full queue before dropping an entry.
	SubmitTimeout time.Duration
	// Block, when set, makes a full queue slow a streaming source (wait
	// until Block ends) instead of dropping after SubmitTimeout.
	Block context.Context
	// Quiet turns off the summary lines while frames flow (a source that
	// logs its own).
	Quiet bool
}

// Intake is one source's: its parser, its counters and its summary line.
// Its counters may be read at any time, from any goroutine.
type Intake struct {
	sink          *Sink
	name          string
	parser        parser.Parser // with the source's default service
	submitTimeout time.Duration
	block         context.Context
	log           *slog.Logger
	summaryEvery  time.Duration

	// Outcome counters. Every total shown to readers is derived from
	// these, so a snapshot always adds up.
	outcomes    [parser.NumReasons]atomic.Uint64 // by parser.Reason; OK unused
	submitted   atomic.Uint64
	unconfirmed atomic.Uint64
	dropped     [numDropReasons]atomic.Uint64
	lastMsg     atomic.Int64 // Unix ns of the last frame; 0 = none yet

	lastSummary time.Time     // owned by the streaming goroutine
	lastStored  int64         // the last value stored in lastMsg; owned by the streaming goroutine
	summaryDrop atomic.Uint64 // Dropped as of the last summary line

	// pending are valid entries parsed and not yet submitted (its slots
	// past its length are zero: Flush clears what it submits); owned by
	// the streaming goroutine (see Flush).
	pending []models.LogEntry
	// shape is the keys of the frames read so far; owned by the streaming
	// goroutine.
	shape parser.Shape
}

// NewIntake returns an Intake submitting into s, logging with logger.
func (s *Sink) NewIntake(cfg Config, logger *slog.Logger) *Intake {
	if cfg.SubmitTimeout <= 0 {
		cfg.SubmitTimeout = DefaultSubmitTimeout
	}
	p := s.parser
	p.DefaultService = cfg.Service
	in := &Intake{sink: s, name: cfg.Name, parser: p, submitTimeout: cfg.SubmitTimeout, block: cfg.Block, log: logger}
	if !cfg.Quiet {
		in.summaryEvery = s.summary
	}
	return in
}

// Name returns the name recorded as its entries' Source.
func (in *Intake) Name() string { return in.name }

// Count counts a frame that was not parsed: too large, or binary.
// Streaming sources only.
func (in *Intake) Count(r parser.Reason, now time.Time) {
	in.seen(now)
	in.outcomes[r].Add(1)
}

// Frame parses one frame, a JSON object (or an OpenTelemetry export),
// counts the outcome and keeps what it holds for submission (see Flush).
// now is the receive time. Streaming sources only.
func (in *Intake) Frame(data []byte, now time.Time) {
	in.seen(now)
	in.frame(data, now)
	in.maybeSummary(now)
}

// Lines is Frame for each non-blank line of data (newline-delimited JSON),
// then Flush. Streaming sources only.
func (in *Intake) Lines(data []byte, now time.Time) {
	in.seen(now)
	for line := range Lines(data) {
		in.frame(line, now)
	}
	in.Flush()
	in.maybeSummary(now)
}

// Lines yields each non-blank line of data, without its line ending.
func Lines(data []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(data) > 0 {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if len(bytes.TrimSpace(line)) > 0 && !yield(line) {
				return
			}
		}
	}
}

func (in *Intake) seen(now time.Time) {
	if ns := now.UnixNano(); ns != in.lastStored {
		in.lastStored = ns
		in.lastMsg.Store(ns)
	}
}

func (in *Intake) frame(data []byte, now time.Time) {
	// The entry is parsed straight into the next slot of pending, which is
	// zero (see Flush) and stays so unless the frame is an entry.
	n := len(in.pending)
	in.pending = slices.Grow(in.pending, 1)[:n+1]
	r := in.parser.ParseInto(&in.shape, data, now, &in.pending[n])
	if r != parser.Multi {
		in.outcome(n, r, now)
		return
	}
	in.pending = in.pending[:n]
	in.parser.ParseEach(data, now, func(e models.LogEntry, r parser.Reason) bool {
		n := len(in.pending)
		if r.IsEntry() {
			in.pending = append(in.pending, e)
		}
		in.outcome(n, r, now)
		return true
	})
}

// outcome counts one parsed record and, if it is a valid entry, keeps it
// for submission: pending[n], the last entry of pending when reason is
// an entry's, or just past its end otherwise.
func (in *Intake) outcome(n int, reason parser.Reason, now time.Time) {
	if !reason.IsEntry() {
		in.pending = in.pending[:n]
		in.outcomes[reason].Add(1)
		return
	}
	if reason == parser.DefaultLevel {
		in.outcomes[reason].Add(1) // and counted as ok when submitted or dropped
	}
	e := &in.pending[n]
	e.Source, e.ReceivedAt = in.name, now.UnixMilli()
	if len(in.pending) >= PendingMax {
		in.Flush()
	}
}

// Flush submits the entries kept so far, as one batch: a streaming source
// calls it whenever it is about to wait for input, so that an entry never
// waits for the next frame. A full queue drops the batch after the submit
// timeout (or, with Config.Block, waits). Streaming sources only.
func (in *Intake) Flush() {
	n := len(in.pending)
	if n == 0 {
		return
	}
	q := in.sink.queue
	err := q.SubmitAll(in.pending, in.submitTimeout, nil)
	for errors.Is(err, queue.ErrFull) && in.block != nil && in.block.Err() == nil {
		err = q.SubmitAll(in.pending, time.Second, nil) // slowed, not dropped
	}
	if errors.Is(err, queue.ErrTooLarge) { // a queue smaller than a batch: one at a time
		err = nil
		for i := range in.pending {
			ok := q.SubmitWithTimeout(in.pending[i], in.submitTimeout)
			for !ok && in.block != nil && in.block.Err() == nil {
				ok = q.SubmitWithTimeout(in.pending[i], time.Second)
			}
			if ok {
				in.submitted.Add(1)
			} else {
				in.drop(1)
			}
		}
		n = 0
	}
	switch {
	case err == nil:
		in.submitted.Add(uint64(n))
	default:
		in.drop(uint64(n))
	}
	clear(in.pending)
	in.pending = in.pending[:0]
}

// drop counts n entries dropped, under why the queue is full.
func (in *Intake) drop(n uint64) {
	i := dropQueueFull
	if in.sink.blocked != nil {
		i = dropReasonIndex(in.sink.blocked())
	}
	in.dropped[i].Add(n)
}

func (in *Intake) maybeSummary(now time.Time) {
	if in.summaryEvery > 0 && now.Sub(in.lastSummary) >= in.summaryEvery {
		in.lastSummary = now
		in.LogSummary()
	}
}

// Counters returns a snapshot that adds up (see Counters).
func (in *Intake) Counters() Counters {
	c := Counters{
		ParseErrors:   make(map[string]uint64, parser.NumReasons),
		Ignored:       in.outcomes[parser.Control].Load(),
		BelowMinLevel: in.outcomes[parser.BelowMinLevel].Load(),
		DefaultLevel:  in.outcomes[parser.DefaultLevel].Load(),
		Submitted:     in.submitted.Load(),
		Unconfirmed:   in.unconfirmed.Load(),
		DropReasons:   make(map[string]uint64, numDropReasons),
	}
	for i := range in.dropped {
		n := in.dropped[i].Load()
		c.DropReasons[dropReasonNames[i]] = n
		c.Dropped += n
	}
	for reason := parser.Control + 1; reason < parser.NumReasons; reason++ {
		if !reason.IsError() {
			continue
		}
		n := in.outcomes[reason].Load()
		c.ParseErrors[reason.String()] = n
		c.ParseErr += n
	}
	c.OK = c.Submitted + c.Dropped
	c.Total = c.OK + c.ParseErr + c.Ignored + c.BelowMinLevel
	return c
}

// LastMessageAt is when the last frame arrived; zero if none has.
func (in *Intake) LastMessageAt() time.Time {
	if ns := in.lastMsg.Load(); ns != 0 {
		return time.Unix(0, ns).UTC()
	}
	return time.Time{}
}

// LogSummary logs the source's summary line, in the original design's
// terms, at Info, or at Warn when entries have been dropped since the
// previous line.
func (in *Intake) LogSummary() {
	c := in.Counters()
	q := in.sink.QueueStats()
	level := slog.LevelInfo
	if prev := in.summaryDrop.Swap(c.Dropped); c.Dropped > prev {
		level = slog.LevelWarn
	}
	// queue, processed and workers are the queue's, shared by every
	// source: grouped as pool.* so that a fan-in line does not read as
	// this source's own.
	in.log.Log(context.Background(), level, "summary",
		"total", c.Total, "ok", c.OK, "parse_err", c.ParseErr, "ignored", c.Ignored, "below_min_level", c.BelowMinLevel,
		"submitted", c.Submitted, "dropped", c.Dropped, "default_level", c.DefaultLevel,
		slog.Group("pool", "queue", q.Queued, "processed", q.Processed, "workers", q.Workers))
}

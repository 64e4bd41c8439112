package receiver

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Intake is the part of every source that turns frames into entries for
// the pool and counts what became of each: a dialed WebSocket source
// (Receiver) and a pushing client (package ingest) both feed one. Its
// counters may be read at any time; Frame, Lines and Count are called by
// one goroutine at a time, Prepare and Commit by any.
type Intake struct {
	name          string        // the source's name, recorded as each entry's Source
	parser        parser.Parser // with the source's default service
	pool          Pool
	submitTimeout time.Duration
	// block, when set, makes a full pool wait (until the context ends)
	// instead of dropping after submitTimeout: the source is slowed.
	block        context.Context
	blocked      func() string
	log          *slog.Logger
	summaryEvery time.Duration

	multi []parser.Result // reused for frames of many records

	// Outcome counters, each written by the feeding goroutine only. Every
	// total shown to readers is derived from these, so a snapshot always
	// adds up.
	outcomes  [parser.NumReasons]atomic.Uint64 // by parser.Reason; OK unused
	submitted atomic.Uint64
	dropped   [numDropReasons]atomic.Uint64
	lastMsg   atomic.Int64 // Unix ns of the last frame; 0 = none yet

	lastSummary time.Time     // owned by the feeding goroutine
	lastStored  int64         // the last value stored in lastMsg; owned by the feeding goroutine
	summaryDrop atomic.Uint64 // Dropped as of the last summary line
}

// IntakeConfig describes an Intake. Zero durations mean their defaults.
type IntakeConfig struct {
	Name            string        // recorded as each entry's Source
	Parser          parser.Parser // with DefaultService the service of entries that name none
	SubmitTimeout   time.Duration // longest wait for room before dropping (unless Block)
	Block           context.Context
	Blocked         func() string
	SummaryInterval time.Duration // 0: no summary lines while frames flow
}

// NewIntake returns an Intake submitting into pool, logging with logger.
func NewIntake(cfg IntakeConfig, pool Pool, logger *slog.Logger) *Intake {
	if cfg.SubmitTimeout <= 0 {
		cfg.SubmitTimeout = DefaultSubmitTimeout
	}
	return &Intake{
		name: cfg.Name, parser: cfg.Parser, pool: pool, submitTimeout: cfg.SubmitTimeout, block: cfg.Block,
		blocked: cfg.Blocked, log: logger, summaryEvery: cfg.SummaryInterval,
	}
}

// Count counts a frame that was not parsed: too large, or binary.
func (in *Intake) Count(r parser.Reason, now time.Time) {
	in.seen(now)
	in.outcomes[r].Add(1)
}

// Frame parses one frame, a JSON object (or an OpenTelemetry export),
// submits what it holds and counts the outcome. now is the receive time.
func (in *Intake) Frame(data []byte, now time.Time) {
	in.seen(now)
	in.frame(data, now)
	in.maybeSummary(now)
}

// Lines is Frame for each non-blank line of data (newline-delimited JSON).
func (in *Intake) Lines(data []byte, now time.Time) {
	in.seen(now)
	eachLine(data, func(line []byte) { in.frame(line, now) })
	in.maybeSummary(now)
}

// eachLine calls fn with each non-blank line of data.
func eachLine(data []byte, fn func(line []byte)) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			fn(line)
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
	in.multi = in.records(data, now, in.multi, func(e *models.LogEntry, r parser.Reason) { in.outcome(e, r, now) })
}

// records parses one frame and calls fn with each record's outcome: the
// frame's own, or each record of an OpenTelemetry export, parsed into
// multi (a buffer to reuse, returned for the next call).
func (in *Intake) records(data []byte, now time.Time, multi []parser.Result, fn func(*models.LogEntry, parser.Reason)) []parser.Result {
	e, reason := in.parser.Parse(data, now)
	if reason != parser.Multi {
		fn(&e, reason)
		return multi
	}
	multi = in.parser.ParseAll(multi[:0], data, now)
	for i := range multi {
		fn(&multi[i].Entry, multi[i].Reason)
	}
	clear(multi)
	return multi
}

// outcome counts one parsed record and submits it if it is a valid entry.
func (in *Intake) outcome(e *models.LogEntry, reason parser.Reason, now time.Time) {
	if !reason.IsEntry() {
		in.outcomes[reason].Add(1)
		return
	}
	if reason == parser.DefaultLevel {
		in.outcomes[reason].Add(1) // also submitted: counted as ok below
	}
	e.Source, e.ReceivedAt = in.name, now.UnixMilli()
	ok := in.pool.SubmitWithTimeout(*e, in.submitTimeout)
	for !ok && in.block != nil && in.block.Err() == nil {
		ok = in.pool.SubmitWithTimeout(*e, time.Second) // slowed, not dropped
	}
	switch {
	case ok:
		in.submitted.Add(1)
	case in.blocked != nil:
		in.dropped[dropReasonIndex(in.blocked())].Add(1)
	default:
		in.dropped[dropQueueFull].Add(1)
	}
}

func (in *Intake) maybeSummary(now time.Time) {
	if in.summaryEvery > 0 && now.Sub(in.lastSummary) >= in.summaryEvery {
		in.lastSummary = now
		in.LogSummary()
	}
}

// Tally is what Prepare found in a request: entries ready to queue and
// the count of every outcome, not yet added to any Intake.
type Tally struct {
	Entries  []models.LogEntry
	Outcomes [parser.NumReasons]uint64
}

// Prepare parses each non-blank line of data (or each element, when data
// is a JSON array) without submitting or counting anything: the caller
// queues Entries whole (Pool.SubmitAll) and then calls Commit, or refuses
// the request and counts nothing, so that a retried request is not
// counted twice.
func (in *Intake) Prepare(t *Tally, data []byte, elements [][]byte, now time.Time) {
	add := func(e *models.LogEntry, r parser.Reason) {
		t.Outcomes[r]++
		if r.IsEntry() {
			e.Source, e.ReceivedAt = in.name, now.UnixMilli()
			t.Entries = append(t.Entries, *e)
		}
	}
	var multi []parser.Result // this call's own: Prepare may run concurrently
	one := func(line []byte) { multi = in.records(line, now, multi, add) }
	for _, el := range elements {
		one(el)
	}
	eachLine(data, one)
}

// Commit counts a prepared request whose entries the pool accepted. Unlike
// Frame, it may be called concurrently.
func (in *Intake) Commit(t *Tally, now time.Time) {
	in.lastMsg.Store(now.UnixNano())
	for r, n := range t.Outcomes {
		if parser.Reason(r) != parser.OK && n > 0 {
			in.outcomes[r].Add(n)
		}
	}
	in.submitted.Add(uint64(len(t.Entries)))
}

// Counters returns a snapshot that adds up (see Counters).
func (in *Intake) Counters() Counters {
	c := Counters{
		ParseErrors:   make(map[string]uint64, parser.NumReasons),
		Ignored:       in.outcomes[parser.Control].Load(),
		BelowMinLevel: in.outcomes[parser.BelowMinLevel].Load(),
		Submitted:     in.submitted.Load(),
		DefaultLevel:  in.outcomes[parser.DefaultLevel].Load(),
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

// LogSummary logs the source's summary line, in the seed's terms, at Info,
// or at Warn when entries have been dropped since the previous line.
func (in *Intake) LogSummary() {
	c := in.Counters()
	p := in.pool.Stats()
	level := slog.LevelInfo
	if prev := in.summaryDrop.Swap(c.Dropped); c.Dropped > prev {
		level = slog.LevelWarn
	}
	// queue, processed and workers are the pool's, shared by every source:
	// grouped as pool.* so that a fan-in line does not read as this
	// source's own.
	in.log.Log(context.Background(), level, "summary",
		"total", c.Total, "ok", c.OK, "parse_err", c.ParseErr, "ignored", c.Ignored, "below_min_level", c.BelowMinLevel,
		"submitted", c.Submitted, "dropped", c.Dropped, "default_level", c.DefaultLevel,
		slog.Group("pool", "queue", p.Queue, "processed", p.Processed, "workers", p.Workers))
}

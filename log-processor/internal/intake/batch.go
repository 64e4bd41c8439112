package intake

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Why a Batch refused a record.
var (
	// ErrTooMany: the request holds more records than Batch.MaxEntries.
	ErrTooMany = errors.New("more records than one request may hold")
	// ErrBusy: the entry's bytes did not fit the in-flight budget
	// (Batch.Reserve said no).
	ErrBusy = errors.New("no room for the request's entries in the in-flight byte budget")
)

// Batch is one request's records, parsed and counted but neither queued
// nor added to any Intake's counters until Submit takes them all. It is
// used by one goroutine at a time; Reset empties it for reuse.
type Batch struct {
	Entries  []models.LogEntry
	Outcomes [parser.NumReasons]uint64
	// Bytes is the memory of Entries (models.LogEntry.Size).
	Bytes int64
	// MaxEntries bounds the records of the request (valid or not): past
	// it Parse and Add return ErrTooMany. Zero means no bound.
	MaxEntries int
	// Reserve, when set, is asked for each kept entry's Size before it is
	// kept, so that what a request holds is within a budget; false
	// refuses the entry with ErrBusy.
	Reserve func(n int64) bool

	records      int
	keyEpoch     int64 // of SetKey's key; 0 for none
	keyPos       int64 // the next record's position under the key
	refused      []Refusal
	refusedBytes int          // of refused's records
	shape        parser.Shape // the keys of the records parsed so far
}

// SetKey gives the records that follow an identity under key (see
// models.KeyEpoch), the first position 0 and each next record the next,
// so that storage keeps them once however often they are sent; "" gives
// none. A request's Idempotency-Key is one key for all its records; a bulk
// document's _id, one key per document.
func (b *Batch) SetKey(key string) {
	b.keyEpoch, b.keyPos = 0, 0
	if key != "" {
		b.keyEpoch = models.KeyEpoch(key)
	}
}

// Reset empties b for another request, keeping its settings and buffers
// (entries' strings are let go).
func (b *Batch) Reset() {
	clear(b.Entries)
	b.Entries, b.Outcomes, b.Bytes, b.records = b.Entries[:0], [parser.NumReasons]uint64{}, 0, 0
	b.keyEpoch, b.keyPos = 0, 0
	clear(b.refused)
	b.refused, b.refusedBytes = b.refused[:0], 0
}

// Refused returns how many of b's records the parser's rules refused, and
// their reasons with counts, by name: "invalid_level 2, missing_message 1".
func (b *Batch) Refused() (n uint64, reasons string) {
	var parts []string
	for r, c := range b.Outcomes {
		if reason := parser.Reason(r); c > 0 && reason.IsError() {
			n += c
			parts = append(parts, fmt.Sprintf("%s %d", reason, c))
		}
	}
	slices.Sort(parts)
	return n, strings.Join(parts, ", ")
}

// Records returns how many records b has taken, valid or not.
func (b *Batch) Records() int { return b.records }

// Parse parses one record (a JSON object, or an OpenTelemetry export of
// many) into b and returns its outcome (for an export, the last
// record's).
func (in *Intake) Parse(b *Batch, record []byte, now time.Time) (parser.Reason, error) {
	return in.parse(&in.parser, b, record, now)
}

// ParseAs is Parse with service as the service of a record that names
// none (the intake's default when service is empty): for protocols whose
// requests say where each record belongs, as a bulk request's index.
func (in *Intake) ParseAs(b *Batch, record []byte, service string, now time.Time) (parser.Reason, error) {
	if service == "" || service == in.parser.DefaultService {
		return in.parse(&in.parser, b, record, now)
	}
	p := in.parser
	p.DefaultService = service
	return in.parse(&p, b, record, now)
}

func (in *Intake) parse(p *parser.Parser, b *Batch, record []byte, now time.Time) (parser.Reason, error) {
	e, r := p.ParseWith(&b.shape, record, now)
	if r != parser.Multi {
		if r.IsError() && in.sink.keep > 0 {
			in.keepRefused(b, r, record, p.DefaultService)
		}
		return r, in.Add(b, e, r, now)
	}
	var err error
	p.ParseEach(record, now, func(e models.LogEntry, er parser.Reason) bool {
		r, err = er, in.Add(b, e, er, now)
		return err == nil
	})
	return r, err
}

// keepRefused keeps a refused record's first bytes in b, to be set aside
// as a dead letter when b is submitted: at most MaxRefusalsKept records
// and MaxRefusedBytesKept bytes a request, so that it never waits for
// the in-flight budget (a request that refuses records must not be slowed
// by keeping them) and its cost stays small.
func (in *Intake) keepRefused(b *Batch, r parser.Reason, record []byte, service string) {
	n := min(len(record), in.sink.keep, MaxRefusedBytesKept-b.refusedBytes)
	if len(b.refused) >= MaxRefusalsKept || n <= 0 {
		return
	}
	b.refusedBytes += n
	b.refused = append(b.refused, Refusal{Reason: r, Record: bytes.Clone(record[:n]), Truncated: n < len(record), Service: service})
}

// Add takes one record's outcome into b: r, and e when r says it is a
// valid entry (it is given this intake's name and now as received).
func (in *Intake) Add(b *Batch, e models.LogEntry, r parser.Reason, now time.Time) error {
	if b.MaxEntries > 0 && b.records >= b.MaxEntries {
		return ErrTooMany
	}
	b.records++
	pos := b.keyPos
	b.keyPos++
	if r.IsEntry() {
		size := int64(e.Size())
		if b.Reserve != nil && !b.Reserve(size) {
			return ErrBusy
		}
		e.Source, e.ReceivedAt = in.name, now.UnixMilli()
		if b.keyEpoch != 0 {
			e.Bus = models.BusID{Epoch: b.keyEpoch, Pos: pos}
		}
		b.Entries = append(b.Entries, e)
		b.Bytes += size
	}
	b.Outcomes[r]++
	return nil
}

// Submit queues b's entries whole or not at all, waiting at most timeout
// for room: nil, queue.ErrTooLarge (they never fit) or queue.ErrFull. On
// success it adds b's outcomes to the intake's counters; on failure it
// counts nothing, so that a retried request is not counted twice. Submit
// may be called concurrently for different batches.
//
// With AckStored, Submit then waits until the entries are durable, or
// ctx ends, or the sink's ack timeout passes: queue.ErrUnconfirmed (the
// request's answer must be a retryable refusal: the entries were queued,
// and may yet be stored, but were not confirmed). Those are counted as
// submitted, and under Counters.Unconfirmed.
func (in *Intake) Submit(ctx context.Context, b *Batch, timeout time.Duration) error {
	p, err := in.SubmitPending(b, timeout)
	if err != nil {
		return err
	}
	return in.Confirm(ctx, p)
}

// setAsideTimeout bounds keeping a request's refused records.
const setAsideTimeout = 5 * time.Second

// Pending is a submitted batch's acknowledgement, for Confirm: nil when
// there is nothing to wait for (AckQueued, or no entries).
type Pending struct {
	ack *queue.Ack
	n   int
}

// SubmitPending is Submit without the wait: the caller confirms the
// batch later with Confirm (a WebSocket pusher's frames are read on while
// the ones before are stored). b may be reused once it returns.
func (in *Intake) SubmitPending(b *Batch, timeout time.Duration) (*Pending, error) {
	var p *Pending
	if in.sink.ack == AckStored && len(b.Entries) > 0 {
		p = &Pending{ack: queue.NewAck(len(b.Entries)), n: len(b.Entries)}
	}
	var ack *queue.Ack
	if p != nil {
		ack = p.ack
	}
	if err := in.sink.queue.SubmitAll(b.Entries, timeout, ack); err != nil {
		return nil, err
	}
	if len(b.refused) > 0 && in.sink.setAside != nil {
		ctx, cancel := context.WithTimeout(context.Background(), setAsideTimeout)
		if err := in.sink.setAside(ctx, in.name, b.refused); err != nil {
			in.log.Error("refused records not kept as dead letters", "records", len(b.refused), "err", err)
		}
		cancel()
	}
	in.lastMsg.Store(time.Now().UnixNano())
	for r, n := range b.Outcomes {
		if r := parser.Reason(r); n > 0 && r != parser.OK {
			in.outcomes[r].Add(n)
		}
	}
	in.submitted.Add(uint64(len(b.Entries)))
	return p, nil
}

// Confirm waits until p's entries are durable, or ctx ends, or the sink's
// ack timeout passes: queue.ErrUnconfirmed, and the entries are counted
// under Counters.Unconfirmed. A nil p is confirmed at once.
func (in *Intake) Confirm(ctx context.Context, p *Pending) error {
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, in.sink.ackTimeout)
	defer cancel()
	if err := p.ack.Wait(ctx); err != nil {
		in.unconfirmed.Add(uint64(p.n))
		return err
	}
	return nil
}

// ParseExport parses data as an OpenTelemetry logs export (OTLP/JSON)
// into b, record by record, and returns parser.Multi. When data is no
// export it takes nothing into b and returns data's own outcome: a
// structural reason (not JSON, not an object, too deep, not UTF-8), or
// another for a well-formed object that holds no export.
func (in *Intake) ParseExport(b *Batch, data []byte, now time.Time) (parser.Reason, error) {
	if _, r := in.parser.Parse(data, now); r != parser.Multi {
		return r, nil
	}
	var err error
	in.parser.ParseEach(data, now, func(e models.LogEntry, r parser.Reason) bool {
		err = in.Add(b, e, r, now)
		return err == nil
	})
	return parser.Multi, err
}

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// ErrNoIngest: a replay needs a processor that ingests (not --role store).
var ErrNoIngest = errors.New("this processor does not ingest (--role store): replay dead letters on one that does")

// What became of one dead letter in a replay.
const (
	// ReplayStored: its entries are stored, and it was let go.
	ReplayStored = "stored"
	// ReplayRefused: the parser's rules still refuse it (Reason says
	// why); it is kept.
	ReplayRefused = "refused"
	// ReplayIgnored: the rules now store nothing of it (below the minimum
	// level, or no log at all); it is kept.
	ReplayIgnored = "ignored"
	// ReplayTruncated: only its first bytes were kept, which cannot be
	// parsed as it came; it is kept.
	ReplayTruncated = "truncated"
)

// ReplayItem is what became of one dead letter.
type ReplayItem struct {
	ID      int64  `json:"id"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Entries int    `json:"entries,omitempty"`
}

// Replayed is a replay's answer: how many dead letters had each outcome,
// and each one's, newest first.
type Replayed struct {
	Stored    int          `json:"stored"`
	Refused   int          `json:"refused"`
	Ignored   int          `json:"ignored"`
	Truncated int          `json:"truncated"`
	Items     []ReplayItem `json:"items"`
}

// replaySubmitWait is how long a replay waits for room in the queue.
const replaySubmitWait = time.Second

// Replay submits again the dead letters f selects, as they are parsed and
// checked now (after the configuration was fixed, say), and lets go of
// those whose entries are then stored: a record is parsed as its path did
// (with the service it was given there), an entry the database refused is
// checked again. It waits until the entries are durable, as a push with
// --ack stored does; if they are not confirmed in time (queue.ErrFull,
// queue.ErrUnconfirmed) nothing is let go, and a retry stores them once,
// as each replayed entry has an identity from its dead letter's id. An
// entry the database refuses again is set aside anew, under a new id.
func (p *Pipeline) Replay(ctx context.Context, f storage.RejectedFilter) (Replayed, error) {
	if p.queue == nil || p.cfg.Sink == nil {
		return Replayed{}, ErrNoIngest
	}
	rs, err := p.store.ListRejected(ctx, f)
	if err != nil {
		return Replayed{}, fmt.Errorf("read dead letters: %w", err)
	}
	now := time.Now()
	pr := p.cfg.Sink.Parser()
	out := Replayed{Items: make([]ReplayItem, len(rs))}
	var entries []models.LogEntry
	var stored []int64
	for i := range rs {
		item, es := replayed(pr, &rs[i], now)
		switch item.Status {
		case ReplayStored:
			out.Stored++
			stored = append(stored, item.ID)
			entries = append(entries, es...)
		case ReplayRefused:
			out.Refused++
		case ReplayIgnored:
			out.Ignored++
		case ReplayTruncated:
			out.Truncated++
		}
		out.Items[i] = item
	}
	if len(entries) > 0 {
		ack := queue.NewAck(len(entries))
		if err := p.queue.SubmitAll(entries, replaySubmitWait, ack); err != nil {
			return Replayed{}, err
		}
		wait, cancel := context.WithTimeout(ctx, p.cfg.Sink.AckTimeout())
		defer cancel()
		if err := ack.Wait(wait); err != nil {
			return Replayed{}, err
		}
	}
	if _, err := p.store.ForgetRejected(ctx, stored); err != nil {
		// Stored, but kept: a second replay stores them once more only
		// where the store cannot see their identity (see Replay).
		return Replayed{}, fmt.Errorf("entries stored, but their dead letters not let go: %w", err)
	}
	p.log.Info("dead letters replayed", "stored", out.Stored, "entries", len(entries), "refused", out.Refused,
		"ignored", out.Ignored, "truncated", out.Truncated)
	return out, nil
}

// replayed parses or checks one dead letter as the rules stand at now:
// what became of it, and its entries when they are to be stored.
func replayed(pr parser.Parser, r *storage.Rejected, now time.Time) (ReplayItem, []models.LogEntry) {
	item := ReplayItem{ID: r.ID}
	epoch := models.KeyEpoch("dead letter " + strconv.FormatInt(r.ID, 10))
	var es []models.LogEntry
	reason := parser.OK
	take := func(e models.LogEntry, er parser.Reason) bool {
		switch {
		case er.IsEntry():
			if e.Bus.IsZero() {
				e.Bus = models.BusID{Epoch: epoch, Pos: int64(len(es))}
			}
			es = append(es, e)
		case er.IsError():
			reason = er
			return false
		case reason == parser.OK:
			reason = er // why nothing is stored, should nothing be
		}
		return true
	}
	switch {
	case r.Entry != nil:
		e := *r.Entry
		take(e, pr.Check(&e, now))
	case r.Truncated:
		item.Status = ReplayTruncated
		return item, nil
	default:
		pr.DefaultService = r.Service
		data := []byte(r.Record)
		e, er := pr.Parse(data, now)
		if er != parser.Multi {
			take(e, er)
		} else {
			pr.ParseEach(data, now, take)
		}
	}
	switch {
	case reason.IsError():
		item.Status, item.Reason = ReplayRefused, reason.String()
		return item, nil
	case len(es) == 0:
		item.Status, item.Reason = ReplayIgnored, reason.String()
		return item, nil
	}
	if r.Entry == nil { // a record: from its path, when it came
		for i := range es {
			es[i].Source, es[i].ReceivedAt = r.Source, r.At.UnixMilli()
		}
	}
	item.Status, item.Entries = ReplayStored, len(es)
	return item, es
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/logpipeline/log-processing-service/log-processor/internal/backoff"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Store is what a Consumer writes into: Save hands entries over, Sync
// waits until everything saved is committed (storage.Store has both).
type Store interface {
	Save(ctx context.Context, batch []models.LogEntry) error
	Sync(ctx context.Context) error
}

// Consumer is a writer: Fetchers loops each fetch up to Fetch messages from
// the shared durable consumer, save their entries, wait for the commit,
// then acknowledge them. A message that does not decode is terminated
// (never delivered again) and counted; one whose entries storage refuses
// is acknowledged, since the store has set those entries aside.
type Consumer struct {
	bus   *Bus
	cfg   Config
	cons  jetstream.Consumer
	store Store

	acked       atomic.Uint64 // entries acknowledged after their commit
	ackedMsgs   atomic.Uint64
	redelivered atomic.Uint64 // messages delivered more than once
	corrupt     atomic.Uint64 // messages terminated because they did not decode
	lag         atomic.Int64  // the consumer's unprocessed messages, last read
	ackPending  atomic.Int64  // delivered, not yet acknowledged, last read
	streamBytes atomic.Int64  // bytes the stream holds, last read
	streamMsgs  atomic.Int64  // messages the stream holds, last read

	// check re-validates each decoded entry: "" or why it may not be
	// stored. invalid counts the entries it refused, by reason.
	check     func(e *models.LogEntry) string
	invalidMu sync.Mutex
	invalid   map[string]uint64
	lastWarn  atomic.Int64 // Unix ns of the last warning about a refused entry
}

// NewConsumer creates (or updates) the shared durable consumer. check
// re-validates every decoded entry before it is stored (anyone who can
// publish on the subject could have written it): it returns "" for an
// entry to store, or the reason it is refused; nil checks nothing.
func (b *Bus) NewConsumer(ctx context.Context, store Store, check func(e *models.LogEntry) string) (*Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if b.cfg.InProcess != nil {
		// The embedded bus's consumer is this process's alone: what it
		// holds unacknowledged was delivered to a run that died (kill -9,
		// power loss). Made anew, the consumer delivers those messages
		// now rather than after --bus-ack-wait: a work queue stream keeps
		// every message until it is acknowledged.
		if err := b.js.DeleteConsumer(ctx, b.cfg.Stream, b.cfg.Consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, fmt.Errorf("bus: reset consumer %s: %w", b.cfg.Consumer, err)
		}
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, b.cfg.Stream, jetstream.ConsumerConfig{
		Durable:       b.cfg.Consumer,
		Description:   "log processors writing storage",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxDeliver:    -1, // an undecodable message is terminated; the rest wait for storage as long as it takes
		MaxAckPending: max(1000, 4*b.cfg.Fetch*b.cfg.Fetchers),
		FilterSubject: b.cfg.Subject,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: create consumer %s: %w", b.cfg.Consumer, err)
	}
	return &Consumer{bus: b, cfg: b.cfg, cons: cons, store: store, check: check, invalid: map[string]uint64{}}, nil
}

// Run writes until ctx ends, then finishes the messages in hand: their
// entries are committed and acknowledged, within stopCtx's time.
func (c *Consumer) Run(ctx, stopCtx context.Context) {
	var wg sync.WaitGroup
	for range c.cfg.Fetchers {
		wg.Go(func() { c.fetchLoop(ctx, stopCtx) })
	}
	wg.Go(func() { c.watchLag(ctx) })
	wg.Wait()
}

// fetchWait bounds one fetch when the stream is empty, so that a stop is
// seen promptly.
const fetchWait = 500 * time.Millisecond

func (c *Consumer) fetchLoop(ctx, stopCtx context.Context) {
	bo := backoff.Backoff{Max: 2 * time.Second}
	var entries []models.LogEntry
	var msgs []jetstream.Msg
	var dec Decoder
	for ctx.Err() == nil {
		if !c.bus.Connected() {
			if !sleep(ctx, bo.Next()) {
				return
			}
			continue
		}
		batch, err := c.cons.Fetch(c.cfg.Fetch, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			c.bus.setErr(fmt.Errorf("fetch: %w", err))
			if !sleep(ctx, bo.Next()) {
				return
			}
			continue
		}
		msgs, entries = msgs[:0], entries[:0]
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
			c.bus.setErr(fmt.Errorf("fetch: %w", err))
		}
		if len(msgs) == 0 {
			continue
		}
		bo.Reset()
		msgs, entries = c.decode(&dec, msgs, entries)
		// From here the messages are in hand: they are stored and
		// acknowledged even if ctx ends meanwhile, within stopCtx.
		c.store1(stopCtx, msgs, entries)
		clear(entries) // let the strings go
	}
}

// decode appends the entries of msgs to entries, terminating (and leaving
// out of the returned messages) those that do not decode.
func (c *Consumer) decode(dec *Decoder, msgs []jetstream.Msg, entries []models.LogEntry) ([]jetstream.Msg, []models.LogEntry) {
	kept := msgs[:0]
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			c.terminate(m, err)
			continue
		}
		if md.NumDelivered > 1 {
			c.redelivered.Add(1)
		}
		var derr error
		from := len(entries)
		entries, derr = dec.Decode(entries, m.Data(), c.bus.epoch, md.Sequence.Stream)
		if derr != nil {
			c.terminate(m, derr)
			continue
		}
		entries = c.validate(entries, from)
		kept = append(kept, m)
	}
	return kept, entries
}

// validate drops, from entries[from:], those check refuses, counting them.
func (c *Consumer) validate(entries []models.LogEntry, from int) []models.LogEntry {
	if c.check == nil {
		return entries
	}
	out := entries[:from]
	for i := from; i < len(entries); i++ {
		why := c.check(&entries[i])
		if why == "" {
			out = append(out, entries[i])
			continue
		}
		c.invalidMu.Lock()
		c.invalid[why]++
		c.invalidMu.Unlock()
		if now := time.Now().UnixNano(); now-c.lastWarn.Load() > int64(time.Second) {
			c.lastWarn.Store(now)
			c.bus.log.Warn("bus entry fails validation; not stored", "reason", why, "service_bytes", len(entries[i].Service),
				"message_bytes", len(entries[i].Message))
		}
	}
	clear(entries[len(out):])
	return out
}

func (c *Consumer) terminate(m jetstream.Msg, why error) {
	c.corrupt.Add(1)
	c.bus.log.Error("bus message does not decode; terminated, not delivered again", "bytes", len(m.Data()), "err", why)
	_ = m.Term()
}

// store1 saves entries, waits for their commit, and acknowledges msgs. While
// it waits, it tells the server the messages are in progress, so that a
// slow database does not send them to another writer.
func (c *Consumer) store1(ctx context.Context, msgs []jetstream.Msg, entries []models.LogEntry) {
	done := make(chan struct{})
	var keep sync.WaitGroup
	keep.Go(func() {
		t := time.NewTicker(c.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	})
	defer keep.Wait()
	defer close(done)
	if len(entries) > 0 {
		err := c.store.Save(ctx, entries)
		if err == nil {
			err = c.store.Sync(ctx)
		}
		if err != nil {
			// Not acknowledged: delivered again, to this writer or another.
			c.bus.log.Warn("bus: entries not committed; they will be delivered again", "entries", len(entries), "err", err)
			for _, m := range msgs {
				_ = m.NakWithDelay(redeliverDelay)
			}
			return
		}
	}
	for _, m := range msgs {
		if err := m.Ack(); err == nil {
			c.ackedMsgs.Add(1)
		}
	}
	c.acked.Add(uint64(len(entries)))
}

// redeliverDelay is how long a message whose entries were not committed
// waits before it is delivered again.
const redeliverDelay = 500 * time.Millisecond

// lagEvery is how often the consumer's lag is read from the server.
const lagEvery = time.Second

func (c *Consumer) watchLag(ctx context.Context) {
	t := time.NewTicker(lagEvery)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, lagEvery)
		info, err := c.cons.Info(ictx)
		cancel()
		if err == nil { // else the last reading stands; the connection's error shows in Status
			c.lag.Store(int64(info.NumPending) + int64(info.NumAckPending))
			c.ackPending.Store(int64(info.NumAckPending))
		}
		ictx, cancel = context.WithTimeout(ctx, lagEvery)
		si, err := c.bus.stream.Info(ictx)
		cancel()
		if err == nil {
			c.streamBytes.Store(int64(si.State.Bytes))
			c.streamMsgs.Store(int64(si.State.Msgs))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ConsumeStats is the writing side of the bus stats.
type ConsumeStats struct {
	Acknowledged     uint64 `json:"acknowledged"`          // entries committed, then acknowledged
	AcknowledgedMsgs uint64 `json:"acknowledged_messages"` // messages acknowledged
	Redelivered      uint64 `json:"redelivered"`           // messages this processor received more than once
	Corrupt          uint64 `json:"corrupt"`               // messages that did not decode, terminated
	// Invalid counts the entries that decoded but failed validation (see
	// NewConsumer), by reason: acknowledged with their message, never
	// stored.
	Invalid map[string]uint64 `json:"invalid,omitempty"`
	// ConsumerLag is the shared consumer's messages not yet acknowledged
	// by any writer: waiting in the stream, or delivered and in hand.
	ConsumerLag int64 `json:"consumer_lag"`
	AckPending  int64 `json:"ack_pending"`
	// StreamBytes and StreamMessages are what the stream holds: its disk
	// use (bounded by --bus-max-bytes) and backlog.
	StreamBytes    int64 `json:"stream_bytes"`
	StreamMessages int64 `json:"stream_messages"`
}

// ConsumeStats reports the writing counters.
func (c *Consumer) ConsumeStats() ConsumeStats {
	cs := ConsumeStats{Acknowledged: c.acked.Load(), AcknowledgedMsgs: c.ackedMsgs.Load(), Redelivered: c.redelivered.Load(),
		Corrupt: c.corrupt.Load(), ConsumerLag: c.lag.Load(), AckPending: c.ackPending.Load(),
		StreamBytes: c.streamBytes.Load(), StreamMessages: c.streamMsgs.Load()}
	c.invalidMu.Lock()
	if len(c.invalid) > 0 {
		cs.Invalid = maps.Clone(c.invalid)
	}
	c.invalidMu.Unlock()
	return cs
}

// sleep waits d, or reports false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/logpipeline/log-processing-service/log-processor/internal/backoff"
	"github.com/logpipeline/log-processing-service/log-processor/internal/budget"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Publisher packs entries into stream messages and publishes them. It is
// the queue.Queue between parsing and storing when the bus is JetStream,
// with the worker pool's bounds and refusals, so that sources use either
// the same way.
//
// An entry is accepted once its bytes fit the bound (QueueBytes: entries
// waiting for their message to fill, or published and not yet
// acknowledged by the stream). A message is published with an ID, so that
// a retry after a lost acknowledgement is dropped by the stream's
// duplicate window, and is retried while NATS is unreachable or the stream
// is full, holding its bytes meanwhile: the bound fills, and submitters
// wait, then drop.
type Publisher struct {
	bus   *Bus
	cfg   Config
	bytes *budget.Budget
	id    string // prefix of message IDs: this processor's name and start time

	mu      sync.Mutex
	enc     encoder
	size    int64     // bytes (Size) of the entries in enc
	acks    []ackPart // of the entries in enc
	opened  time.Time // when enc's first entry came
	queue   []outMsg  // sealed, waiting for a sender
	nextID  uint64
	closing bool

	ready   chan struct{} // buffered 1: queue has a message, or closing
	senders sync.WaitGroup
	stop    chan struct{} // closed by Close: the linger loop returns
	ctx     context.Context
	cancel  context.CancelFunc // hard stop: Close's deadline passed

	waiting   atomic.Int64 // entries accepted and not yet acknowledged by the stream
	published atomic.Uint64
	messages  atomic.Uint64
	pubErrors atomic.Uint64
	lost      atomic.Uint64
	// retrying counts the messages whose publish has failed and not yet
	// succeeded: while any is, the bound is full of what the stream would
	// not take.
	retrying atomic.Int32
}

// outMsg is a sealed message.
type outMsg struct {
	data  []byte
	id    string
	count int
	bytes int64
	acks  []ackPart // resolved when the stream acknowledges the message, or it is given up
}

// ackPart is n entries of an ack.
type ackPart struct {
	ack *queue.Ack
	n   int
}

// resolve resolves m's acks.
func (m *outMsg) resolve(err error) {
	for _, a := range m.acks {
		a.ack.Done(a.n, err)
	}
}

// NewPublisher starts a publisher bounded by queueBytes (the bytes of the
// entries it holds).
func (b *Bus) NewPublisher(queueBytes int64) *Publisher {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Publisher{
		bus: b, cfg: b.cfg, bytes: budget.New(queueBytes),
		id:    b.cfg.Name + "-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		ready: make(chan struct{}, 1), stop: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
	for range b.cfg.MaxPending {
		p.senders.Go(p.send)
	}
	p.senders.Go(p.linger)
	return p
}

// SubmitWithTimeout accepts e, waiting at most timeout for room.
func (p *Publisher) SubmitWithTimeout(e models.LogEntry, timeout time.Duration) bool {
	size := int64(e.Size())
	if !p.bytes.TakeWithin(size, timeout) {
		return false
	}
	p.mu.Lock()
	p.add(&e, size, nil)
	p.mu.Unlock()
	return true
}

// SubmitAll accepts every entry or none (see queue.Queue); an ack is
// resolved as the stream acknowledges the messages that hold the entries.
func (p *Publisher) SubmitAll(entries []models.LogEntry, timeout time.Duration, ack *queue.Ack) error {
	if len(entries) == 0 {
		return nil
	}
	var size int64
	for i := range entries {
		size += int64(entries[i].Size())
	}
	if size > p.bytes.Max() {
		return queue.ErrTooLarge
	}
	if !p.bytes.TakeWithin(size, timeout) {
		return queue.ErrFull
	}
	p.mu.Lock()
	for i := range entries {
		p.add(&entries[i], int64(entries[i].Size()), ack)
	}
	p.mu.Unlock()
	return nil
}

// add appends e to the open message, sealing it when full; ack, if not
// nil, is resolved with that message. p.mu is held.
func (p *Publisher) add(e *models.LogEntry, size int64, ack *queue.Ack) {
	if p.enc.count == 0 {
		p.opened = time.Now()
	}
	p.enc.add(e)
	p.size += size
	if ack != nil {
		if n := len(p.acks); n > 0 && p.acks[n-1].ack == ack {
			p.acks[n-1].n++
		} else {
			p.acks = append(p.acks, ackPart{ack, 1})
		}
	}
	p.waiting.Add(1)
	if p.enc.count >= p.cfg.Batch || p.enc.size() >= p.cfg.BatchBytes {
		p.seal()
	}
}

// seal queues the open message for the senders. p.mu is held.
func (p *Publisher) seal() {
	if p.enc.count == 0 {
		return
	}
	p.nextID++
	p.queue = append(p.queue, outMsg{data: p.enc.message(p.cfg.Compress), id: p.id + "-" + strconv.FormatUint(p.nextID, 10),
		count: p.enc.count, bytes: p.size, acks: p.acks})
	p.enc.reset()
	p.size, p.acks = 0, nil
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

// linger seals a message that has waited Linger for more entries.
func (p *Publisher) linger() {
	t := time.NewTicker(p.cfg.Linger / 2)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.mu.Lock()
			if p.enc.count > 0 && now.Sub(p.opened) >= p.cfg.Linger {
				p.seal()
			}
			p.mu.Unlock()
		}
	}
}

// next takes a sealed message, waiting for one; nil once closing and
// nothing is left.
func (p *Publisher) next() *outMsg {
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			m := p.queue[0]
			p.queue[0] = outMsg{}
			p.queue = p.queue[1:]
			more, closing := len(p.queue) > 0, p.closing
			p.mu.Unlock()
			if more || closing { // pass the wake-up on
				select {
				case p.ready <- struct{}{}:
				default:
				}
			}
			return &m
		}
		closing := p.closing
		p.mu.Unlock()
		if closing {
			select { // wake the next sender, so it sees closing too
			case p.ready <- struct{}{}:
			default:
			}
			return nil
		}
		select {
		case <-p.ready:
		case <-p.ctx.Done():
			return nil
		}
	}
}

// send is one sender: it publishes messages one at a time, each until the
// stream acknowledges it.
func (p *Publisher) send() {
	for {
		m := p.next()
		if m == nil {
			return
		}
		p.publish(m)
	}
}

// errLost: a message given up at a shutdown that overran its deadline.
var errLost = errors.New("not published: shutdown deadline passed")

// publishTimeout bounds one publish attempt.
const publishTimeout = 5 * time.Second

// publish retries m until the stream acknowledges it or the hard stop.
func (p *Publisher) publish(m *outMsg) {
	bo := backoff.Backoff{Max: DefaultPublishRetry}
	msg := &nats.Msg{Subject: p.cfg.Subject, Data: m.data}
	for attempt := 1; ; attempt++ {
		err := errDisconnected
		if p.bus.Connected() {
			ctx, cancel := context.WithTimeout(p.ctx, publishTimeout)
			_, err = p.bus.js.PublishMsg(ctx, msg, jetstream.WithMsgID(m.id), jetstream.WithExpectStream(p.cfg.Stream))
			cancel()
		}
		if err == nil {
			p.published.Add(uint64(m.count))
			p.messages.Add(1)
			if attempt > 1 {
				p.retrying.Add(-1)
			}
			m.resolve(nil)
			break
		}
		if attempt == 1 {
			p.retrying.Add(1)
		}
		p.pubErrors.Add(1)
		p.bus.setErr(fmt.Errorf("publish: %w", err))
		if attempt == 1 || attempt%20 == 0 {
			p.bus.log.Warn("bus publish failed; will retry", "entries", m.count, "attempt", attempt, "err", err)
		}
		t := time.NewTimer(bo.Next())
		select {
		case <-t.C:
			continue
		case <-p.ctx.Done():
			t.Stop()
			p.lost.Add(uint64(m.count))
			p.retrying.Add(-1)
			m.resolve(errLost)
		}
		break
	}
	p.waiting.Add(-int64(m.count))
	p.bytes.Give(m.bytes)
}

// Stalled reports whether some message's publish has failed and is being
// retried (the stream is full or unreachable, or was until a moment ago
// and the backlog is still going out): entries wait for the stream rather
// than for room.
func (p *Publisher) Stalled() bool { return p.retrying.Load() > 0 }

// Stats reports the publisher as a queue: Queued is the entries not yet
// acknowledged by the stream, Processed those it has. It has no workers:
// its senders publish, they store nothing.
func (p *Publisher) Stats() queue.Stats {
	return queue.Stats{Processed: p.published.Load(), Queued: int(p.waiting.Load()), Bytes: p.bytes.Used()}
}

// Capacity returns the bounds: entries (what the senders and one message
// filling can hold) and bytes.
func (p *Publisher) Capacity() (int, int64) {
	return (p.cfg.MaxPending + 2) * p.cfg.Batch, p.bytes.Max()
}

// PublishStats is the publishing side of the bus stats.
type PublishStats struct {
	Published     uint64 `json:"published"`          // entries the stream acknowledged
	Messages      uint64 `json:"published_messages"` // messages the stream acknowledged
	Pending       int64  `json:"pending"`            // entries accepted, not yet acknowledged by the stream
	PublishErrors uint64 `json:"publish_errors"`     // publish attempts that failed (and were retried)
	Lost          uint64 `json:"lost,omitempty"`     // entries given up at a shutdown that overran its deadline
}

// PublishStats reports the publishing counters.
func (p *Publisher) PublishStats() PublishStats {
	return PublishStats{Published: p.published.Load(), Messages: p.messages.Load(), Pending: p.waiting.Load(),
		PublishErrors: p.pubErrors.Load(), Lost: p.lost.Load()}
}

// Close publishes what was accepted and stops; no Submit may come after
// it. If ctx ends first, what is left is given up and counted as lost.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	p.seal()
	p.closing = true
	p.mu.Unlock()
	close(p.stop)
	select {
	case p.ready <- struct{}{}:
	default:
	}
	done := make(chan struct{})
	go func() { p.senders.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		p.cancel()
		<-done
	}
	p.cancel()
	p.mu.Lock()
	for _, m := range p.queue { // left by senders that stopped at the hard stop
		m.resolve(errLost)
		p.lost.Add(uint64(m.count))
		p.waiting.Add(-int64(m.count))
	}
	p.queue = nil
	p.mu.Unlock()
	if n := p.lost.Load(); n > 0 {
		err = fmt.Errorf("bus: %d accepted entries not published: %w", n, ctx.Err())
	}
	return err
}

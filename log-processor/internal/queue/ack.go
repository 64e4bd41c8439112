package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// ErrUnconfirmed: the queue accepted the entries but did not confirm them
// durable before the wait ended; they may yet be stored, so a client told
// to retry may store them twice.
var ErrUnconfirmed = errors.New("entries accepted but not confirmed stored in time")

// Ack follows entries a queue accepted until they are durable as far as
// that queue can make them: saved and committed by the pool's store, or
// acknowledged by the stream. The queue calls Done for every entry, once,
// with nil or why it gave them up; the submitter waits on Wait. Safe for
// concurrent use.
type Ack struct {
	left atomic.Int64
	done chan struct{} // closed by the Done call that brings left to zero

	mu  sync.Mutex
	err error // the first error a Done reported
}

// NewAck returns an Ack for n entries.
func NewAck(n int) *Ack {
	a := &Ack{done: make(chan struct{})}
	a.left.Store(int64(n))
	if n <= 0 {
		close(a.done)
	}
	return a
}

// Done resolves n of the entries: durable when err is nil, given up
// otherwise.
func (a *Ack) Done(n int, err error) {
	if err != nil {
		a.mu.Lock()
		if a.err == nil {
			a.err = err
		}
		a.mu.Unlock()
	}
	if a.left.Add(-int64(n)) == 0 {
		close(a.done)
	}
}

// Wait waits until every entry is resolved: nil when all are durable, the
// first error a Done reported (wrapped in ErrUnconfirmed), or
// ErrUnconfirmed when ctx ends first.
func (a *Ack) Wait(ctx context.Context) error {
	select {
	case <-a.done:
	case <-ctx.Done():
		return ErrUnconfirmed
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return fmt.Errorf("%w: %w", ErrUnconfirmed, a.err)
	}
	return nil
}

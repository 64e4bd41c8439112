// Package budget bounds a quantity (bytes, entries) shared by many
// goroutines: takers reserve some of it, waiting up to a deadline for room,
// and give it back when done. The fast path is one atomic add.
package budget

import (
	"sync"
	"sync/atomic"
	"time"
)

// Budget is a bound of Max. The zero value is not usable; use New. All
// methods are safe for concurrent use.
type Budget struct {
	max  int64
	used atomic.Int64
	// A taker waiting for room waits on room, which Give closes and
	// replaces (under mu) when waiting is positive.
	waiting atomic.Int32
	mu      sync.Mutex
	room    chan struct{}
}

// New returns a budget of max.
func New(max int64) *Budget { return &Budget{max: max, room: make(chan struct{})} }

// Max returns the bound.
func (b *Budget) Max() int64 { return b.max }

// Used returns how much is taken now. A TryTake that fails adds its n for
// a moment before taking it back; what it never held is not shown.
func (b *Budget) Used() int64 { return min(b.used.Load(), b.max) }

// TryTake takes n if the total stays within Max, without waiting.
func (b *Budget) TryTake(n int64) bool {
	if b.used.Add(n) <= b.max {
		return true
	}
	b.used.Add(-n)
	return false
}

// Take waits until TryTake succeeds, or reports false when expired fires
// first.
func (b *Budget) Take(n int64, expired <-chan time.Time) bool {
	for {
		b.mu.Lock()
		room := b.room
		b.waiting.Add(1)
		b.mu.Unlock()
		// Tried after registering as a waiter: a Give between the two
		// either shows here or closes room.
		if b.TryTake(n) {
			b.waiting.Add(-1)
			return true
		}
		select {
		case <-room:
			b.waiting.Add(-1)
		case <-expired:
			b.waiting.Add(-1)
			return false
		}
	}
}

// TakeWithin is Take with a timeout; a timeout of zero or less never waits.
func (b *Budget) TakeWithin(n int64, timeout time.Duration) bool {
	if b.TryTake(n) {
		return true
	}
	if timeout <= 0 {
		return false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	return b.Take(n, t.C)
}

// Give returns n, waking the takers waiting for room.
func (b *Budget) Give(n int64) {
	if n == 0 {
		return
	}
	b.used.Add(-n)
	if b.waiting.Load() > 0 {
		b.mu.Lock()
		close(b.room)
		b.room = make(chan struct{})
		b.mu.Unlock()
	}
}

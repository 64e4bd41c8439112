// Package backoff computes jittered exponential delays between reconnect
// attempts.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Defaults for the zero fields of Backoff.
const (
	DefaultMin  = 100 * time.Millisecond
	DefaultBase = 250 * time.Millisecond
	DefaultMax  = 30 * time.Second
)

// Backoff yields delays with full jitter: attempt n waits a uniformly random
// time between Min and min(Max, Base*2^n). The zero value uses the defaults.
// A Backoff is used by one goroutine at a time.
type Backoff struct {
	Min, Base, Max time.Duration

	attempt int
}

// Next returns the delay before the next attempt and counts the attempt.
func (b *Backoff) Next() time.Duration {
	lo, base, hi := b.Min, b.Base, b.Max
	if lo <= 0 {
		lo = DefaultMin
	}
	if base <= 0 {
		base = DefaultBase
	}
	if hi <= 0 {
		hi = DefaultMax
	}
	ceil := hi
	if b.attempt < 32 {
		if d := base << b.attempt; d > 0 && d < hi {
			ceil = d
		}
	}
	b.attempt++
	if ceil <= lo {
		return ceil
	}
	return lo + rand.N(ceil-lo)
}

// Reset starts the sequence again, after a connection proved healthy.
func (b *Backoff) Reset() { b.attempt = 0 }

package storage

import (
	"sync/atomic"
	"time"
)

// LatencyBuckets are the upper bounds, in seconds, of the write latency
// histogram: a database write takes from a millisecond to seconds.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Latency is a histogram of durations, safe for concurrent use; the zero
// value is ready.
type Latency struct {
	counts [14]atomic.Uint64 // per bucket of LatencyBuckets, and above the last
	sumNs  atomic.Int64
}

// Observe records one duration.
func (l *Latency) Observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(LatencyBuckets) && s > LatencyBuckets[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sumNs.Add(int64(d))
}

// LatencySnapshot is a Latency read at one time: Cumulative[i] counts the
// durations at most LatencyBuckets[i].
type LatencySnapshot struct {
	Count      uint64
	Sum        float64 // seconds
	Cumulative []uint64
}

// Snapshot reads l.
func (l *Latency) Snapshot() LatencySnapshot {
	s := LatencySnapshot{Cumulative: make([]uint64, len(LatencyBuckets))}
	var run uint64
	for i := range l.counts {
		run += l.counts[i].Load()
		if i < len(LatencyBuckets) {
			s.Cumulative[i] = run
		}
	}
	s.Count = run
	s.Sum = time.Duration(l.sumNs.Load()).Seconds()
	return s
}

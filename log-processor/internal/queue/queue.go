// Package queue is the contract between the sources and what stores their
// entries: the queue a source submits parsed entries into, with the errors
// and the stats every implementation shares. The in-process worker pool
// (package workerpool) and the message bus's publisher (package bus) are
// its implementations; the sources and the pipeline know only this.
package queue

import (
	"context"
	"errors"
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Why SubmitAll refused entries.
var (
	// ErrTooLarge: more entries or bytes than the queue can ever hold at
	// once; waiting would not help.
	ErrTooLarge = errors.New("more entries or bytes than the queue can ever hold at once")
	// ErrFull: no room for them all within the timeout.
	ErrFull = errors.New("queue full")
)

// Queue holds entries between parsing and storing, bounded in entries and
// bytes. Submit and SubmitAll are safe for concurrent use and never keep
// the caller's slice; Close is called once, after every submitter has
// returned.
type Queue interface {
	// SubmitWithTimeout queues e, waiting at most timeout for room; false
	// means refused (the caller counts it as dropped).
	SubmitWithTimeout(e models.LogEntry, timeout time.Duration) bool
	// SubmitAll queues every entry or none, waiting at most timeout for
	// room for all: nil, ErrTooLarge or ErrFull. When ack is not nil and
	// the entries are accepted, the queue resolves each of them on ack
	// once it is durable (or given up); ack was made for len(entries).
	SubmitAll(entries []models.LogEntry, timeout time.Duration, ack *Ack) error
	// Stats returns a snapshot; safe at any time, also after Close.
	Stats() Stats
	// Capacity returns the bounds: entries and bytes.
	Capacity() (entries int, bytes int64)
	// Close stops taking entries and hands on everything accepted, or,
	// when ctx ends first, gives up the rest and says how much.
	Close(ctx context.Context) error
}

// Stats is a snapshot of a queue.
type Stats struct {
	// Queued counts the entries accepted and not yet handed on (saved by
	// the workers, or acknowledged by the stream).
	Queued int
	// Bytes is the memory of those entries (models.LogEntry.Size).
	Bytes int64
	// Processed counts the entries handed on: saved (successfully or not)
	// by the pool's workers, or acknowledged by the stream.
	Processed uint64
	// Failed counts, of Processed, the entries whose save failed.
	Failed uint64
	// Workers is the number of goroutines saving entries; zero for a
	// queue that stores nothing itself (the bus's publisher).
	Workers int
}

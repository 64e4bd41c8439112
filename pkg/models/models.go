// Package models is the vocabulary shared by the generator and the processor:
// the log entry that travels through the pipeline and its levels.
// It depends on the standard library only.
package models

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
	"unsafe"
)

// Levels a valid LogEntry may carry. The parser normalises every accepted
// level to one of these exact strings, so comparing against them is enough.
const (
	LevelInfo  = "INFO"
	LevelWarn  = "WARN"
	LevelError = "ERROR"
)

// LevelDebug is stored only by a processor whose floor is lowered to it
// (log-processor --min-level debug); the generator never sends it.
const LevelDebug = "DEBUG"

// Levels lists the generator's levels in severity order: what it
// sends and what is stored by default.
var Levels = [...]string{LevelInfo, LevelWarn, LevelError}

// StoredLevels lists every level a stored entry may carry, in severity
// order.
var StoredLevels = [...]string{LevelDebug, LevelInfo, LevelWarn, LevelError}

// StoredLevelIndex returns the position of level in StoredLevels, or -1.
func StoredLevelIndex(level string) int {
	if level == LevelDebug {
		return 0
	}
	if i := LevelIndex(level); i >= 0 {
		return i + 1
	}
	return -1
}

// LogEntry is one structured log message as it flows from a source, through
// the parser and the worker pool, into storage.
//
// Timestamp is in Unix milliseconds, as sent on the wire. Component, TraceID,
// SpanID and ParentID are optional and empty when absent. Source and
// ReceivedAt are not on the wire: the processor sets them when it reads the
// entry.
type LogEntry struct {
	Timestamp int64  `json:"timestamp"`
	Level     string `json:"level"`
	Message   string `json:"message"`
	Service   string `json:"service"`
	Component string `json:"component,omitempty"`
	TraceID   string `json:"trace_id,omitempty"`
	SpanID    string `json:"span_id,omitempty"`
	ParentID  string `json:"parent_id,omitempty"`

	// Attrs holds the fields of the message beyond the ones above, as a
	// JSON object ("" when there were none): nothing a source sends is
	// thrown away.
	Attrs Attrs `json:"attrs,omitempty"`

	Source     string `json:"source,omitempty"`      // the source it was read from (credentials redacted)
	ReceivedAt int64  `json:"received_at,omitempty"` // Unix milliseconds when it was read

	// Bus is where the entry sat on the message bus between the processor
	// that read it and the one that stored it; or the identity its
	// pusher gave it (see KeyEpoch); zero for neither. Storage keeps an
	// entry with a given Bus once, however often it is delivered or sent.
	Bus BusID `json:"-"`
}

// Attrs is a JSON object kept as its text. It marshals as the object
// itself, not as a string.
type Attrs string

// MarshalJSON returns the object, or null when there is none.
func (a Attrs) MarshalJSON() ([]byte, error) {
	if a == "" {
		return []byte("null"), nil
	}
	return []byte(a), nil
}

// UnmarshalJSON keeps the object's text; null becomes "".
func (a *Attrs) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*a = ""
		return nil
	}
	*a = Attrs(b)
	return nil
}

// Time returns the entry's timestamp as a time.Time.
func (e LogEntry) Time() time.Time { return time.UnixMilli(e.Timestamp) }

// LevelIndex returns the position of level in Levels, or -1 when level is
// not one of them.
func LevelIndex(level string) int {
	switch level {
	case LevelInfo:
		return 0
	case LevelWarn:
		return 1
	case LevelError:
		return 2
	}
	return -1
}

// entryOverhead is the memory of a LogEntry besides its strings' bytes.
const entryOverhead = int(unsafe.Sizeof(LogEntry{}))

// Size is the memory the entry holds, in bytes: the struct and its strings'
// bytes (Source is shared by every entry of a source and not counted).
// Queues and stores bound their memory with it.
func (e *LogEntry) Size() int {
	return entryOverhead + len(e.Level) + len(e.Message) + len(e.Service) + len(e.Component) +
		len(e.TraceID) + len(e.SpanID) + len(e.ParentID) + len(e.Attrs)
}

// BusID is an entry's identity on the message bus: the epoch of the stream
// (its creation time, so that a stream deleted and created again starts a
// new identity space) and its position, the stream sequence of the message
// that carried it shifted left 16 bits plus its index in that message.
type BusID struct {
	Epoch int64
	Pos   int64
}

// MaxPerBusMessage is the most entries one bus message may carry, so that
// an index fits in BusID.Pos's low 16 bits.
const MaxPerBusMessage = 1 << 16

// NewBusID returns the identity of the index-th entry of the message at
// stream sequence seq, in the stream of the given epoch.
func NewBusID(epoch int64, seq uint64, index int) BusID {
	return BusID{Epoch: epoch, Pos: int64(seq)<<16 | int64(index)}
}

// KeyEpoch returns the identity space of a pusher's key (an
// Idempotency-Key with its token, a bulk document's _id with its index):
// entries given BusID{KeyEpoch(key), i} are stored once however often
// they are sent, as bus entries are. It is negative, so that it never
// meets a stream's epoch (a creation time); two keys meet with a chance
// of about n²/2⁶³ among n keys.
func KeyEpoch(key string) int64 {
	h := sha256.Sum256([]byte(key))
	return -int64(binary.BigEndian.Uint64(h[:8])>>1) - 1
}

// IsZero reports whether the entry did not come over the bus.
func (b BusID) IsZero() bool { return b == BusID{} }

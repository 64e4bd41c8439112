// Package models is the vocabulary shared by the generator and the processor:
// the log entry that travels through the pipeline and its levels.
// It depends on the standard library only.
package models

import (
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

// Levels lists the valid levels in severity order.
var Levels = [...]string{LevelInfo, LevelWarn, LevelError}

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

	Source     string `json:"source,omitempty"`      // URL of the source it was read from
	ReceivedAt int64  `json:"received_at,omitempty"` // Unix milliseconds when it was read
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
		len(e.TraceID) + len(e.SpanID) + len(e.ParentID)
}

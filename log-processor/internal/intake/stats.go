package intake

import (
	"maps"
	"time"
)

// Counters say what became of a source's frames (or lines, or records),
// under the names of the summary line. They always add up:
//
//	Total    = OK + ParseErr + Ignored + BelowMinLevel
//	OK       = Submitted + Dropped
//	ParseErr = sum of ParseErrors
//	Dropped  = sum of DropReasons
type Counters struct {
	Total       uint64            `json:"total"`        // frames received
	OK          uint64            `json:"ok"`           // valid entries
	ParseErr    uint64            `json:"parse_err"`    // rejected frames
	ParseErrors map[string]uint64 `json:"parse_errors"` // rejected frames by reason
	Ignored     uint64            `json:"ignored"`      // control frames: neither a level nor a message
	// BelowMinLevel counts valid entries below the level floor (DEBUG and
	// TRACE by default): not errors, and not stored.
	BelowMinLevel uint64 `json:"below_min_level"`
	// DefaultLevel counts the valid entries (part of OK) that named no
	// level and were given --default-level.
	DefaultLevel uint64 `json:"default_level"`
	Submitted    uint64 `json:"submitted"` // valid entries the queue accepted
	// Unconfirmed counts the submitted entries (part of Submitted) whose
	// request, with --ack stored, was answered "retry" because they were
	// not confirmed stored in time: stored twice if they were after all.
	Unconfirmed uint64            `json:"unconfirmed,omitempty"`
	Dropped     uint64            `json:"dropped"`      // valid entries refused after the submit timeout
	DropReasons map[string]uint64 `json:"drop_reasons"` // dropped, by why the queue was full
}

// Add adds o's counts to c.
func (c *Counters) Add(o Counters) {
	c.Total += o.Total
	c.OK += o.OK
	c.ParseErr += o.ParseErr
	c.Ignored += o.Ignored
	c.BelowMinLevel += o.BelowMinLevel
	c.DefaultLevel += o.DefaultLevel
	c.Submitted += o.Submitted
	c.Unconfirmed += o.Unconfirmed
	c.Dropped += o.Dropped
	if c.ParseErrors == nil {
		c.ParseErrors = make(map[string]uint64, len(o.ParseErrors))
	}
	for k, v := range o.ParseErrors {
		c.ParseErrors[k] += v
	}
	if c.DropReasons == nil {
		c.DropReasons = make(map[string]uint64, len(o.DropReasons))
	}
	for k, v := range o.DropReasons {
		c.DropReasons[k] += v
	}
}

// Clone returns a copy of c that shares no map with it.
func (c Counters) Clone() Counters {
	c.ParseErrors, c.DropReasons = maps.Clone(c.ParseErrors), maps.Clone(c.DropReasons)
	return c
}

// Source kinds, as Stats.Kind and Health.Kind report them.
const (
	KindDial = "dial" // the processor connects to the source
	KindPush = "push" // the source connects to the processor
)

// Source states, as Stats.State and Health.State report them.
const (
	StateConnecting = "connecting"
	StateConnected  = "connected"
	StateBackoff    = "backoff"
	StateStopped    = "stopped"
	StateListening  = "listening" // a push path, taking pushes
	StateStandby    = "standby"   // another processor of the cluster reads it
)

// Up reports whether a source in state is taking logs.
func Up(state string) bool { return state == StateConnected || state == StateListening }

// Stats is a snapshot of one source (or, for a push path, of one token's
// pushes on it): its state and its counters, which carry on across
// reconnects.
type Stats struct {
	// Name names the source in /metrics and the summary lines: its
	// configured name, or for an unnamed dialed source host:port/path
	// (never its query string); for pushes push:TOKEN:PROTOCOL.
	Name  string `json:"name"`
	URL   string `json:"url"`   // credentials redacted; for a push path, its path
	Kind  string `json:"kind"`  // KindDial or KindPush
	State string `json:"state"` // one of the State constants
	// Owner is the processor of the cluster reading the source (--cluster).
	Owner string `json:"owner,omitempty"`
	// For pushes: the token's name, how many are connected now
	// (WebSocket), and the address of the latest.
	Token          string    `json:"token,omitempty"`
	Clients        int       `json:"clients,omitempty"`
	RemoteAddr     string    `json:"remote_addr,omitempty"`
	Requests       uint64    `json:"requests,omitempty"`         // requests taken (HTTP pushes)
	Refused        uint64    `json:"refused_requests,omitempty"` // requests refused whole (queue full, over a bound), to be retried
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	Reconnects     uint64    `json:"reconnects"` // connections made after the first
	LastError      string    `json:"last_error,omitempty"`
	LastMessageAt  time.Time `json:"last_message_at,omitzero"`
	Counters
}

// Health is what /readyz needs of a source.
type Health struct {
	Name           string
	URL            string
	Kind           string
	State          string
	ConnectedSince time.Time
	LastError      string
}

// Why a valid entry was dropped.
const (
	dropQueueFull = iota // the workers were behind
	dropStorage          // storage was failing, so the workers were blocked
	dropBus              // the message bus was unreachable or full, so nothing was published
	numDropReasons
)

// Drop reasons a Blocked hook may give.
const (
	DropQueueFull          = "queue_full"
	DropStorageUnavailable = "storage_unavailable"
	DropBusUnavailable     = "bus_unavailable"
)

var dropReasonNames = [numDropReasons]string{DropQueueFull, DropStorageUnavailable, DropBusUnavailable}

// dropReasonIndex returns the index of a Blocked hook's reason; queue_full
// for "" or one it does not know.
func dropReasonIndex(reason string) int {
	switch reason {
	case DropStorageUnavailable:
		return dropStorage
	case DropBusUnavailable:
		return dropBus
	}
	return dropQueueFull
}

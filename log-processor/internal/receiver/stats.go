package receiver

import "time"

// Counters say what became of a source's frames, under the names of the
// summary line. They always add up:
//
//	Total = OK + ParseErr + Ignored + BelowMinLevel
//	OK    = Submitted + Dropped
//	ParseErr = sum of ParseErrors
//	Dropped  = sum of DropReasons
type Counters struct {
	Total       uint64            `json:"total"`        // frames received
	OK          uint64            `json:"ok"`           // valid entries
	ParseErr    uint64            `json:"parse_err"`    // rejected frames
	ParseErrors map[string]uint64 `json:"parse_errors"` // rejected frames by reason
	Ignored     uint64            `json:"ignored"`      // control frames (the handshake)
	// BelowMinLevel counts valid entries below the level floor (DEBUG and
	// TRACE by default): not errors, and not stored.
	BelowMinLevel uint64 `json:"below_min_level"`
	// DefaultLevel counts the valid entries (part of OK) that named no
	// level and were given --default-level.
	DefaultLevel uint64            `json:"default_level"`
	Submitted    uint64            `json:"submitted"`    // valid entries the pool accepted
	Dropped      uint64            `json:"dropped"`      // valid entries refused after SubmitTimeout
	DropReasons  map[string]uint64 `json:"drop_reasons"` // dropped, by why the pool was full
}

// Source kinds reported in Stats.Kind.
const (
	KindDial = "dial"
	KindPush = "push"
)

// Why a valid entry was dropped.
const (
	dropQueueFull = iota // the workers were behind
	dropStorage          // storage was failing, so the workers were blocked
	dropBus              // the message bus was unreachable or full, so nothing was published
	numDropReasons
)

// Drop reasons a Blocked hook may give.
const (
	DropStorageUnavailable = "storage_unavailable"
	DropBusUnavailable     = "bus_unavailable"
)

var dropReasonNames = [numDropReasons]string{"queue_full", DropStorageUnavailable, DropBusUnavailable}

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

// Add adds o's counts to c.
func (c *Counters) Add(o Counters) {
	c.Total += o.Total
	c.OK += o.OK
	c.ParseErr += o.ParseErr
	c.Ignored += o.Ignored
	c.BelowMinLevel += o.BelowMinLevel
	c.DefaultLevel += o.DefaultLevel
	c.Submitted += o.Submitted
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

// Stats is a snapshot of one source: its connection state and its counters,
// which carry on across reconnects.
type Stats struct {
	URL   string `json:"url"`   // credentials redacted; for a pusher, its path
	Kind  string `json:"kind"`  // dial (the processor connects) or push (the source does)
	State string `json:"state"` // connecting, connected, backoff, stopped, or standby (read by another processor of its cluster); for pushers, listening
	// Owner is the processor of the cluster reading the source (--cluster).
	Owner string `json:"owner,omitempty"`
	// For pushers: the token's name, how many are connected now
	// (WebSocket), and the address of the latest.
	Token          string    `json:"token,omitempty"`
	Clients        int       `json:"clients,omitempty"`
	RemoteAddr     string    `json:"remote_addr,omitempty"`
	Requests       uint64    `json:"requests,omitempty"`         // HTTP requests taken
	Refused        uint64    `json:"refused_requests,omitempty"` // HTTP requests refused whole (503), to be retried by the pusher
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	Reconnects     uint64    `json:"reconnects"` // connections made after the first
	LastError      string    `json:"last_error,omitempty"`
	LastMessageAt  time.Time `json:"last_message_at,omitzero"`
	Counters
}

// Stats returns a snapshot that adds up (see Counters).
func (r *Receiver) Stats() Stats {
	s := Stats{URL: r.name, Kind: KindDial, Counters: r.Counters(), LastMessageAt: r.LastMessageAt()}
	r.mu.Lock()
	s.State, s.Reconnects, s.LastError = r.state, r.reconnects, r.lastError
	if !r.connectedSince.IsZero() {
		s.ConnectedSince = r.connectedSince.UTC()
	}
	r.mu.Unlock()
	return s
}

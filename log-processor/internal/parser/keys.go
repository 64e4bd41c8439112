package parser

import (
	"encoding/binary"
	"math/bits"
)

// Roles: the fields of an entry, each looked for under several names.
const (
	rTime = iota
	rLevel
	// rSeverity is OpenTelemetry's severity number: when it is 1-24 it
	// decides the level, whatever the level text says.
	rSeverity
	rMessage
	rService
	rComponent
	rTrace
	rSpan
	rParent
	numRoles
)

// roleNames name the roles in the precedence table (Precedence).
var roleNames = [numRoles]string{rTime: "time", rLevel: "level", rSeverity: "severity number", rMessage: "message",
	rService: "service", rComponent: "component", rTrace: "trace id", rSpan: "span id", rParent: "parent id"}

// Containers: members whose object (or array) value holds fields of the
// entry.
const (
	cLog        = iota // ECS: "log": {"level": ..., "logger": ...}
	cService           // ECS: "service": {"name": ...}
	cTrace             // ECS: "trace": {"id": ...}
	cSpan              // ECS: "span": {"id": ...}
	cBody              // OpenTelemetry: "body": {"stringValue": ...}
	cAttributes        // OpenTelemetry: "attributes": [{"key": ..., "value": {...}}]
	cResource          // OpenTelemetry: "resource": {"attributes": [...]}
	cScope             // OpenTelemetry: "scope": {"name": ..., "version": ..., "attributes": [...]}
	numContainers
)

// containerKinds is the JSON kind ('{' or '[') each container's value has.
var containerKinds = [numContainers]byte{cLog: '{', cService: '{', cTrace: '{', cSpan: '{', cBody: '{', cAttributes: '[', cResource: '{', cScope: '{'}

// keepContainer says which containers are also kept whole as attributes,
// because they hold more than the entry takes from them. An OpenTelemetry
// resource's and scope's members are kept one by one, under a prefix
// (keepOTel).
var keepContainer = [numContainers]bool{cLog: true, cService: true}

// containerFallbacks are what the precedence table says a role falls back
// to after its keys.
var containerFallbacks = [numRoles]string{
	rLevel:   "ECS's nested log.level",
	rMessage: "OpenTelemetry's body.stringValue",
	rService: "ECS's nested service.name, then OpenTelemetry's resource attribute service.name",
	rTrace:   "ECS's nested trace.id",
	rSpan:    "ECS's nested span.id",
}

// GELF markers: a message with both is GELF, whose numeric levels are
// syslog's.
const (
	gelfVersion      = 1 << iota // "version"
	gelfShortMessage             // "short_message"
	gelfBoth         = gelfVersion | gelfShortMessage
)

// Flags of a key.
const (
	kNanos       = 1 << iota // a time whose numbers are nanoseconds (OTLP's timeUnixNano)
	kSeverityNum             // a level whose numbers are OpenTelemetry severity numbers
)

// keyInfo is what a member's key means.
type keyInfo struct {
	role   int8  // one of the roles, or -1
	rank   uint8 // precedence within the role: the lowest present wins; set from the table's order
	flags  uint8
	cont   int8  // the container its object or array value is, or -1
	marker uint8 // GELF markers
	multi  bool  // resourceLogs: an OpenTelemetry export
	plain  bool  // a role, and no container, marker or multi: set from the table
}

// unknownKey is what a key without a meaning is.
var unknownKey = &keyInfo{role: -1, cont: -1}

// knownKey is a key and its meaning.
type knownKey struct {
	name string
	info keyInfo
}

// knownKeys is the one table of the keys with a meaning. Within a role,
// the order of the rows is the precedence: when a frame has several of a
// role's keys, the first listed wins and the others are kept as
// attributes. lookupKey and the documentation's table (Precedence) are
// made from it.
var knownKeys = rank([]knownKey{
	{"timestamp", role(rTime)},
	{"@timestamp", role(rTime)},
	{"time", role(rTime)},
	{"ts", role(rTime)},
	{"t", role(rTime)},
	{"date", role(rTime)},
	{"timeUnixNano", withFlags(role(rTime), kNanos)},
	{"time_unix_nano", withFlags(role(rTime), kNanos)},
	{"observedTimeUnixNano", withFlags(role(rTime), kNanos)},
	{"observed_time_unix_nano", withFlags(role(rTime), kNanos)},

	{"level", role(rLevel)},
	{"severity_text", role(rLevel)},
	{"severityText", role(rLevel)},
	{"severity", withFlags(role(rLevel), kSeverityNum)},
	{"lvl", role(rLevel)},
	{"levelname", role(rLevel)},
	{"log.level", role(rLevel)},
	{"detected_level", role(rLevel)},

	{"severity_number", role(rSeverity)},
	{"severityNumber", role(rSeverity)},

	{"message", role(rMessage)},
	{"msg", role(rMessage)},
	{"short_message", withMarker(role(rMessage), gelfShortMessage)},
	{"text", role(rMessage)},
	{"body", withCont(role(rMessage), cBody)},
	{"log", withCont(role(rMessage), cLog)}, // a string: Docker and Fluent Bit; an object: ECS

	{"service", withCont(role(rService), cService)},
	{"service.name", role(rService)},
	{"service_name", role(rService)},
	{"_service", role(rService)},
	{"app", role(rService)},
	{"application", role(rService)},
	{"_app", role(rService)},
	{"name", role(rService)},
	{"logger", role(rService)},

	{"component", role(rComponent)},

	{"trace_id", role(rTrace)},
	{"traceId", role(rTrace)},
	{"trace.id", role(rTrace)},

	{"span_id", role(rSpan)},
	{"spanId", role(rSpan)},
	{"span.id", role(rSpan)},

	{"parent_id", role(rParent)},
	{"parentSpanId", role(rParent)},
	{"parent_span_id", role(rParent)},

	{"trace", keyInfo{role: -1, cont: cTrace}},
	{"span", keyInfo{role: -1, cont: cSpan}},
	{"attributes", keyInfo{role: -1, cont: cAttributes}},
	{"resource", keyInfo{role: -1, cont: cResource}},
	{"scope", keyInfo{role: -1, cont: cScope}},
	{"resourceLogs", keyInfo{role: -1, cont: -1, multi: true}},
	{"resource_logs", keyInfo{role: -1, cont: -1, multi: true}},
	{"version", keyInfo{role: -1, cont: -1, marker: gelfVersion}},
})

func role(r int) keyInfo                    { return keyInfo{role: int8(r), cont: -1} }
func withFlags(k keyInfo, f uint8) keyInfo  { k.flags = f; return k }
func withMarker(k keyInfo, m uint8) keyInfo { k.marker = m; return k }
func withCont(k keyInfo, c int8) keyInfo    { k.cont = c; return k }

// rank sets each key's rank from its row's place among its role's rows,
// and plain on the keys that are a role's and nothing more.
func rank(keys []knownKey) []knownKey {
	var next [numRoles]uint8
	for i := range keys {
		k := &keys[i].info
		if k.role >= 0 {
			k.rank = next[k.role]
			next[k.role]++
		}
		// A nanosecond time (OTLP's) is looked at first: 0 means unset.
		k.plain = k.role >= 0 && k.cont < 0 && k.marker == 0 && !k.multi && k.flags&kNanos == 0
	}
	return keys
}

// lookupKey (keys_lookup.go) maps a member's key to its meaning: it is
// generated from knownKeys by TestLookupKeyGenerated, as a switch on the
// key's length and then its bytes. Most keys never reach it: shortKey
// reads a key of up to 15 bytes and finds its meaning in one step, from
// the key's bytes as two machine words.
//go:generate go test -run ^TestLookupKeyGenerated$ -update

// Precedence returns, for each role that has keys, its keys in order of
// precedence and what it falls back to: the table the documentation
// shows (a test keeps them in step).
func Precedence() []RoleKeys {
	out := make([]RoleKeys, 0, numRoles)
	for r := range numRoles {
		rk := RoleKeys{Role: roleNames[r], Then: containerFallbacks[r]}
		for _, k := range knownKeys {
			if int(k.info.role) == r {
				rk.Keys = append(rk.Keys, k.name)
			}
		}
		out = append(out, rk)
	}
	return out
}

// RoleKeys is one row of the precedence table: a field of the entry, the
// keys it is read from (the first present wins) and what it falls back to.
type RoleKeys struct {
	Role string
	Keys []string
	Then string
}

// shortKey reads the key at s.i (its opening quote) and looks it up in
// one step, when the key is short and plain: 1-15 bytes without an escape
// or a control character, with 16 bytes of frame after its opening quote.
// ok is false for any other key, which is then read by str and looked up
// by lookupKey; nothing has moved.
//
// It is written for latency, as it runs for every member: the slot to
// look in is picked from the key's first four bytes and its length, so
// that the table is read while the key's words are still being masked.
func (s *cursor) shortKey() (k *keyInfo, ok bool) {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	d := s.data
	i := s.i + 1
	if i < 0 || i+16 > len(d) {
		return nil, false
	}
	w0 := binary.LittleEndian.Uint64(d[i : i+8])
	w1 := binary.LittleEndian.Uint64(d[i+8 : i+16])
	zero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	q0, m0 := zero(w0^(ones*'"')), special8(w0)
	var n int
	var q uint64 // the key's end, if it is a quote
	if m0 != 0 {
		n = bits.TrailingZeros64(m0) >> 3
		q = q0 & m0 & -m0
	} else {
		m1 := special8(w1)
		n = 8 + bits.TrailingZeros64(m1)>>3
		q = zero(w1^(ones*'"')) & m1 & -m1
	}
	if q == 0 || n == 0 {
		return nil, false // an escape or a control character first, no end in 16 bytes, or ""
	}
	first4 := uint32(w0)
	if n < 4 {
		first4 &= 1<<(8*n) - 1
	}
	h := wordHash(first4, n)
	if n < 8 {
		w0 &= 1<<(8*n) - 1
		w1 = 0
	} else {
		w1 &= 1<<(8*(n-8)) - 1
	}
	s.high |= w0 | w1
	s.i = i + n + 1
	for ; ; h = (h + 1) & (len(shortKeys) - 1) {
		switch e := &shortKeys[h]; {
		case e.info == nil:
			return unknownKey, true
		case e.w0 == w0 && e.w1 == w1:
			return e.info, true
		}
	}
}

// shortKeys holds the known keys of 1-15 bytes by their bytes as two
// little-endian words (zero past the key's end, which a key's own bytes
// never are, so the words say the length too), open-addressed by
// wordHash: what shortKey looks a key up in.
var shortKeys = func() (t [256]shortKeyEntry) {
	for i := range knownKeys {
		name := knownKeys[i].name
		if len(name) == 0 || len(name) >= 16 {
			continue
		}
		var b [16]byte
		copy(b[:], name)
		w0, w1 := binary.LittleEndian.Uint64(b[:8]), binary.LittleEndian.Uint64(b[8:])
		h := wordHash(uint32(w0), len(name))
		for t[h].info != nil {
			h = (h + 1) & (len(t) - 1)
		}
		t[h] = shortKeyEntry{w0: w0, w1: w1, info: &knownKeys[i].info}
	}
	return t
}()

type shortKeyEntry struct {
	w0, w1 uint64
	info   *keyInfo // nil: an empty slot
}

// wordHash spreads keys over shortKeys' slots by their first four bytes
// (zeros past a shorter key's end) and their length.
func wordHash(first4 uint32, n int) int {
	return int((uint64(first4^uint32(n)<<27) * 0x9e3779b97f4a7c15) >> 56)
}

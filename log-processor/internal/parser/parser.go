// Package parser turns one WebSocket frame of JSON into a validated,
// normalised models.LogEntry, or says why it cannot.
//
// It is a single-pass scanner specialised for the fields of a LogEntry: it
// validates the whole frame as JSON (strings, numbers, nesting, trailing
// bytes), picks out the known fields, and skips any others. A rejected frame
// costs no allocation; an accepted one costs one (the strings of the entry
// share a single copy of their own bytes, never of the rest of the frame),
// plus one per field that contains escape sequences.
package parser

import (
	"encoding/binary"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// DefaultMaxSkew is how far a timestamp may lie from now, either way, when
// Parser.MaxSkew is zero.
const DefaultMaxSkew = 7 * 24 * time.Hour

// MaxDepth is the deepest nesting of objects and arrays accepted inside a
// frame (the top-level object is depth 1).
const MaxDepth = 32

// Default bounds on the length of an entry's string fields, in bytes after
// unescaping. They keep every accepted entry storable by every backend (a
// PostgreSQL btree index row holds at most 2704 bytes) and bound the memory
// one entry can hold.
const (
	DefaultMaxMessageBytes = 64 << 10 // message
	DefaultMaxNameBytes    = 256      // service and component
	DefaultMaxIDBytes      = 128      // trace_id, span_id and parent_id
)

// Parser validates and normalises frames. The zero value is ready to use and
// applies the defaults. A Parser is immutable and safe for concurrent use.
type Parser struct {
	// MaxSkew bounds |timestamp - now|. Zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// MaxMessageBytes, MaxNameBytes and MaxIDBytes bound the fields'
	// lengths; a longer field rejects the frame as field_too_long. Zero
	// means the default.
	MaxMessageBytes int
	MaxNameBytes    int
	MaxIDBytes      int
}

// limits returns the length bound of each string field, indexed by field.
func (p Parser) limits() [numFields]int {
	orDefault := func(v, d int) int {
		if v <= 0 {
			return d
		}
		return v
	}
	name, id := orDefault(p.MaxNameBytes, DefaultMaxNameBytes), orDefault(p.MaxIDBytes, DefaultMaxIDBytes)
	return [numFields]int{
		fMessage: orDefault(p.MaxMessageBytes, DefaultMaxMessageBytes),
		fService: name, fComponent: name,
		fTraceID: id, fSpanID: id, fParentID: id,
	}
}

// Known fields, in the order of the bit they set in scan.seen.
const (
	fTimestamp = iota
	fLevel
	fMessage
	fService
	fComponent
	fTraceID
	fSpanID
	fParentID
	numFields
)

// value records where a known field's value lies in the frame.
type value struct {
	start, end int  // for strings: the bytes between the quotes
	kind       byte // '"' string, '0' number, 'n' null, 'x' any other JSON value
	escaped    bool // the string contains backslash escapes
}

// Parse parses one frame. now is the receive time, used for the timestamp
// window. On OK the entry is filled in; for every other Reason it is zero.
// Parse never panics and never retains data.
func (p Parser) Parse(data []byte, now time.Time) (models.LogEntry, Reason) {
	var s scan
	s.data = data
	if r := s.object(); r != OK {
		return models.LogEntry{}, r
	}
	if !utf8.Valid(data) {
		return models.LogEntry{}, InvalidUTF8
	}
	return p.build(&s, now)
}

// build validates the fields found by scan and assembles the entry.
func (p Parser) build(s *scan, now time.Time) (models.LogEntry, Reason) {
	var e models.LogEntry
	if s.seen&(1<<fLevel) == 0 {
		return e, Control
	}
	if e.Level = s.level(); e.Level == "" {
		return e, InvalidLevel
	}

	ts := s.fields[fTimestamp]
	if s.seen&(1<<fTimestamp) == 0 || ts.kind != '0' {
		return models.LogEntry{}, InvalidTimestamp
	}
	ms, r := parseMillis(s.data[ts.start:ts.end])
	if r != OK {
		return models.LogEntry{}, r
	}
	skew := p.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	nowMs := now.UnixMilli()
	if d := skew.Milliseconds(); ms < nowMs-d || ms > nowMs+d {
		return models.LogEntry{}, TimestampOutOfRange
	}
	e.Timestamp = ms

	// Every string field must be a string or null, and within its bound.
	// Escaped fields are decoded first (decoding never lengthens a string)
	// and must not hold NUL, which PostgreSQL cannot store: what the parser
	// accepts, every backend stores.
	limits := p.limits()
	var decoded [numFields]string
	own := 0 // bytes of the unescaped string fields, copied below
	for f := fMessage; f < numFields; f++ {
		v := &s.fields[f]
		switch v.kind {
		case '"':
			n := v.end - v.start
			if v.escaped {
				decoded[f] = unescape(s.data[v.start:v.end])
				if strings.IndexByte(decoded[f], 0) >= 0 {
					return models.LogEntry{}, NulCharacter
				}
				n = len(decoded[f])
			} else {
				own += n
			}
			if n > limits[f] {
				return models.LogEntry{}, FieldTooLong
			}
		case 'x', '0':
			return models.LogEntry{}, InvalidField
		}
	}
	if !s.nonEmpty(fService) {
		return models.LogEntry{}, MissingService
	}
	if !s.nonEmpty(fMessage) {
		return models.LogEntry{}, MissingMessage
	}

	// One copy holding the unescaped string fields back to back, so that an
	// entry keeps alive only its own bytes, never the frame around them.
	var b strings.Builder
	b.Grow(own)
	for f := fMessage; f < numFields; f++ {
		if v := s.fields[f]; v.kind == '"' && !v.escaped {
			b.Write(s.data[v.start:v.end])
		}
	}
	buf, off := b.String(), 0
	str := func(f int) string {
		v := s.fields[f]
		switch {
		case v.kind != '"':
			return ""
		case v.escaped:
			return decoded[f]
		}
		off += v.end - v.start
		return buf[off-(v.end-v.start) : off]
	}
	// In field order, as copied.
	e.Message = str(fMessage)
	e.Service = str(fService)
	e.Component = str(fComponent)
	e.TraceID = str(fTraceID)
	e.SpanID = str(fSpanID)
	e.ParentID = str(fParentID)
	return e, OK
}

// nonEmpty reports whether field f is a string with at least one character.
func (s *scan) nonEmpty(f int) bool {
	v := s.fields[f]
	return v.kind == '"' && v.end > v.start
}

// level returns the normalised level, or "" when it is not a valid one.
func (s *scan) level() string {
	v := s.fields[fLevel]
	if v.kind != '"' {
		return ""
	}
	b := s.data[v.start:v.end]
	if v.escaped {
		b = []byte(unescape(b))
	}
	switch {
	case equalFold(b, models.LevelInfo):
		return models.LevelInfo
	case equalFold(b, models.LevelWarn):
		return models.LevelWarn
	case equalFold(b, models.LevelError):
		return models.LevelError
	}
	return ""
}

// equalFold reports whether b equals the upper-case ASCII word upper,
// ignoring ASCII case.
func equalFold(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// parseMillis parses a JSON number that must be an integer. Negative and
// too-large integers are out of range; fractions and exponents are invalid.
func parseMillis(b []byte) (int64, Reason) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	var n int64
	for i, c := range b {
		if c < '0' || c > '9' {
			return 0, InvalidTimestamp
		}
		if i >= 18 { // more digits than any plausible Unix ms value
			return 0, TimestampOutOfRange
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		return 0, TimestampOutOfRange
	}
	return n, OK
}

// scan is the state of one pass over a frame.
type scan struct {
	data   []byte
	i      int
	seen   uint16 // bit f set when known field f was present
	fields [numFields]value
}

func (s *scan) ws() {
	if s.i < len(s.data) && s.data[s.i] > ' ' {
		return // the usual case: compact JSON
	}
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object scans the whole frame, which must be one JSON object and nothing
// else.
func (s *scan) object() Reason {
	s.ws()
	if s.i >= len(s.data) {
		return InvalidJSON
	}
	if s.data[s.i] != '{' {
		// Some other JSON value, or garbage.
		if r := s.skip(1); r != OK {
			return r
		}
		if s.end() != OK {
			return InvalidJSON
		}
		return NotObject
	}
	s.i++
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == '}' {
		s.i++
		return s.end()
	}
	for {
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return InvalidJSON
		}
		ks, ke, kesc, ok := s.str()
		if !ok {
			return InvalidJSON
		}
		s.ws()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return InvalidJSON
		}
		s.i++
		s.ws()
		f := fieldIndex(s.data[ks:ke], kesc)
		if f < 0 {
			if r := s.skip(2); r != OK {
				return r
			}
		} else {
			if s.seen&(1<<f) != 0 {
				return DuplicateField
			}
			s.seen |= 1 << f
			if r := s.known(&s.fields[f]); r != OK {
				return r
			}
		}
		s.ws()
		if s.i >= len(s.data) {
			return InvalidJSON
		}
		switch s.data[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return s.end()
		default:
			return InvalidJSON
		}
	}
}

// end accepts only whitespace after the top-level object.
func (s *scan) end() Reason {
	s.ws()
	if s.i != len(s.data) {
		return InvalidJSON
	}
	return OK
}

// known records the value of a known field, validating it like any other.
func (s *scan) known(v *value) Reason {
	if s.i >= len(s.data) {
		return InvalidJSON
	}
	start := s.i
	switch c := s.data[s.i]; {
	case c == '"':
		st, en, esc, ok := s.str()
		if !ok {
			return InvalidJSON
		}
		*v = value{start: st, end: en, kind: '"', escaped: esc}
		return OK
	case c == '-' || ('0' <= c && c <= '9'):
		if !s.number() {
			return InvalidJSON
		}
		*v = value{start: start, end: s.i, kind: '0'}
		return OK
	case c == 'n':
		if !s.literal("null") {
			return InvalidJSON
		}
		v.kind = 'n'
		return OK
	}
	if r := s.skip(2); r != OK {
		return r
	}
	v.kind = 'x'
	return OK
}

// skip validates and steps over one JSON value at nesting depth depth.
func (s *scan) skip(depth int) Reason {
	if s.i >= len(s.data) {
		return InvalidJSON
	}
	switch c := s.data[s.i]; c {
	case '"':
		if _, _, _, ok := s.str(); !ok {
			return InvalidJSON
		}
		return OK
	case 't':
		return okIf(s.literal("true"))
	case 'f':
		return okIf(s.literal("false"))
	case 'n':
		return okIf(s.literal("null"))
	case '{', '[':
		if depth > MaxDepth {
			return TooDeep
		}
		return s.container(c, depth)
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			return okIf(s.number())
		}
		return InvalidJSON
	}
}

// container steps over an object or array whose opening byte is open.
func (s *scan) container(open byte, depth int) Reason {
	closer := byte(']')
	if open == '{' {
		closer = '}'
	}
	s.i++
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == closer {
		s.i++
		return OK
	}
	for {
		if open == '{' {
			if s.i >= len(s.data) || s.data[s.i] != '"' {
				return InvalidJSON
			}
			if _, _, _, ok := s.str(); !ok {
				return InvalidJSON
			}
			s.ws()
			if s.i >= len(s.data) || s.data[s.i] != ':' {
				return InvalidJSON
			}
			s.i++
			s.ws()
		}
		if r := s.skip(depth + 1); r != OK {
			return r
		}
		s.ws()
		if s.i >= len(s.data) {
			return InvalidJSON
		}
		switch s.data[s.i] {
		case ',':
			s.i++
			s.ws()
		case closer:
			s.i++
			return OK
		default:
			return InvalidJSON
		}
	}
}

func okIf(ok bool) Reason {
	if ok {
		return OK
	}
	return InvalidJSON
}

func (s *scan) literal(word string) bool {
	if len(s.data)-s.i < len(word) || string(s.data[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// plain marks the bytes that need no attention inside a JSON string: not
// the quote, not the backslash, not a control character.
var plain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

// special8 reports whether any of the eight bytes in x is a quote, a
// backslash or a control character (SWAR: the classic has-zero-byte test).
func special8(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	quote, bslash := x^(ones*'"'), x^(ones*'\\')
	control := (x - ones*0x20) & ^x & highs // bytes below 0x20
	return zero(quote)|zero(bslash)|control != 0
}

// str steps over a string starting at the opening quote and returns the
// bounds of its contents and whether it holds escapes.
func (s *scan) str() (start, end int, escaped, ok bool) {
	s.i++
	start = s.i
	d := s.data
	for i := s.i; i < len(d); i++ {
		// Eight bytes at a time while none needs attention, then one by one.
		for i+8 <= len(d) && !special8(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i >= len(d) {
			break
		}
		switch c := d[i]; {
		case c == '"':
			s.i = i + 1
			return start, i, escaped, true
		case c == '\\':
			escaped = true
			i++
			if i >= len(d) {
				return 0, 0, false, false
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(d) || !isHex(d[i+1]) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) {
					return 0, 0, false, false
				}
				i += 4
			default:
				return 0, 0, false, false
			}
		case c < 0x20:
			return 0, 0, false, false
		}
	}
	return 0, 0, false, false
}

// number steps over a JSON number, checking its grammar.
func (s *scan) number() bool {
	d, i := s.data, s.i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		return false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			return false
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			return false
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	s.i = i
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// fieldIndex maps a key to its known field, or -1.
func fieldIndex(key []byte, escaped bool) int {
	if escaped {
		key = []byte(unescape(key))
	}
	switch string(key) {
	case "timestamp":
		return fTimestamp
	case "level":
		return fLevel
	case "message":
		return fMessage
	case "service":
		return fService
	case "component":
		return fComponent
	case "trace_id":
		return fTraceID
	case "span_id":
		return fSpanID
	case "parent_id":
		return fParentID
	}
	return -1
}

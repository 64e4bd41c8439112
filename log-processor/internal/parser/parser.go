// Package parser turns one WebSocket frame of JSON into a validated,
// normalised models.LogEntry, or says why it cannot.
//
// It reads the JSON that common logging libraries write (log/slog, zap,
// zerolog, logrus, pino, bunyan, winston, ECS, OpenTelemetry, GELF) as well
// as the generator's own format, with no configuration: each field of the entry
// is looked for under the names those libraries use (see keys.go for the
// names and their precedence), levels and times are normalised (levels.go,
// times.go), and every other field is kept in the entry's Attrs.
//
// It is a single-pass scanner: it validates the whole frame as JSON
// (strings, numbers, nesting, trailing bytes), records where the fields it
// knows lie and where the others (the attributes) lie, and skips nothing
// unchecked; an OpenTelemetry record's body and attribute list are read in
// that same pass (otelscan.go). A rejected frame costs no allocation (unless
// it has more than inlineAttrs unknown fields); an accepted one costs one:
// the entry's strings and attributes share a single copy of their own
// bytes, never of the rest of the frame, plus one per field that contains
// escape sequences.
// An OpenTelemetry export (resourceLogs) holds many records: Parse says
// Multi, and ParseEach reads them one by one. A source parses its frames
// with ParseWith and a Shape of its own, which remembers the keys of the
// frames before: a source's frames usually name the same keys in the same
// order, and such a key is then matched byte for byte, not looked up.
package parser

import (
	"bytes"
	"encoding/binary"
	"math/bits"
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
	DefaultMaxAttrsBytes   = 16 << 10 // the attributes, as JSON
)

// Parser validates and normalises frames. The zero value is ready to use and
// applies the defaults. A Parser is not changed by parsing and is safe for concurrent use.
type Parser struct {
	// MaxSkew bounds |timestamp - now|. Zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// MaxMessageBytes, MaxNameBytes and MaxIDBytes bound the fields'
	// lengths; a longer field rejects the frame as field_too_long. Zero
	// means the default.
	MaxMessageBytes int
	MaxNameBytes    int
	MaxIDBytes      int
	// MaxAttrsBytes bounds the attributes kept per entry; fields beyond it
	// are left out and the attributes get "_truncated": true. Zero means
	// DefaultMaxAttrsBytes.
	MaxAttrsBytes int
	// MinLevel is the lowest level kept: entries below it are counted as
	// below_min_level. Zero means INFO; see Level.
	MinLevel Level
	// DefaultService names the service of an entry that has none: the
	// source's name. Empty means such an entry is missing_service.
	DefaultService string
	// DefaultLevel is the level of an entry that names none (a log line
	// with a message and no level); such entries are counted as
	// default_level. Zero means INFO.
	DefaultLevel Level

	general bool // tests: build never takes its compact path
}

// limit returns the length bound of string role f.
func (p *Parser) limit(f int) int {
	v, d := p.MaxIDBytes, DefaultMaxIDBytes
	switch f {
	case rMessage:
		v, d = p.MaxMessageBytes, DefaultMaxMessageBytes
	case rService, rComponent:
		v, d = p.MaxNameBytes, DefaultMaxNameBytes
	}
	if v <= 0 {
		return d
	}
	return v
}

// value records where a field's value lies in the frame.
type value struct {
	start, end int  // for strings: the bytes between the quotes
	kind       byte // '"' string, '0' number, 'n' null, 'b' true or false, '{' object, '[' array
	escaped    bool // the string contains backslash escapes
}

// slot is the value chosen so far for one role, and the key it came under.
type slot struct {
	value
	key *keyInfo // nil until the role has a value
	ks  int      // where the member starts (its key's opening quote)
}

// Parse parses one frame. now is the receive time, used for the timestamp
// window. On OK the entry is filled in; for every other Reason it is zero.
// Multi means the frame is an OpenTelemetry export of many records: call
// ParseEach. Parse never panics and never retains data.
func (p *Parser) Parse(data []byte, now time.Time) (models.LogEntry, Reason) {
	return p.ParseWith(nil, data, now)
}

// ParseWith is Parse, with the keys matched against sh's, and sh updated
// (see Shape). A nil sh is Parse.
func (p *Parser) ParseWith(sh *Shape, data []byte, now time.Time) (models.LogEntry, Reason) {
	var e models.LogEntry
	r := p.ParseInto(sh, data, now, &e)
	return e, r
}

// ParseInto is ParseWith writing the entry into *e, all of its fields,
// and only for an entry (Reason.IsEntry): for any other Reason *e is as it
// was. It spares a caller that keeps entries in a slice (an intake's
// batch) a copy of each.
func (p *Parser) ParseInto(sh *Shape, data []byte, now time.Time, e *models.LogEntry) Reason {
	var s scan
	s.data, s.shape = data, sh
	s.maxAttrs = p.MaxAttrsBytes
	if s.maxAttrs <= 0 {
		s.maxAttrs = DefaultMaxAttrsBytes
	}
	if sh == nil || sh.n == 0 || !s.laidOut() {
		if sh != nil && sh.n > 0 { // the layout broke: start over
			sh.n, sh.cool = 0, layoutCool
			s = scan{cursor: cursor{data: data}, shape: sh, maxAttrs: s.maxAttrs}
		}
		if r := s.object(); r != OK {
			return r
		}
	}
	if s.nonASCII() && !utf8.Valid(data) {
		return InvalidUTF8
	}
	if s.multi {
		return Multi
	}
	return p.build(&s, now, e)
}

// cursor is a position in a frame: the JSON primitives (strings,
// numbers, skipping values) move it. It is small, so that walking a nested
// object costs no more than the few words it holds.
type cursor struct {
	data   []byte
	i      int
	high   uint64 // the bytes of every string read, ORed; see nonASCII
	esc    bool   // some string read held an escape
	spaced bool   // ws stepped over whitespace
}

// nonASCII reports whether a string read so far held a byte of 0x80 or
// more. Outside strings the grammar allows only ASCII, so a frame whose
// strings are ASCII is valid UTF-8 without a second look.
func (s *cursor) nonASCII() bool { return s.high&0x8080808080808080 != 0 }

// scan is the state of one pass over a frame.
type scan struct {
	cursor
	roles   [numRoles]slot
	conts   [numContainers]value // containers found; kind 0 when absent
	anyCont bool                 // some container was found
	gelf    uint8                // GELF markers seen (version, short_message)
	shape   *Shape               // the keys of the frames before, or nil
	multi   bool                 // a resourceLogs export

	// The members kept as attributes: where each key and value lies in the
	// frame, so that build copies them once, straight into the entry.
	attrs     [inlineAttrs]attrSpan
	moreAttrs []attrSpan // beyond inlineAttrs
	nAttrs    int
	attrsLen  int // the kept members' length as JSON: commas, no braces
	maxAttrs  int
	truncated bool // some members did not fit in maxAttrs
}

// inlineAttrs is how many attributes a scan holds without allocating: more
// than the common libraries write besides the model's fields.
const inlineAttrs = 12

// attrSpan is a kept member: its key's and its value's raw JSON in the
// frame, and the prefix its key is written with (an OpenTelemetry
// resource's or scope's attribute).
type attrSpan struct {
	ks, ke, vs, ve int
	prefix         uint8
}

// Prefixes of kept keys: pNone, or the attribute of an OpenTelemetry
// resource or instrumentation scope.
const (
	pNone = iota
	pResource
	pScope
)

var prefixes = [...]string{pNone: "", pResource: "resource.", pScope: "scope."}

// attr returns the i'th kept member.
func (s *scan) attr(i int) attrSpan {
	if i < inlineAttrs {
		return s.attrs[i]
	}
	return s.moreAttrs[i-inlineAttrs]
}

func (s *cursor) ws() {
	if s.i < len(s.data) && s.data[s.i] > ' ' {
		return // the usual case: compact JSON
	}
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
			s.spaced = true
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
	// With a Shape, note the frame's layout while it stays simple, for the
	// frames after it (see laidOut).
	layout, seen := false, uint16(0)
	if sh := s.shape; sh != nil {
		sh.n = 0
		if layout = sh.cool == 0; !layout {
			sh.cool--
		}
	}
	for j := 0; ; j++ {
		if s.i >= len(s.data) || s.data[s.i] != '"' {
			return InvalidJSON
		}
		memberStart := s.i
		var k *keyInfo
		ok, memo := false, false
		if s.shape != nil {
			k, ok = s.shape.match(&s.cursor, j)
			memo = ok
		}
		if !ok {
			if k, ok = s.shortKey(); ok {
				if s.shape != nil {
					memo = s.shape.remember(j, s.data[memberStart+1:s.i-1], k)
				}
			} else {
				ks, ke, kesc, ok := s.str()
				if !ok {
					return InvalidJSON
				}
				k = lookupKey(s.data[ks:ke], kesc)
			}
		}
		s.ws()
		if s.i >= len(s.data) || s.data[s.i] != ':' {
			return InvalidJSON
		}
		s.i++
		s.ws()
		valueStart := s.i
		if r := s.member(memberStart, k); r != OK {
			return r
		}
		if layout {
			layout = s.noteLayout(j, k, memberStart, valueStart, memo, &seen)
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
			spaced := s.spaced // whitespace after the object is no matter
			r := s.end()
			if r == OK && layout && !spaced {
				s.shape.n = j + 1
			}
			return r
		default:
			return InvalidJSON
		}
	}
}

// member reads the value of the member starting at ms whose key is k, and
// records it: as a role's candidate, as a container, or as an attribute.
func (s *scan) member(ms int, k *keyInfo) Reason {
	if s.i >= len(s.data) {
		return InvalidJSON
	}
	vs := s.i
	var v value
	switch c := s.data[s.i]; {
	case c == '"':
		st, en, esc, ok := s.str()
		if !ok {
			return InvalidJSON
		}
		v = value{start: st, end: en, kind: '"', escaped: esc}
	case c == '-' || ('0' <= c && c <= '9'):
		if !s.number() {
			return InvalidJSON
		}
		v = value{start: vs, end: s.i, kind: '0'}
	case c == 'n':
		if !s.literal("null") {
			return InvalidJSON
		}
		v = value{start: vs, end: s.i, kind: 'n'}
	case c == '{' || c == '[' || c == 't' || c == 'f':
		switch { // OpenTelemetry's, read in the one pass (see otelscan.go)
		case k.cont == cAttributes && c == '[':
			return s.attributes(vs)
		case k.cont == cBody && c == '{':
			return s.body()
		}
		if r := s.skip(2); r != OK {
			return r
		}
		v = value{start: vs, end: s.i, kind: c}
		if c == 't' || c == 'f' {
			v.kind = 'b'
		}
	default:
		return InvalidJSON
	}
	if k.plain { // the usual case: a role's value, nothing else to check
		cur := &s.roles[k.role]
		if cur.key == nil {
			cur.start, cur.end, cur.kind, cur.escaped = v.start, v.end, v.kind, v.escaped // field by field: see laidOut
			cur.key, cur.ks = k, ms
			return OK
		}
	}
	if k.flags&kNanos != 0 && zeroTime(s.data[v.start:v.end]) {
		return OK // OTLP's 0: no time; the next name may give one
	}
	if k.marker != 0 {
		s.gelf |= k.marker
	}
	if k.multi && (v.kind == '{' || v.kind == '[') {
		s.multi = true
		return OK
	}
	if k.cont >= 0 && v.kind == containerKinds[k.cont] {
		c := &s.conts[k.cont]
		if c.kind != 0 {
			return DuplicateField
		}
		*c = v
		s.anyCont = true
		switch {
		case keepContainer[k.cont]:
			s.keep(ms, vs, s.i)
		case k.cont == cResource || k.cont == cScope:
			s.keepOTel(int(k.cont), v)
		}
		return OK
	}
	if k.role < 0 {
		s.keep(ms, vs, s.i)
		return OK
	}
	cur := &s.roles[k.role]
	switch {
	case cur.key == nil:
		cur.value, cur.key, cur.ks = v, k, ms
	case cur.key.rank == k.rank:
		return DuplicateField
	case k.rank < cur.key.rank: // the new one takes precedence: keep the old as an attribute
		vs, ve := cur.rawSpan()
		s.keepRaw(cur.ks, cur.ks+keyEnd(s.data[cur.ks:]), vs, ve)
		cur.value, cur.key, cur.ks = v, k, ms
	default:
		s.keep(ms, vs, s.i)
	}
	return OK
}

// keep appends the member whose key starts at ms and whose value spans
// vs:ve to the attributes (see keepRaw).
func (s *scan) keep(ms, vs, ve int) {
	s.keepRaw(ms, ms+keyEnd(s.data[ms:]), vs, ve)
}

// keyEnd returns the length of the JSON string (quotes included) at the
// start of b, which the scanner has validated.
func keyEnd(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// unstorable reports whether raw JSON b holds an escape that PostgreSQL's
// jsonb refuses: \u0000, or a surrogate (which can be lone).
func unstorable(b []byte) bool {
	for {
		i := bytes.IndexByte(b, '\\') // most values have no escape at all
		if i < 0 || i+5 >= len(b) {
			return false
		}
		if b[i+1] != 'u' {
			b = b[i+2:]
			continue
		}
		h := b[i+2 : i+6]
		if string(h) == "0000" || ((h[0] == 'd' || h[0] == 'D') && strings.IndexByte("89abcdefABCDEF", h[1]) >= 0) {
			return true
		}
		b = b[i+6:]
	}
}

// end accepts only whitespace after the top-level object.
func (s *cursor) end() Reason {
	s.ws()
	if s.i != len(s.data) {
		return InvalidJSON
	}
	return OK
}

// skip validates and steps over one JSON value at nesting depth depth.
func (s *cursor) skip(depth int) Reason {
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
func (s *cursor) container(open byte, depth int) Reason {
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

func (s *cursor) literal(word string) bool {
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

// special8 marks, in the high bit of each of the eight bytes of x, those
// that are a quote, a backslash or a control character (SWAR: the classic
// has-zero-byte test). A mark can be false only above a true one, so the
// lowest mark is exact: the first byte that needs attention.
func special8(x uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	quote, bslash := x^(ones*'"'), x^(ones*'\\')
	control := (x - ones*0x20) & ^x & highs // bytes below 0x20
	return zero(quote) | zero(bslash) | control
}

// str steps over a string starting at the opening quote and returns the
// bounds of its contents and whether it holds escapes.
func (s *cursor) str() (start, end int, escaped, ok bool) {
	start = s.i + 1
	d := s.data
	var acc uint64 // every byte passed, ORed: its high bits tell non-ASCII
	i := start
	for {
		// Eight bytes at a time up to the first that needs attention, then
		// (near the end of the frame) one by one. acc may take in bytes
		// past the string: that only makes nonASCII cautious.
		if i+8 <= len(d) {
			x := binary.LittleEndian.Uint64(d[i : i+8])
			acc |= x
			m := special8(x)
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(d) && plain[d[i]] {
				acc |= uint64(d[i])
				i++
			}
			if i >= len(d) {
				return 0, 0, false, false
			}
		}
		switch d[i] {
		case '"':
			s.i = i + 1
			s.high |= acc
			return start, i, escaped, true
		case '\\':
			escaped, s.esc = true, true
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
			i++
		default: // a control character
			return 0, 0, false, false
		}
	}
}

// number steps over a JSON number, checking its grammar.
func (s *cursor) number() bool {
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

// Elements calls fn with each element of the JSON array that data holds
// (whitespace around it allowed), in order, until fn returns false. It
// validates the array as it goes and returns OK, or InvalidJSON (or
// TooDeep) at the first flaw, having called fn for the elements before
// it. It allocates nothing, so that a body of many elements costs no
// memory in proportion to their number.
func Elements(data []byte, fn func(el []byte) bool) Reason {
	return walk(data, ']', false, func(_, el []byte) bool { return fn(el) })
}

// Members calls fn with each member of the JSON object that data holds
// (whitespace around it allowed), in order, until fn returns false: its
// key, decoded, and its value's JSON text. It validates the object as it
// goes and returns OK, or InvalidJSON (or TooDeep) at the first flaw,
// having called fn for the members before it. It allocates only for a key
// that holds escapes.
func Members(data []byte, fn func(key, value []byte) bool) Reason {
	return walk(data, '}', false, fn)
}

// Valid reports whether data is one JSON value, whitespace around it
// allowed, by the rules Parse applies: OK, InvalidJSON or TooDeep.
func Valid(data []byte) Reason {
	s := cursor{data: data}
	s.ws()
	if r := s.skip(0); r != OK {
		return r
	}
	return s.end()
}

// ValidMembers is Members for an object within data that Valid has
// accepted: it steps over values without validating them again (a nested
// walk costs a quick pass per level, not a validation), and returns
// InvalidJSON only when data is no object.
func ValidMembers(data []byte, fn func(key, value []byte) bool) Reason {
	return walk(data, '}', true, fn)
}

// ValidElements is Elements for an array within data that Valid has
// accepted, as ValidMembers is Members.
func ValidElements(data []byte, fn func(el []byte) bool) Reason {
	return walk(data, ']', true, func(_, el []byte) bool { return fn(el) })
}

// walk is Members (closer '}') and Elements (closer ']', no keys), over
// data validated as it goes, or, when valid is set, already validated.
func walk(data []byte, closer byte, valid bool, fn func(key, value []byte) bool) Reason {
	opener := byte('[')
	if closer == '}' {
		opener = '{'
	}
	s := cursor{data: data}
	s.ws()
	if s.i >= len(data) || data[s.i] != opener {
		return InvalidJSON
	}
	more := s.open(closer)
	if !more && data[s.i-1] != closer {
		return InvalidJSON // an opening bracket and nothing after it
	}
	for more {
		var k []byte
		if closer == '}' {
			key, escaped, ok := s.key()
			if !ok {
				return InvalidJSON
			}
			if k = key; escaped {
				k = []byte(unescape(key))
			}
		}
		start := s.i
		if valid {
			if !s.skipValid() {
				return InvalidJSON
			}
		} else if r := s.skip(2); r != OK {
			return r
		}
		if !fn(k, data[start:s.i]) {
			return OK
		}
		var r Reason
		if more, r = s.next(closer); r != OK {
			return r
		}
	}
	if valid {
		return OK
	}
	return s.end()
}

// StringOf returns the text of v, a JSON value as Members and Elements
// pass it, when v is a string: decoded, and without a copy when it holds
// no escapes (then it shares v's memory). ok is false for any other value.
func StringOf(v []byte) (text []byte, ok bool) {
	s := cursor{data: v}
	if len(v) < 2 || v[0] != '"' {
		return nil, false
	}
	start, end, escaped, ok := s.str()
	if !ok || s.i != len(v) {
		return nil, false
	}
	if escaped {
		return []byte(unescape(v[start:end])), true
	}
	return v[start:end], true
}

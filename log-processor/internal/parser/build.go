package parser

import (
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// strRef is a string value in a frame: the bytes between its quotes, in
// the frame itself or, when inner is set, in the JSON log its message held.
type strRef struct {
	start, end int
	escaped    bool
	ok         bool
	inner      bool
	pre        bool // decoded already: an OpenTelemetry body that is no string, as plain JSON
}

// build validates the fields found by scan and assembles the entry into
// *dst, which it writes only for an entry (Reason.IsEntry).
func (p *Parser) build(s *scan, now time.Time, dst *models.LogEntry) Reason {
	// A message that is itself a JSON log (Docker's {"log":"{\"level\"...}"})
	// is the entry, with the frame's own fields as defaults.
	lv, r := s.level()
	in := s.innerLog()
	if in != nil {
		if ilv, ir := in.level(); ir != Control {
			lv, r = ilv, ir
		}
	}
	switch {
	case r == Control && (s.hasMessage() || in != nil):
		// A log without a level: stored at the default level, and
		// counted as such.
		lv, r = p.DefaultLevel, DefaultLevel
		if lv == 0 {
			lv = LevelInfo
		}
	case r != OK:
		return r
	}
	if !p.Keeps(lv) {
		return BelowMinLevel
	}
	ts := s
	if in != nil && in.roles[rTime].key != nil {
		ts = in
	}
	ms := now.UnixMilli() // no time under any name: the receive time, as OTLP has it
	if ts.roles[rTime].key != nil {
		var tr Reason
		if ms, tr = ts.timestamp(); tr != OK {
			return tr
		}
	}
	skew := p.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if d := skew.Milliseconds(); ms < now.UnixMilli()-d || ms > now.UnixMilli()+d {
		return TimestampOutOfRange
	}

	if in == nil && s.plain() && !p.general {
		if r, ok := p.compact(s, lv, r, ms, dst); ok {
			return r
		}
	}

	// The string fields: from their members, or from the containers; the
	// inner log's first.
	var refs [numRoles]strRef
	if in != nil {
		if fr := in.stringRefs(&refs, true); fr != OK {
			return fr
		}
		if fr := s.stringRefs(&refs, false); fr != OK {
			return fr
		}
	} else {
		// The usual case, without an inner log: inline, as it runs for
		// every entry.
		for f := rMessage; f < numRoles; f++ {
			v := &s.roles[f]
			switch {
			case v.key == nil, v.kind == 'n':
			case v.kind == '"':
				refs[f] = strRef{start: v.start, end: v.end, escaped: v.escaped, ok: true}
			default:
				return InvalidField
			}
		}
		if s.anyCont {
			s.fromContainers(&refs, false)
		}
	}
	var decoded [numRoles]string
	if !refs[rMessage].ok && s.conts[cBody].kind == '{' {
		// A body that is no string (a map, an array, a number, bytes) is
		// the message as its plain JSON.
		if plain, ok := s.plainAnyValue(nil, s.conts[cBody]); ok {
			decoded[rMessage] = string(plain)
			refs[rMessage] = strRef{end: len(plain), escaped: true, ok: true, pre: true}
		}
	}
	var inData []byte
	if in != nil {
		inData = in.data
	}
	data := func(ref *strRef) []byte {
		if ref.inner {
			return inData
		}
		return s.data
	}

	// Every string field must be within its bound and must not hold NUL,
	// which PostgreSQL cannot store: what the parser accepts, every backend
	// stores. Escaped fields are decoded first (decoding never lengthens).
	own := 0 // bytes of the unescaped string fields, copied below
	// Below the smallest bound no field needs its own looked up.
	minLimit := min(p.limit(rMessage), p.limit(rService), p.limit(rTrace))
	lo, hi := len(s.data), 0 // the span of the unescaped fields (in the frame itself)
	for f := rMessage; f < numRoles; f++ {
		ref := &refs[f]
		if !ref.ok {
			continue
		}
		n := ref.end - ref.start
		if ref.escaped {
			if !ref.pre {
				decoded[f] = unescape(data(ref)[ref.start:ref.end])
			}
			if strings.IndexByte(decoded[f], 0) >= 0 {
				return NulCharacter
			}
			n = len(decoded[f])
		} else {
			own += n
			if !ref.inner {
				lo, hi = min(lo, ref.start), max(hi, ref.end)
			}
		}
		if n > minLimit && n > p.limit(f) {
			return FieldTooLong
		}
	}
	service := ""
	if refs[rService].end == refs[rService].start {
		refs[rService].ok = false
		service = p.DefaultService
		if service == "" {
			return MissingService
		}
	}
	if !refs[rMessage].ok || refs[rMessage].end == refs[rMessage].start {
		return MissingMessage
	}

	// The attributes: the frame's kept members, then the inner log's.
	nAttrs, attrsLen, truncated := s.nAttrs, s.attrsLen, s.truncated
	if in != nil {
		if in.nAttrs > 0 && nAttrs > 0 {
			attrsLen++ // the comma between the two
		}
		nAttrs, attrsLen, truncated = nAttrs+in.nAttrs, attrsLen+in.attrsLen, truncated || in.truncated
	}
	if nAttrs > 0 || truncated {
		attrsLen += 2
		if truncated {
			attrsLen += len(truncatedMark) + 1
		}
	}

	e := models.LogEntry{Timestamp: ms, Level: lv.String()}
	if in == nil && attrsLen == 0 && hi > lo && hi-lo-own <= maxSpanSlack {
		// The fields lie close together (the usual case): one copy of the
		// span from the first to the last, which holds little besides
		// them, so the entry still keeps only about its own bytes.
		span := string(s.data[lo:hi])
		var out [numRoles]string
		for f := rMessage; f < numRoles; f++ {
			switch ref := &refs[f]; {
			case !ref.ok:
			case ref.escaped:
				out[f] = decoded[f]
			default:
				out[f] = span[ref.start-lo : ref.end-lo]
			}
		}
		e.Message, e.Service, e.Component = out[rMessage], out[rService], out[rComponent]
		e.TraceID, e.SpanID, e.ParentID = out[rTrace], out[rSpan], out[rParent]
		if e.Service == "" {
			e.Service = service
		}
		*dst = e
		return r
	}

	// Otherwise one copy holding the unescaped string fields and the
	// attributes back to back, so that an entry keeps alive only its own
	// bytes, never the frame around them.
	var b strings.Builder
	b.Grow(own + attrsLen)
	for f := rMessage; f < numRoles; f++ {
		if ref := &refs[f]; ref.ok && !ref.escaped {
			b.Write(data(ref)[ref.start:ref.end])
		}
	}
	if attrsLen > 0 {
		b.WriteByte('{')
		s.writeAttrs(&b, false)
		if in != nil {
			in.writeAttrs(&b, s.nAttrs > 0)
		}
		if truncated {
			if nAttrs > 0 {
				b.WriteByte(',')
			}
			b.WriteString(truncatedMark)
		}
		b.WriteByte('}')
	}
	buf, off := b.String(), 0
	str := func(f int) string {
		ref := refs[f]
		switch {
		case !ref.ok:
			return ""
		case ref.escaped:
			return decoded[f]
		}
		off += ref.end - ref.start
		return buf[off-(ref.end-ref.start) : off]
	}
	// In role order, as copied.
	e.Message = str(rMessage)
	e.Service = str(rService)
	e.Component = str(rComponent)
	e.TraceID = str(rTrace)
	e.SpanID = str(rSpan)
	e.ParentID = str(rParent)
	if attrsLen > 0 {
		e.Attrs = models.Attrs(buf[off:])
	}
	if e.Service == "" {
		e.Service = service
	}
	*dst = e
	return r
}

// plain reports whether the frame has no container, no escape anywhere
// and no attribute: with no inner log, what compact builds.
func (s *scan) plain() bool {
	return !s.anyCont && !s.esc && s.nAttrs == 0 && !s.truncated
}

// compact is the rest of build for the commonest frame: no inner log, no
// container, no escape anywhere, no attribute; its string fields lie close
// together and are copied as one span. It returns what the general path
// would, in one pass over the roles; ok is false, for the general path to
// run, when the fields lie too far apart. It writes *e, every field of it,
// only for an entry, one field at a time (see laidOut).
func (p *Parser) compact(s *scan, lv Level, r Reason, ms int64, e *models.LogEntry) (_ Reason, ok bool) {
	minLimit := min(p.limit(rMessage), p.limit(rService), p.limit(rTrace))
	service := ""
	lo, hi, own, tooLong := len(s.data), 0, 0, false
	for f := rMessage; f < numRoles; f++ {
		v := &s.roles[f]
		switch {
		case v.key == nil, v.kind == 'n':
			continue
		case v.kind != '"':
			return InvalidField, true // before any bound, as in build
		}
		n := v.end - v.start
		if n > minLimit && n > p.limit(f) {
			tooLong = true
		}
		own += n
		lo, hi = min(lo, v.start), max(hi, v.end)
	}
	switch msg := &s.roles[rMessage]; {
	case tooLong:
		return FieldTooLong, true
	case s.roles[rService].key == nil || s.roles[rService].kind != '"' || s.roles[rService].end == s.roles[rService].start:
		if p.DefaultService == "" {
			return MissingService, true
		}
		service = p.DefaultService
		fallthrough
	default:
		if msg.key == nil || msg.kind != '"' || msg.end == msg.start {
			return MissingMessage, true
		}
	}
	if hi-lo-own > maxSpanSlack {
		return 0, false
	}
	span := string(s.data[lo:hi])
	field := func(f int) string {
		if v := &s.roles[f]; v.key != nil && v.kind == '"' {
			return span[v.start-lo : v.end-lo]
		}
		return ""
	}
	if service == "" {
		service = field(rService)
	}
	e.Timestamp, e.Level, e.Message, e.Service = ms, lv.String(), field(rMessage), service
	e.Component, e.TraceID, e.SpanID, e.ParentID = field(rComponent), field(rTrace), field(rSpan), field(rParent)
	e.Attrs, e.Source, e.ReceivedAt, e.Bus = "", "", 0, models.BusID{}
	return r, true
}

// stringRefs fills in the string fields of refs that are not set yet from
// this scan's members and containers, marked inner for an inner log's.
func (s *scan) stringRefs(refs *[numRoles]strRef, inner bool) Reason {
	for f := rMessage; f < numRoles; f++ {
		v := &s.roles[f]
		if v.key == nil || refs[f].ok {
			continue
		}
		switch v.kind {
		case '"':
			refs[f] = strRef{start: v.start, end: v.end, escaped: v.escaped, ok: true, inner: inner}
		case 'n':
		default:
			// An inner log's message that is no string leaves the
			// frame's own (the JSON text) standing.
			if !inner || f != rMessage {
				return InvalidField
			}
		}
	}
	if s.anyCont {
		s.fromContainers(refs, inner)
	}
	return OK
}

// writeAttrs writes the kept members, comma-separated, after a comma when
// comma is set.
func (s *scan) writeAttrs(b *strings.Builder, comma bool) {
	for i := range s.nAttrs {
		if i > 0 || comma {
			b.WriteByte(',')
		}
		sp := s.attr(i)
		if sp.prefix == pNone {
			b.Write(s.data[sp.ks:sp.ke])
		} else { // "prefix.key"
			b.WriteByte('"')
			b.WriteString(prefixes[sp.prefix])
			b.Write(s.data[sp.ks+1 : sp.ke])
		}
		b.WriteByte(':')
		b.Write(s.data[sp.vs:sp.ve])
	}
}

// hasMessage reports whether the frame has a message under any of its
// names: with one, a frame without a level is a log, not a control frame.
func (s *scan) hasMessage() bool {
	return s.roles[rMessage].key != nil || s.conts[cBody].kind != 0
}

// innerLog returns the scan of the frame's message when that message is
// itself a JSON object with a level or a message of its own (a JSON log
// written to stdout, as Docker, Kubernetes, Fluent Bit and Vector ship
// it), or nil. The inner log's fields win; the frame's own fields fill in
// what it lacks, and those it overrides are kept as attributes. The inner
// log is read once and not looked into further: a message inside it that
// is JSON again stays text.
func (s *scan) innerLog() *scan {
	v := &s.roles[rMessage]
	if v.key == nil || v.kind != '"' || !v.escaped || v.end-v.start < 7 || s.data[v.start] != '{' {
		return nil // cheap: a JSON object in a string always holds escaped quotes
	}
	// Room is kept in the attributes for the frame's fields the inner log
	// may override, so that both together stay within the bound.
	reserve := 0
	for _, f := range overridable {
		if r := &s.roles[f]; r.key != nil {
			vs, ve := r.rawSpan()
			reserve += keyEnd(s.data[r.ks:]) + 2 + ve - vs
		}
	}
	in := &scan{maxAttrs: s.maxAttrs - s.attrsLen - 1 - reserve}
	in.data = []byte(unescape(s.data[v.start:v.end]))
	if in.object() != OK || in.multi {
		return nil
	}
	if in.roles[rLevel].key == nil && in.roles[rSeverity].key == nil && !in.hasMessage() {
		return nil // JSON, but not a log: the text is the message
	}
	for _, f := range overridable {
		if in.roles[f].key != nil && s.roles[f].key != nil {
			s.keepSlot(&s.roles[f])
			s.roles[f] = slot{}
		}
	}
	return in
}

// overridable are the roles whose frame values an inner log's replace and
// which are then kept as attributes (its level is the inner log's when it
// has one; its message is the inner log itself).
var overridable = [...]int{rTime, rService, rComponent, rTrace, rSpan, rParent}

// maxSpanSlack is how many bytes besides the fields' own a span copy may
// hold (keys, quotes and the like between them).
const maxSpanSlack = 160

// fromContainers fills the string fields not given yet from ECS's nested
// objects and OpenTelemetry's body and resource, marked inner for an inner
// log's.
func (s *scan) fromContainers(refs *[numRoles]strRef, inner bool) {
	if b := s.conts[cBody]; !refs[rMessage].ok && b.kind == '"' { // found by the scan (see body)
		refs[rMessage] = strRef{start: b.start, end: b.end, escaped: b.escaped, ok: true, inner: inner}
	}
	for _, fb := range [...]struct {
		role, cont int
		key        string
	}{{rService, cService, "name"}, {rTrace, cTrace, "id"}, {rSpan, cSpan, "id"}} {
		if !refs[fb.role].ok && s.conts[fb.cont].kind != 0 {
			refs[fb.role] = s.findString(s.conts[fb.cont], fb.key)
			refs[fb.role].inner = inner
		}
	}
	if !refs[rService].ok && s.conts[cResource].kind != 0 {
		if attrs := s.findValue(s.conts[cResource], "attributes"); attrs.kind == '[' {
			refs[rService] = s.otelAttr(attrs, "service.name")
			refs[rService].inner = inner
		}
	}
}

// truncatedMark ends attributes that did not all fit.
const truncatedMark = `"_truncated":true`

// level finds and normalises the level. A frame without one is a control
// frame (such as the generator's handshake), unless it has a message (the
// caller decides), or is a GELF message, whose level defaults to 1
// (alert). An OpenTelemetry severity number of 1-24 decides the level;
// the level text decides when the number is absent or 0, and is kept as
// an attribute when the number decided and it names another level.
func (s *scan) level() (Level, Reason) {
	if sev := &s.roles[rSeverity]; sev.key != nil {
		if l, ok := severityNumber(sev, s.data); ok {
			if txt := &s.roles[rLevel]; txt.key != nil && !s.names(txt, l) {
				s.keepSlot(txt)
			}
			return l, OK
		}
		if !s.zeroSeverity(sev) {
			s.keepSlot(sev) // not a severity number: kept, and the text decides
		}
	}
	gelf := s.gelf == gelfBoth
	v := &s.roles[rLevel]
	if v.key == nil && s.conts[cLog].kind != 0 {
		if ref := s.findString(s.conts[cLog], "level"); ref.ok {
			v = &slot{value: value{start: ref.start, end: ref.end, kind: '"', escaped: ref.escaped}, key: unknownKey}
		}
	}
	if v.key == nil {
		switch {
		case gelf:
			return LevelError, OK
		case s.roles[rSeverity].key != nil:
			if s.zeroSeverity(&s.roles[rSeverity]) {
				return 0, Control // unspecified: a log without a level
			}
			return 0, InvalidLevel
		}
		return 0, Control
	}
	b := s.data[v.start:v.end]
	switch v.kind {
	case '"':
		if v.escaped {
			b = []byte(unescape(b))
		}
		if l, ok := levelWord(b); ok {
			return l, OK
		}
	case '0':
		if l, ok := levelNumber(b, v.key.flags&kSeverityNum != 0, gelf); ok {
			return l, OK
		}
	}
	return 0, InvalidLevel
}

// severityNumber reads an OpenTelemetry severity number (1-24), written
// as a number or, as protobuf's JSON mapping may, as its enum name
// (SEVERITY_NUMBER_WARN2).
func severityNumber(v *slot, data []byte) (Level, bool) {
	b := data[v.start:v.end]
	switch v.kind {
	case '0':
		return levelNumber(b, true, false)
	case '"':
		const prefix = "SEVERITY_NUMBER_"
		if v.escaped || len(b) <= len(prefix) || string(b[:len(prefix)]) != prefix {
			return 0, false
		}
		if string(b[len(prefix):]) == "UNSPECIFIED" {
			return 0, false
		}
		return levelWord(b[len(prefix):])
	}
	return 0, false
}

// zeroSeverity reports whether a severity number is 0 or unspecified:
// no level at all.
func (s *scan) zeroSeverity(v *slot) bool {
	b := s.data[v.start:v.end]
	return (v.kind == '0' && string(b) == "0") || (v.kind == '"' && string(b) == "SEVERITY_NUMBER_UNSPECIFIED") || v.kind == 'n'
}

// names reports whether the level text in v is l's own name, in any case.
func (s *scan) names(v *slot, l Level) bool {
	if v.kind != '"' {
		return false
	}
	b := s.data[v.start:v.end]
	if v.escaped {
		b = []byte(unescape(b))
	}
	return equalFold(b, l.String())
}

// keepSlot keeps a role's member, which the entry does not take, as an
// attribute.
func (s *scan) keepSlot(v *slot) {
	vs, ve := v.rawSpan()
	s.keepRaw(v.ks, v.ks+keyEnd(s.data[v.ks:]), vs, ve)
}

// timestamp finds the time and converts it to Unix milliseconds.
func (s *scan) timestamp() (int64, Reason) {
	v := &s.roles[rTime]
	if v.key == nil {
		return 0, InvalidTimestamp
	}
	nanos := v.key.flags&kNanos != 0
	b := s.data[v.start:v.end]
	switch v.kind {
	case '0':
		return numberMillis(b, nanos)
	case '"':
		if v.escaped {
			b = []byte(unescape(b))
		}
		return textMillis(b, nanos)
	}
	return 0, InvalidTimestamp
}

// members calls fn for each member of the validated object obj, with its
// key (between the quotes) and its value, until fn returns false.
func (s *scan) members(obj value, fn func(key []byte, keyEscaped bool, v value) bool) {
	sub := cursor{data: s.data[:obj.end], i: obj.start + 1}
	for {
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] != '"' {
			return
		}
		ks, ke, kesc, ok := sub.str()
		if !ok {
			return
		}
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] != ':' {
			return
		}
		sub.i++
		sub.ws()
		v, ok := sub.value()
		if !ok || !fn(sub.data[ks:ke], kesc, v) {
			return
		}
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] != ',' {
			return
		}
		sub.i++
	}
}

// elements calls fn for each element of the validated array arr, and
// returns the index after the array, or -1 when fn stopped the walk.
func (s *scan) elements(arr value, fn func(v value) bool) int {
	sub := cursor{data: s.data[:arr.end], i: arr.start + 1}
	for {
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] == ']' {
			return sub.i + 1
		}
		v, ok := sub.value()
		if !ok || !fn(v) {
			return -1
		}
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] != ',' {
			return sub.i + 1
		}
		sub.i++
	}
}

// objects is elements for an array whose objects fn walks into: each
// object is passed before it is skipped, with the array's end as its end
// (a walk stops at its closing brace); fn returns where its walk stopped
// inside it (between two of its members), or -1, and whether to go on.
// The rest of the object is skipped from there, so that walking a large
// export's levels costs one pass, not one per level. Elements that are no
// objects are skipped. It returns the index after the array, or -1 when
// fn stopped the walk.
func (s *scan) objects(arr value, fn func(obj value) (resume int, more bool)) int {
	sub := cursor{data: s.data[:arr.end], i: arr.start + 1}
	for {
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] == ']' {
			return sub.i + 1
		}
		if sub.data[sub.i] != '{' {
			if !sub.skipValid() {
				return -1
			}
		} else {
			resume, more := fn(value{start: sub.i, end: arr.end, kind: '{'})
			if !more {
				return -1
			}
			if resume > sub.i {
				sub.i = resume
				if !sub.closeFrom(1) {
					return -1
				}
			} else if !sub.skipValid() {
				return -1
			}
		}
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] != ',' {
			return sub.i + 1
		}
		sub.i++
	}
}

// value reads one already-validated value at s.i.
func (s *cursor) value() (value, bool) {
	start := s.i
	if s.i < len(s.data) && s.data[s.i] == '"' {
		st, en, esc, ok := s.str()
		return value{start: st, end: en, kind: '"', escaped: esc}, ok
	}
	if !s.skipValid() {
		return value{}, false
	}
	return value{start: start, end: s.i, kind: s.data[start]}, true
}

// skipValid steps over one value of a frame that has been validated,
// without validating it again: a container is skipped by counting its
// brackets, its strings by str, so that walking a large validated export
// level by level costs little more than one pass per level.
func (s *cursor) skipValid() bool {
	d := s.data
	if s.i >= len(d) {
		return false
	}
	switch d[s.i] {
	case '"':
		_, _, _, ok := s.str()
		return ok
	case '{', '[':
	default: // a number or a literal: up to the next delimiter
		for s.i < len(d) && !delim[d[s.i]] {
			s.i++
		}
		return true
	}
	return s.closeFrom(0)
}

// closeFrom steps to the end of the container s.i is in, depth levels
// deep in it (0: s.i is at its opening bracket), in a validated frame.
func (s *cursor) closeFrom(depth int) bool {
	d := s.data
	for s.i < len(d) {
		switch d[s.i] {
		case '"':
			if _, _, _, ok := s.str(); !ok {
				return false
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.i++
				return true
			}
		}
		s.i++
	}
	return false
}

// delim marks the bytes that end a number or a literal.
var delim = func() (t [256]bool) {
	for _, c := range []byte(",}] \t\r\n:") {
		t[c] = true
	}
	return t
}()

// rawSpan returns where a value's JSON text lies, quotes included for
// strings.
func (v value) rawSpan() (start, end int) {
	if v.kind == '"' {
		return v.start - 1, v.end + 1
	}
	return v.start, v.end
}

func keyIs(key []byte, escaped bool, want string) bool {
	if escaped {
		return unescape(key) == want
	}
	return string(key) == want
}

// findValue returns the value of key in the validated object obj.
func (s *scan) findValue(obj value, key string) value {
	var out value
	s.members(obj, func(k []byte, kesc bool, v value) bool {
		if keyIs(k, kesc, key) {
			out = v
			return false
		}
		return true
	})
	return out
}

// findString returns the string value of key in the validated object obj.
func (s *scan) findString(obj value, key string) strRef {
	if v := s.findValue(obj, key); v.kind == '"' {
		return strRef{start: v.start, end: v.end, escaped: v.escaped, ok: true}
	}
	return strRef{}
}

// otelValue returns the single member's value of an OpenTelemetry
// AnyValue ({"stringValue": "x"}, {"intValue": "5"}, ...).
func (s *scan) otelValue(v value) value {
	var out value
	if v.kind == '{' {
		s.members(v, func(_ []byte, _ bool, mv value) bool { out = mv; return false })
	}
	return out
}

// otelPair reads one element of an OpenTelemetry key/value list in a
// single walk: its "key" and the value inside its "value" AnyValue.
func (s *scan) otelPair(el value) (key, val value) {
	s.members(el, func(k []byte, kesc bool, v value) bool {
		switch {
		case keyIs(k, kesc, "key"):
			key = v
		case keyIs(k, kesc, "value"):
			val = s.otelValue(v)
		}
		return key.kind == 0 || val.kind == 0
	})
	return key, val
}

// otelAttr returns the string value of the attribute named name in an
// OpenTelemetry key/value list.
func (s *scan) otelAttr(list value, name string) strRef {
	var out strRef
	s.elements(list, func(el value) bool {
		if el.kind != '{' {
			return true
		}
		k, v := s.otelPair(el)
		if k.kind == '"' && keyIs(s.data[k.start:k.end], k.escaped, name) {
			if v.kind == '"' {
				out = strRef{start: v.start, end: v.end, escaped: v.escaped, ok: true}
			}
			return false
		}
		return true
	})
	return out
}

// keepRaw keeps the member whose key's raw JSON lies at ks:ke in the frame
// and whose value's lies at vs:ve as an attribute, within the bound.
func (s *scan) keepRaw(ks, ke, vs, ve int) { s.keepPrefixed(pNone, ks, ke, vs, ve) }

// keepPrefixed is keepRaw with the key written under a prefix.
func (s *scan) keepPrefixed(prefix uint8, ks, ke, vs, ve int) {
	if s.esc && (unstorable(s.data[ks:ke]) || unstorable(s.data[vs:ve])) { // only escapes can be unstorable
		s.truncated = true
		return
	}
	n := ke - ks + 1 + ve - vs + len(prefixes[prefix]) // "key":value
	if s.nAttrs > 0 {
		n++ // and the comma before it
	}
	if s.attrsLen+n+2 > s.maxAttrs {
		s.truncated = true
		return
	}
	sp := attrSpan{ks: ks, ke: ke, vs: vs, ve: ve, prefix: prefix}
	if s.nAttrs < inlineAttrs {
		s.attrs[s.nAttrs] = sp
	} else {
		s.moreAttrs = append(s.moreAttrs, sp)
	}
	s.nAttrs++
	s.attrsLen += n
}

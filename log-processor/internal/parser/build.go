package parser

import (
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// strRef is a string value in the frame: the bytes between its quotes.
type strRef struct {
	start, end int
	escaped    bool
	ok         bool
}

// build validates the fields found by scan and assembles the entry.
func (p *Parser) build(s *scan, now time.Time) (models.LogEntry, Reason) {
	lv, r := s.level()
	if r != OK {
		return models.LogEntry{}, r
	}
	floor := p.MinLevel
	if floor == 0 {
		floor = LevelInfo
	}
	if lv < floor {
		return models.LogEntry{}, BelowMinLevel
	}
	ms, r := s.timestamp()
	if r != OK {
		return models.LogEntry{}, r
	}
	skew := p.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if d := skew.Milliseconds(); ms < now.UnixMilli()-d || ms > now.UnixMilli()+d {
		return models.LogEntry{}, TimestampOutOfRange
	}

	// The string fields: from their members, or from the containers.
	var refs [numRoles]strRef
	for f := rMessage; f < numRoles; f++ {
		v := &s.roles[f]
		switch {
		case v.key == nil, v.kind == 'n':
		case v.kind == '"':
			refs[f] = strRef{start: v.start, end: v.end, escaped: v.escaped, ok: true}
		default:
			return models.LogEntry{}, InvalidField
		}
	}
	if s.anyCont {
		s.fromContainers(&refs)
	}

	// Every string field must be within its bound and must not hold NUL,
	// which PostgreSQL cannot store: what the parser accepts, every backend
	// stores. Escaped fields are decoded first (decoding never lengthens).
	var decoded [numRoles]string
	own := 0 // bytes of the unescaped string fields, copied below
	// Below the smallest bound no field needs its own looked up.
	minLimit := min(p.limit(rMessage), p.limit(rService), p.limit(rTrace))
	lo, hi := len(s.data), 0 // the span of the unescaped fields
	for f := rMessage; f < numRoles; f++ {
		ref := &refs[f]
		if !ref.ok {
			continue
		}
		n := ref.end - ref.start
		if ref.escaped {
			decoded[f] = unescape(s.data[ref.start:ref.end])
			if strings.IndexByte(decoded[f], 0) >= 0 {
				return models.LogEntry{}, NulCharacter
			}
			n = len(decoded[f])
		} else {
			own += n
			lo, hi = min(lo, ref.start), max(hi, ref.end)
		}
		if n > minLimit && n > p.limit(f) {
			return models.LogEntry{}, FieldTooLong
		}
	}
	service := ""
	if refs[rService].end == refs[rService].start {
		refs[rService].ok = false
		service = p.DefaultService
		if service == "" {
			return models.LogEntry{}, MissingService
		}
	}
	if !refs[rMessage].ok || refs[rMessage].end == refs[rMessage].start {
		return models.LogEntry{}, MissingMessage
	}

	attrsLen := 0
	if s.nAttrs > 0 || s.truncated {
		attrsLen = s.attrsLen + 2
		if s.truncated {
			attrsLen += len(truncatedMark) + 1
		}
	}

	e := models.LogEntry{Timestamp: ms, Level: lv.String()}
	if attrsLen == 0 && hi > lo && hi-lo-own <= maxSpanSlack {
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
		return e, OK
	}

	// Otherwise one copy holding the unescaped string fields and the
	// attributes back to back, so that an entry keeps alive only its own
	// bytes, never the frame around them.
	var b strings.Builder
	b.Grow(own + attrsLen)
	for f := rMessage; f < numRoles; f++ {
		if ref := refs[f]; ref.ok && !ref.escaped {
			b.Write(s.data[ref.start:ref.end])
		}
	}
	if attrsLen > 0 {
		b.WriteByte('{')
		for i := range s.nAttrs {
			if i > 0 {
				b.WriteByte(',')
			}
			sp := s.attr(i)
			b.Write(s.data[sp.ks:sp.ke])
			b.WriteByte(':')
			b.Write(s.data[sp.vs:sp.ve])
		}
		if s.truncated {
			if s.nAttrs > 0 {
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
	return e, OK
}

// maxSpanSlack is how many bytes besides the fields' own a span copy may
// hold (keys, quotes and the like between them).
const maxSpanSlack = 160

// fromContainers fills the string fields the members did not give from
// ECS's nested objects and OpenTelemetry's body and resource.
func (s *scan) fromContainers(refs *[numRoles]strRef) {
	if b := s.conts[cBody]; !refs[rMessage].ok && b.kind == '"' { // found by the scan (see body)
		refs[rMessage] = strRef{start: b.start, end: b.end, escaped: b.escaped, ok: true}
	}
	for _, fb := range [...]struct {
		role, cont int
		key        string
	}{{rService, cService, "name"}, {rTrace, cTrace, "id"}, {rSpan, cSpan, "id"}} {
		if !refs[fb.role].ok && s.conts[fb.cont].kind != 0 {
			refs[fb.role] = s.findString(s.conts[fb.cont], fb.key)
		}
	}
	if !refs[rService].ok && s.conts[cResource].kind != 0 {
		if attrs := s.findValue(s.conts[cResource], "attributes"); attrs.kind == '[' {
			refs[rService] = s.otelAttr(attrs, "service.name")
		}
	}
}

// truncatedMark ends attributes that did not all fit.
const truncatedMark = `"_truncated":true`

// level finds and normalises the level. No level at all means a control
// frame (such as the generator's handshake), except in a GELF message,
// whose level defaults to 1 (alert).
func (s *scan) level() (Level, Reason) {
	gelf := s.gelf == gelfBoth
	v := &s.roles[rLevel]
	if v.key == nil && s.conts[cLog].kind != 0 {
		if ref := s.findString(s.conts[cLog], "level"); ref.ok {
			v = &slot{value: value{start: ref.start, end: ref.end, kind: '"', escaped: ref.escaped}, key: unknownKey}
		}
	}
	if v.key == nil {
		if gelf {
			return LevelError, OK
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

// elements calls fn for each element of the validated array arr.
func (s *scan) elements(arr value, fn func(v value) bool) {
	sub := cursor{data: s.data[:arr.end], i: arr.start + 1}
	for {
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] == ']' {
			return
		}
		v, ok := sub.value()
		if !ok || !fn(v) {
			return
		}
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] != ',' {
			return
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
	if s.skip(2) != OK {
		return value{}, false
	}
	return value{start: start, end: s.i, kind: s.data[start]}, true
}

// raw returns a value's JSON text, quotes included for strings.
func (s *scan) raw(v value) []byte {
	start, end := v.rawSpan()
	return s.data[start:end]
}

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
func (s *scan) keepRaw(ks, ke, vs, ve int) {
	if s.esc && (unstorable(s.data[ks:ke]) || unstorable(s.data[vs:ve])) { // only escapes can be unstorable
		s.truncated = true
		return
	}
	n := ke - ks + 1 + ve - vs // "key":value
	if s.nAttrs > 0 {
		n++ // and the comma before it
	}
	if s.attrsLen+n+2 > s.maxAttrs {
		s.truncated = true
		return
	}
	sp := attrSpan{ks: ks, ke: ke, vs: vs, ve: ve}
	if s.nAttrs < inlineAttrs {
		s.attrs[s.nAttrs] = sp
	} else {
		s.moreAttrs = append(s.moreAttrs, sp)
	}
	s.nAttrs++
	s.attrsLen += n
}

package parser

import (
	"encoding/binary"
	"unicode/utf8"
)

// Shape remembers the keys of the frames parsed with it, member by
// member, so that a frame whose keys lie as the last one's did (a
// source's frames usually do) has each key matched byte for byte instead
// of read and looked up. When the last frame was simple (compact, each
// member a field of the entry with a string or number value), it also
// remembers its layout, and a frame laid out the same is read member by
// member with nothing to decide. It is only a hint: a key that differs
// is read as usual, and remembered in its place; a frame that breaks the
// layout is read as usual from its start. The zero value is ready to use. A
// Shape is not safe for concurrent use: one per goroutine that parses
// (a streaming source's reader, a request's batch).
type Shape struct {
	keys [shapeKeys]shapeKey

	// The last frame's layout, when it was simple (see scan.noteLayout):
	// n members, the j'th's head (its key, quoted, and the colon) and the
	// kind of its value, '"' or '0'. A frame laid out the same is scanned
	// by its layout (laidOut), without the general scan's choices. n is 0
	// when there is none.
	heads [shapeKeys]head
	n     int
	// cool counts down the general scans that may not note a layout,
	// after a frame broke the last one: a source whose frames alternate
	// between layouts then seldom tries one in vain.
	cool int
}

// head is a member's head in a layout: `"key":` (at most 15 bytes), its
// key's meaning, and the kind of its value.
type head struct {
	pattern
	info *keyInfo
	kind byte
}

// pattern is up to 16 bytes to find again: as two little-endian words,
// under masks that cover its n bytes.
type pattern struct {
	w0, w1, m0, m1 uint64
	n              int
}

// newPattern returns b's pattern; b is at most 16 bytes.
func newPattern(b []byte) pattern {
	var w, m [16]byte
	copy(w[:], b)
	for x := range b {
		m[x] = 0xff
	}
	return pattern{
		w0: binary.LittleEndian.Uint64(w[:8]), w1: binary.LittleEndian.Uint64(w[8:]),
		m0: binary.LittleEndian.Uint64(m[:8]), m1: binary.LittleEndian.Uint64(m[8:]),
		n: len(b),
	}
}

// in reports whether w, 16 bytes, starts with the pattern: two loads, two
// masks, two compares.
func (p *pattern) in(w []byte) bool {
	return binary.LittleEndian.Uint64(w)&p.m0 == p.w0 && binary.LittleEndian.Uint64(w[8:])&p.m1 == p.w1
}

// layoutCool is how many general scans follow a broken layout before one
// may note a layout again.
const layoutCool = 64

// shapeKeys is how many members' keys a Shape remembers: those of a
// frame's first members, and past those, the j'th member's in slot
// j mod shapeKeys (a key that does not match is only read as usual). A
// power of two.
const shapeKeys = 32

// shapeKey is a remembered key: its bytes and closing quote, and its
// meaning.
type shapeKey struct {
	pattern
	info *keyInfo // nil: nothing remembered
}

// match reads the j'th member's key at c.i (its opening quote) when it is
// the one remembered there, and returns its meaning; ok is false, and
// nothing has moved, otherwise. Small enough to be inlined.
func (sh *Shape) match(c *cursor, j int) (k *keyInfo, ok bool) {
	sk := &sh.keys[j&(shapeKeys-1)]
	if i := c.i + 1; i+16 <= len(c.data) && sk.info != nil && sk.in(c.data[i:i+16]) {
		c.i = i + sk.n
		return sk.info, true
	}
	return nil, false
}

// remember keeps key, a plain key of 1-15 bytes that means k, as the j'th
// member's, if it is ASCII, and reports whether it did.
func (sh *Shape) remember(j int, key []byte, k *keyInfo) bool {
	if sh == nil || len(key) == 0 || len(key) > 15 {
		return false
	}
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false // match does not note non-ASCII bytes
		}
	}
	var b [16]byte
	copy(b[:], key)
	b[len(key)] = '"'
	sh.keys[j&(shapeKeys-1)] = shapeKey{pattern: newPattern(b[:len(key)+1]), info: k}
	return true
}

// noteLayout notes the j'th member of a frame being scanned with a Shape,
// whose key (remembered in the Shape when memo) means k and starts at ms,
// its value at vs, after member recorded it; seen has the roles of the
// members before. It reports whether the frame is still simple: every
// member so far a role's under an ASCII key whose head (from ms to vs)
// is at most 15 bytes, with 16 bytes of frame from ms; its value a string
// or a number that member took as the role's (no GELF marker, no
// OpenTelemetry time that may mean none); no role twice. Whether there
// was whitespace is known at the end (see object).
func (s *scan) noteLayout(j int, k *keyInfo, ms, vs int, memo bool, seen *uint16) bool {
	if !memo || k.role < 0 || k.marker != 0 || k.flags&kNanos != 0 || j >= shapeKeys || vs-ms >= 16 || ms+16 > len(s.data) {
		return false // no role's, a GELF marker, a time that may be "none", or too long
	}
	bit := uint16(1) << k.role
	cur := &s.roles[k.role]
	if *seen&bit != 0 || cur.ks != ms || (cur.kind != '"' && cur.kind != '0') {
		return false
	}
	*seen |= bit
	s.shape.heads[j] = head{pattern: newPattern(s.data[ms:vs]), info: k, kind: cur.kind}
	return true
}

// laidOut scans a frame laid out as the Shape's (sh.n > 0): the same keys
// in the same order, each value of the same kind, no whitespace but after
// the object. It leaves the scan as object would have, or reports false,
// the scan then unfit for use, at the first difference (where object
// might have found a flaw, or another layout).
func (s *scan) laidOut() bool {
	sh, d := s.shape, s.data
	if len(d) == 0 || d[0] != '{' {
		return false
	}
	s.i = 1
	n := sh.n
	for j := range n {
		h := &sh.heads[j]
		ms := s.i
		if ms+16 > len(d) {
			return false
		}
		if !h.in(d[ms : ms+16]) { // the member's head, `"key":`
			return false
		}
		k := h.info
		s.i = ms + h.n
		vs := s.i
		// The slot is written field by field: a struct built aside and
		// copied in whole made the processor wait on its stores (store
		// forwarding), which cost a tenth of its time under the flood.
		sl := &s.roles[k.role]
		if h.kind == '"' {
			if d[vs] != '"' {
				return false
			}
			st, en, esc, ok := s.str()
			if !ok {
				return false
			}
			sl.start, sl.end, sl.kind, sl.escaped = st, en, '"', esc
		} else {
			if !s.number() {
				return false
			}
			sl.start, sl.end, sl.kind, sl.escaped = vs, s.i, '0', false
		}
		sl.key, sl.ks = k, ms
		sep := byte(',')
		if j == n-1 {
			sep = '}'
		}
		if s.i >= len(d) || d[s.i] != sep {
			return false
		}
		s.i++
	}
	return s.end() == OK
}

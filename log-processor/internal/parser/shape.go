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
	// n members, the j'th under keys[j] with a value of kind kinds[j],
	// '"' or '0'. A frame laid out the same is scanned by its layout
	// (laidOut), without the general scan's choices. n is 0 when there is
	// none; a general scan, which may change keys, notes a new one.
	kinds [shapeKeys]byte
	n     int
	// cool counts down the general scans that may not note a layout,
	// after a frame broke the last one: a source whose frames alternate
	// between layouts then seldom tries one in vain.
	cool int
}

// layoutCool is how many general scans follow a broken layout before one
// may note a layout again.
const layoutCool = 64

// shapeKeys is how many members' keys a Shape remembers: those of a
// frame's first members, and past those, the j'th member's in slot
// j mod shapeKeys (a key that does not match is only read as usual). A
// power of two.
const shapeKeys = 32

// shapeKey is a remembered key: its bytes and closing quote as two
// little-endian words, under masks that cover them, and its meaning.
type shapeKey struct {
	w0, w1, m0, m1 uint64
	n              int      // the key's length and closing quote
	info           *keyInfo // nil: nothing remembered
}

// match reads the j'th member's key at c.i (its opening quote) when it is
// the one remembered there, and returns its meaning; ok is false, and
// nothing has moved, otherwise. Small enough to be inlined.
func (sh *Shape) match(c *cursor, j int) (k *keyInfo, ok bool) {
	sk := &sh.keys[j&(shapeKeys-1)]
	if i := c.i + 1; i+16 <= len(c.data) && sk.info != nil {
		w := c.data[i : i+16] // one bounds check for both words
		if binary.LittleEndian.Uint64(w)&sk.m0 == sk.w0 && binary.LittleEndian.Uint64(w[8:])&sk.m1 == sk.w1 {
			c.i = i + sk.n
			return sk.info, true
		}
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
	var b, m [16]byte
	copy(b[:], key)
	b[len(key)] = '"'
	for x := range len(key) + 1 {
		m[x] = 0xff
	}
	sh.keys[j&(shapeKeys-1)] = shapeKey{
		w0: binary.LittleEndian.Uint64(b[:8]), w1: binary.LittleEndian.Uint64(b[8:]),
		m0: binary.LittleEndian.Uint64(m[:8]), m1: binary.LittleEndian.Uint64(m[8:]),
		n: len(key) + 1, info: k,
	}
	return true
}

// noteLayout notes the j'th member of a frame being scanned with a Shape,
// whose key (its key remembered in the Shape when memo) means k and
// starts at ms, after member recorded it; seen has the roles of the
// members before. It reports whether the frame is still simple: every
// member so far a role's under a remembered key, its value a string or a
// number that member took as the role's (no GELF marker, no OpenTelemetry
// time that may mean none), no role twice.
func (s *scan) noteLayout(j int, k *keyInfo, ms int, memo bool, seen *uint16) bool {
	if !memo || k.role < 0 || k.marker != 0 || k.flags&kNanos != 0 || j >= shapeKeys {
		return false // no role's, a GELF marker, or a time that may be "none"
	}
	bit := uint16(1) << k.role
	cur := &s.roles[k.role]
	if *seen&bit != 0 || cur.ks != ms || (cur.kind != '"' && cur.kind != '0') {
		return false
	}
	*seen |= bit
	s.shape.kinds[j] = cur.kind
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
		ms := s.i
		if ms >= len(d) || d[ms] != '"' {
			return false
		}
		k, ok := sh.match(&s.cursor, j)
		if !ok || s.i+1 >= len(d) || d[s.i] != ':' {
			return false
		}
		s.i++
		vs := s.i
		// The slot is written field by field: a struct built aside and
		// copied in whole made the processor wait on its stores (store
		// forwarding), which cost a tenth of its time under the flood.
		sl := &s.roles[k.role]
		if sh.kinds[j] == '"' {
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

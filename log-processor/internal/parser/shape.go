package parser

import (
	"encoding/binary"
	"unicode/utf8"
)

// Shape remembers the keys of the frames parsed with it, member by
// member, so that a frame whose keys lie as the last one's did (a
// source's frames usually do) has each key matched byte for byte instead
// of read and looked up. It is only a hint: a key that differs is read as
// usual, and remembered in its place. The zero value is ready to use. A
// Shape is not safe for concurrent use: one per goroutine that parses
// (a streaming source's reader, a request's batch).
type Shape struct {
	keys [shapeKeys]shapeKey
}

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
// member's, if it is ASCII.
func (sh *Shape) remember(j int, key []byte, k *keyInfo) {
	if sh == nil || len(key) == 0 || len(key) > 15 {
		return
	}
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return // match does not note non-ASCII bytes
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
}

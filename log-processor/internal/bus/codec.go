package bus

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// A bus message carries many entries, so that the stream stores and the
// writers acknowledge one message per batch rather than per entry. Its
// layout, all integers as Go varints:
//
//	'L' 1 (or 2)                  magic and version: 2 when what follows the
//	                              count is one S2 block (klauspost/compress)
//	uvarint count                 entries that follow, at most models.MaxPerBusMessage
//	per entry:
//	  uvarint length              bytes of the rest of this entry
//	  varint timestamp, varint received_at
//	  9 x (uvarint len, bytes)    level, message, service, component,
//	                              trace_id, span_id, parent_id, attrs, source
//	  [varint epoch, varint pos]  the identity its pusher gave it, if any
//	                              (models.KeyEpoch); else the decoder gives
//	                              it its place in the stream
//
// The per-entry length lets a decoder copy each entry's bytes once, into
// the one string its fields then share.
const (
	magic      = 'L'
	version    = 1
	versionS2  = 2
	nFields    = 9
	maxDecoded = 64 << 20 // a compressed block may not claim more than this
)

// ErrCorrupt is wrapped by every Decode error: the message is not one this
// release wrote, and no retry will change that.
var ErrCorrupt = errors.New("bus: corrupt message")

// encoder appends entries to one message.
type encoder struct {
	entries []byte // the encoded entries; the header is added by message
	count   int
}

// reset starts a new message, reusing buf's memory.
func (e *encoder) reset() {
	e.entries = e.entries[:0]
	e.count = 0
}

// add appends one entry.
func (e *encoder) add(en *models.LogEntry) {
	fields := [nFields]string{en.Level, en.Message, en.Service, en.Component,
		en.TraceID, en.SpanID, en.ParentID, string(en.Attrs), en.Source}
	n := varintLen(en.Timestamp) + varintLen(en.ReceivedAt)
	for _, f := range fields {
		n += uvarintLen(uint64(len(f))) + len(f)
	}
	keyed := !en.Bus.IsZero()
	if keyed {
		n += varintLen(en.Bus.Epoch) + varintLen(en.Bus.Pos)
	}
	b := binary.AppendUvarint(e.entries, uint64(n))
	b = binary.AppendVarint(b, en.Timestamp)
	b = binary.AppendVarint(b, en.ReceivedAt)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	if keyed {
		b = binary.AppendVarint(b, en.Bus.Epoch)
		b = binary.AppendVarint(b, en.Bus.Pos)
	}
	e.entries = b
	e.count++
}

// size is the message's length so far, less its small header.
func (e *encoder) size() int { return len(e.entries) }

// message returns the finished message in a new slice the caller owns,
// its entries compressed with S2 if compress is set.
func (e *encoder) message(compress bool) []byte {
	const head = 2 + binary.MaxVarintLen32
	if !compress {
		out := make([]byte, 0, head+len(e.entries))
		out = append(out, magic, version)
		out = binary.AppendUvarint(out, uint64(e.count))
		return append(out, e.entries...)
	}
	out := make([]byte, head+s2.MaxEncodedLen(len(e.entries)))
	out[0], out[1] = magic, versionS2
	n := 2 + binary.PutUvarint(out[2:], uint64(e.count))
	block := s2.Encode(out[n:], e.entries)
	return out[:n+len(block)]
}

// Encode returns one message carrying entries, compressed or not, for
// tests and tools; the publisher builds messages as entries arrive.
func Encode(entries []models.LogEntry, compress bool) []byte {
	var e encoder
	for i := range entries {
		e.add(&entries[i])
	}
	return e.message(compress)
}

// Count returns how many entries msg carries, or an error when its header
// is not one Decode reads.
func Count(msg []byte) (int, error) {
	if len(msg) < 3 || msg[0] != magic || (msg[1] != version && msg[1] != versionS2) {
		return 0, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	n, k := binary.Uvarint(msg[2:])
	if k <= 0 || n > models.MaxPerBusMessage {
		return 0, fmt.Errorf("%w: bad count", ErrCorrupt)
	}
	return int(n), nil
}

// Decode appends msg's entries to dst, each given the bus identity of its
// index in the message at stream sequence seq. Every entry's fields share
// one new string: the entry holds only its own bytes, and none of msg's.
// On error dst is returned as it was given.
func Decode(dst []models.LogEntry, msg []byte, epoch int64, seq uint64) ([]models.LogEntry, error) {
	var d Decoder
	return d.Decode(dst, msg, epoch, seq)
}

// Decoder decodes messages, reusing its buffer for compressed ones. The
// zero value is ready; it is not safe for concurrent use.
type Decoder struct{ buf []byte }

// Decode is the package's Decode, with d's buffer.
func (d *Decoder) Decode(dst []models.LogEntry, msg []byte, epoch int64, seq uint64) ([]models.LogEntry, error) {
	n, err := Count(msg)
	if err != nil {
		return dst, err
	}
	_, k := binary.Uvarint(msg[2:])
	rest := msg[2+k:]
	if msg[1] == versionS2 {
		size, err := s2.DecodedLen(rest)
		if err != nil || size > maxDecoded {
			return dst, fmt.Errorf("%w: bad compressed block", ErrCorrupt)
		}
		if cap(d.buf) < size {
			d.buf = make([]byte, size)
		}
		if rest, err = s2.Decode(d.buf[:size], rest); err != nil {
			return dst, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	base := len(dst)
	for i := range n {
		size, k := binary.Uvarint(rest)
		if k <= 0 || size > uint64(len(rest)-k) {
			return dst[:base], fmt.Errorf("%w: entry %d: bad length", ErrCorrupt, i)
		}
		body := rest[k : k+int(size)]
		rest = rest[k+int(size):]
		e, err := decodeEntry(body)
		if err != nil {
			return dst[:base], fmt.Errorf("%w: entry %d: %v", ErrCorrupt, i, err)
		}
		if e.Bus.IsZero() {
			e.Bus = models.NewBusID(epoch, seq, i)
		}
		dst = append(dst, e)
	}
	if len(rest) != 0 {
		return dst[:base], fmt.Errorf("%w: %d bytes after the last entry", ErrCorrupt, len(rest))
	}
	return dst, nil
}

// decodeEntry reads one entry's body, copying it once.
func decodeEntry(body []byte) (models.LogEntry, error) {
	var e models.LogEntry
	ts, k := binary.Varint(body)
	if k <= 0 {
		return e, errors.New("bad timestamp")
	}
	at, k2 := binary.Varint(body[k:])
	if k2 <= 0 {
		return e, errors.New("bad received_at")
	}
	e.Timestamp, e.ReceivedAt = ts, at
	// s is body in a string of its own; the fields are slices of it.
	s := string(body)
	off := k + k2
	var fields [nFields]string
	for f := range fields {
		l, k := binary.Uvarint(body[off:])
		if k <= 0 || l > uint64(len(body)-off-k) {
			return models.LogEntry{}, fmt.Errorf("field %d: bad length", f)
		}
		off += k
		fields[f] = s[off : off+int(l)]
		off += int(l)
	}
	if off != len(body) { // the identity its pusher gave it
		ep, k := binary.Varint(body[off:])
		if k <= 0 || ep >= 0 {
			return models.LogEntry{}, errors.New("bytes after the last field")
		}
		pos, k2 := binary.Varint(body[off+k:])
		if k2 <= 0 || off+k+k2 != len(body) {
			return models.LogEntry{}, errors.New("bytes after the identity")
		}
		e.Bus = models.BusID{Epoch: ep, Pos: pos}
	}
	e.Level, e.Message, e.Service, e.Component = fields[0], fields[1], fields[2], fields[3]
	e.TraceID, e.SpanID, e.ParentID, e.Attrs, e.Source = fields[4], fields[5], fields[6], models.Attrs(fields[7]), fields[8]
	return e, nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}

package ws

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// The built-in vocabulary of generated logs. Every string is plain ASCII
// that needs no JSON escaping.
var (
	services   = []string{"auth-service", "payment-service", "order-service", "inventory-service", "notification-service"}
	components = []string{"http", "db", "cache", "queue", "scheduler", "grpc"}
	messages   = [len(models.Levels)][]string{
		{
			"request completed successfully",
			"user session refreshed",
			"cache warmed for tenant configuration",
			"scheduled job finished within its budget",
			"connection pool resized to match current load",
		},
		{
			"slow query detected; consider adding an index",
			"retrying upstream call after transient failure",
			"rate limit nearly reached for client",
			"deprecated API version used by caller",
		},
		{
			"upstream service unavailable after retries",
			"database transaction rolled back on deadlock",
			"failed to publish event to message queue",
			"payment authorisation declined by provider",
		},
	}
)

// logWriter appends generated log messages, as JSON, to a reused buffer.
// One per connection; not safe for concurrent use.
type logWriter struct {
	rng       *rand.Rand
	service   []byte // JSON-encoded fixed service, or nil
	cum       [len(models.Levels)]int
	total     int
	pad       []byte // `,"pad":"ppp..."`, or nil
	message   []byte // fixed-size message (JSON string contents), or nil
	nServices int    // cycle through svc-0000000..; 0 = built-in names
	next      int    // the next generated service number
}

func newLogWriter(p params, rng *rand.Rand) *logWriter {
	w := &logWriter{rng: rng}
	if p.service != "" {
		w.service, _ = json.Marshal(p.service) // a string always marshals
	}
	for i, wt := range p.weights {
		w.total += wt
		w.cum[i] = w.total
	}
	if p.pad > 0 {
		w.pad = append([]byte(`,"pad":"`), bytes.Repeat([]byte("p"), p.pad)...)
		w.pad = append(w.pad, '"')
	}
	if p.msgBytes > 0 {
		const text = "sized message for load tests; "
		w.message = bytes.Repeat([]byte(text), p.msgBytes/len(text)+1)[:p.msgBytes]
	}
	w.nServices = p.nServices
	return w
}

// level picks a level by weight.
func (w *logWriter) level() int {
	n := w.rng.IntN(w.total)
	for i, c := range w.cum {
		if n < c {
			return i
		}
	}
	return len(w.cum) - 1
}

// append adds one log message stamped now to buf.
func (w *logWriter) append(buf []byte, now time.Time) []byte {
	return w.appendWith(buf, now, nil)
}

// overrides replace fields of a generated message with raw JSON, to make
// malformed ones. A nil field is generated as usual.
type overrides struct {
	timestamp, level, message, service []byte
}

// appendWith adds one message stamped now to buf, applying o if not nil.
func (w *logWriter) appendWith(buf []byte, now time.Time, o *overrides) []byte {
	if o == nil {
		o = &overrides{}
	}
	l := w.level()
	buf = append(buf, '{')
	buf = append(buf, `"timestamp":`...)
	if o.timestamp != nil {
		buf = append(buf, o.timestamp...)
	} else {
		buf = strconv.AppendInt(buf, now.UnixMilli(), 10)
	}
	buf = append(buf, ',')
	if o.level != nil {
		buf = append(buf, `"level":`...)
		buf = append(buf, o.level...)
	} else {
		buf = append(buf, `"level":"`...)
		buf = append(buf, models.Levels[l]...)
		buf = append(buf, '"')
	}
	buf = append(buf, `,"message":`...)
	if o.message != nil {
		buf = append(buf, o.message...)
	} else if w.message != nil {
		buf = append(buf, '"')
		buf = append(buf, w.message...)
		buf = append(buf, '"')
	} else {
		msgs := messages[l]
		buf = append(buf, '"')
		buf = append(buf, msgs[w.rng.IntN(len(msgs))]...)
		buf = append(buf, '"')
	}
	buf = append(buf, w.pad...)
	buf = append(buf, `,"service":`...)
	switch {
	case o.service != nil:
		buf = append(buf, o.service...)
	case w.service != nil:
		buf = append(buf, w.service...)
	case w.nServices > 0:
		buf = append(buf, `"svc-`...)
		buf = appendPadded(buf, w.next)
		buf = append(buf, '"')
		if w.next++; w.next == w.nServices {
			w.next = 0
		}
	default:
		buf = append(buf, '"')
		buf = append(buf, services[w.rng.IntN(len(services))]...)
		buf = append(buf, '"')
	}
	buf = append(buf, `,"component":"`...)
	buf = append(buf, components[w.rng.IntN(len(components))]...)
	buf = append(buf, `","trace_id":"`...)
	buf = appendHex(buf, w.rng.Uint64())
	buf = appendHex(buf, w.rng.Uint64())
	buf = append(buf, `","span_id":"`...)
	buf = appendHex(buf, w.rng.Uint64())
	buf = append(buf, `","parent_id":"`...)
	buf = appendHex(buf, w.rng.Uint64())
	return append(buf, `"}`...)
}

// appendPadded appends n in decimal, zero-padded to seven digits.
func appendPadded(buf []byte, n int) []byte {
	var d [7]byte
	for i := len(d) - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(buf, d[:]...)
}

// hexPairs holds the two hex digits of every byte value, "000102...ff".
const hexPairs = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" +
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f" +
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f" +
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" +
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf" +
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf" +
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"

// appendHex appends v as 16 lower-case hex digits, a byte at a time.
func appendHex(buf []byte, v uint64) []byte {
	for shift := 56; shift >= 0; shift -= 8 {
		i := int(v>>uint(shift)&0xff) * 2
		buf = append(buf, hexPairs[i], hexPairs[i+1])
	}
	return buf
}

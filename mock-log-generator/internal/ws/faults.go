package ws

import (
	"strconv"
	"strings"
	"time"
)

// fault is a kind of malformed frame the generator can send, for testing
// how a consumer copes with bad input.
type fault int

// The kinds of malformed frame, picked uniformly when one is due. The
// comment says what a strict consumer should make of each.
const (
	faultTruncated       fault = iota // the first half of a message: invalid JSON
	faultTrailingGarbage              // a message followed by junk: invalid JSON
	faultNotJSON                      // plain text: invalid JSON
	faultInvalidUTF8                  // a message whose text is not UTF-8
	faultArray                        // a message wrapped in an array: not an object
	faultNull                         // JSON null: not an object
	faultDeepNesting                  // a message with a field nested 40 deep
	faultDuplicateKey                 // a message with "level" twice
	faultBadLevel                     // level "SHOUTING", no library's level
	faultLevelNumber                  // level 3
	faultTimestampString              // timestamp "yesterday"
	faultTimestampBool                // timestamp true
	faultTimestampOld                 // timestamp 30 days ago
	faultServiceTooLong               // a 300-byte service (the bound is 256)
	faultEmptyMessage                 // message ""
	faultServiceNumber                // service 42
	faultBinary                       // a valid message in a binary frame
	numFaults
)

var faultNames = [numFaults]string{
	"truncated", "trailing_garbage", "not_json", "invalid_utf8", "array", "null", "deep_nesting",
	"duplicate_key", "bad_level", "level_number", "timestamp_string", "timestamp_bool",
	"timestamp_old", "service_too_long", "empty_message", "service_number", "binary",
}

func (f fault) String() string { return faultNames[f] }

// appendFault adds a malformed frame of kind f to buf and reports whether it
// must be sent as a binary message.
func (w *logWriter) appendFault(buf []byte, now time.Time, f fault) (frame []byte, binary bool) {
	ms := now.UnixMilli()
	switch f {
	case faultTruncated:
		start := len(buf)
		buf = w.append(buf, now)
		return buf[:start+(len(buf)-start)/2], false
	case faultTrailingGarbage:
		return append(w.append(buf, now), "}garbage"...), false
	case faultNotJSON:
		return append(buf, "this is not JSON at all"...), false
	case faultInvalidUTF8:
		return w.appendWith(buf, now, &overrides{message: []byte("\"bad bytes \xff\xfe\xfd\"")}), false
	case faultArray:
		buf = append(buf, '[')
		return append(w.append(buf, now), ']'), false
	case faultNull:
		return append(buf, "null"...), false
	case faultDeepNesting:
		buf = w.append(buf, now)
		buf = append(buf[:len(buf)-1], `,"extra":`...)
		buf = append(buf, strings.Repeat("[", 40)...)
		return append(append(buf, strings.Repeat("]", 40)...), '}'), false
	case faultDuplicateKey:
		buf = w.append(buf, now)
		return append(buf[:len(buf)-1], `,"level":"ERROR"}`...), false
	case faultBadLevel:
		return w.appendWith(buf, now, &overrides{level: []byte(`"SHOUTING"`)}), false
	case faultLevelNumber:
		return w.appendWith(buf, now, &overrides{level: []byte(`3`)}), false
	case faultTimestampString:
		return w.appendWith(buf, now, &overrides{timestamp: []byte(`"yesterday"`)}), false
	case faultTimestampBool:
		return w.appendWith(buf, now, &overrides{timestamp: []byte(`true`)}), false
	case faultTimestampOld:
		old := ms - (30 * 24 * time.Hour).Milliseconds()
		return w.appendWith(buf, now, &overrides{timestamp: []byte(strconv.FormatInt(old, 10))}), false
	case faultServiceTooLong:
		return w.appendWith(buf, now, &overrides{service: []byte(`"` + strings.Repeat("s", 300) + `"`)}), false
	case faultEmptyMessage:
		return w.appendWith(buf, now, &overrides{message: []byte(`""`)}), false
	case faultServiceNumber:
		return w.appendWith(buf, now, &overrides{service: []byte(`42`)}), false
	default: // faultBinary
		return w.append(buf, now), true
	}
}

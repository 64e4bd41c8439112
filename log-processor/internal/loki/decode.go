package loki

import (
	"errors"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pbwire"
)

// Field numbers of Loki's push messages (pkg/push/push.proto).
const (
	fRequestStreams = 1 // PushRequest.streams, StreamAdapter

	fStreamLabels  = 1 // StreamAdapter.labels, in Prometheus's text form
	fStreamEntries = 2 // StreamAdapter.entries, EntryAdapter

	fEntryTimestamp = 1 // EntryAdapter.timestamp, google.protobuf.Timestamp
	fEntryLine      = 2 // EntryAdapter.line
	fEntryMetadata  = 3 // EntryAdapter.structuredMetadata, LabelPairAdapter

	fTimestampSeconds = 1
	fTimestampNanos   = 2

	fPairName  = 1 // LabelPairAdapter.name
	fPairValue = 2 // LabelPairAdapter.value
)

// handler takes a request's streams and their entries, in order.
type handler interface {
	// stream begins a stream with its labels.
	stream(labels []pair) error
	// entry takes one of its entries: a time in Unix nanoseconds, the
	// line, and its structured metadata. Its slices are valid until it
	// returns.
	entry(ns int64, line []byte, metadata []pair) error
}

// errMalformed: a body that is not a push request.
var errMalformed = errors.New("malformed push request")

// scratch holds what decoding reuses from entry to entry.
type scratch struct {
	labels, metadata []pair
}

// decodeProto walks msg, a PushRequest in protobuf wire format, calling h
// for each stream and entry. It allocates nothing for the entries
// themselves. A message that is not well-formed is errMalformed, after
// the streams and entries before the flaw were passed.
func decodeProto(msg []byte, sc *scratch, h handler) error {
	return pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fRequestStreams || typ != protowire.BytesType {
			return nil
		}
		// The labels first, wherever they are in the message.
		var labels []byte
		if err := pbwire.Fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num == fStreamLabels && typ == protowire.BytesType {
				labels = v
			}
			return nil
		}); err != nil {
			return err
		}
		var err error
		if sc.labels, err = parseLabels(labels, sc.labels[:0]); err != nil {
			return err
		}
		if err := h.stream(sc.labels); err != nil {
			return err
		}
		return pbwire.Fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num != fStreamEntries || typ != protowire.BytesType {
				return nil
			}
			return protoEntry(v, sc, h)
		})
	})
}

// protoEntry reads one EntryAdapter.
func protoEntry(v []byte, sc *scratch, h handler) error {
	var ns int64
	var line []byte
	sc.metadata = sc.metadata[:0]
	err := pbwire.Fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == fEntryTimestamp && typ == protowire.BytesType:
			var secs, nanos uint64
			if err := pbwire.Fields(v, func(num protowire.Number, typ protowire.Type, _ []byte, x uint64) error {
				if typ == protowire.VarintType {
					switch num {
					case fTimestampSeconds:
						secs = x
					case fTimestampNanos:
						nanos = x
					}
				}
				return nil
			}); err != nil {
				return err
			}
			s, n := int64(secs), int64(int32(nanos))
			if s < 0 || s > math.MaxInt64/1_000_000_000-1 || n < 0 || n >= 1e9 {
				return fmt.Errorf("%w: timestamp %d s %d ns out of range", errMalformed, s, n)
			}
			ns = s*1e9 + n
		case num == fEntryLine && typ == protowire.BytesType:
			line = v
		case num == fEntryMetadata && typ == protowire.BytesType:
			var p pair
			if err := pbwire.Fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if typ == protowire.BytesType {
					switch num {
					case fPairName:
						p.name = v
					case fPairValue:
						p.value = v
					}
				}
				return nil
			}); err != nil {
				return err
			}
			sc.metadata = append(sc.metadata, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return h.entry(ns, line, sc.metadata)
}

// decodeJSON walks data, a push request in Loki's JSON form,
//
//	{"streams":[{"stream":{"app":"api"},"values":[["<ns>","line"],["<ns>","line",{"trace_id":"..."}]]}]}
//
// calling h for each stream and entry, as decodeProto does. Timestamps are
// strings of nanoseconds (numbers are taken too).
func decodeJSON(data []byte, sc *scratch, h handler) error {
	// Validated once, then walked level by level without validating again.
	if r := parser.Valid(data); r != parser.OK {
		return fmt.Errorf("%w: %s", errMalformed, r)
	}
	var err error
	bad := func(format string, a ...any) bool {
		err = fmt.Errorf("%w: "+format, append([]any{errMalformed}, a...)...)
		return false
	}
	r := parser.ValidMembers(data, func(key, v []byte) bool {
		if string(key) != "streams" {
			return true
		}
		if parser.ValidElements(v, func(s []byte) bool {
			var values, entries []byte
			sc.labels = sc.labels[:0]
			if r := parser.ValidMembers(s, func(key, v []byte) bool {
				switch string(key) {
				case "stream", "labels":
					if v[0] == '"' { // the labels' text form, as the protobuf has it
						text, _ := parser.StringOf(v)
						sc.labels, err = parseLabels(text, sc.labels)
						return err == nil
					}
					if r := parser.ValidMembers(v, func(name, value []byte) bool {
						text, ok := parser.StringOf(value)
						if !ok {
							return bad("label %q is no string", name)
						}
						if len(name) == 0 {
							return bad("a label name is empty")
						}
						sc.labels = append(sc.labels, pair{name, text})
						return true
					}); r != parser.OK {
						return err == nil && bad("stream: %s", r)
					}
				case "values":
					values = v
				case "entries": // the older form: [{"ts":"RFC 3339","line":"..."}]
					entries = v
				}
				return err == nil
			}); r != parser.OK || err != nil {
				return err == nil && bad("a stream: %s", r)
			}
			if err = h.stream(sc.labels); err != nil {
				return false
			}
			if entries != nil {
				if r := parser.ValidElements(entries, func(e []byte) bool {
					return legacyEntry(e, sc, h, &err)
				}); r != parser.OK || err != nil {
					return err == nil && bad("entries: %s", r)
				}
			}
			if values == nil {
				return true
			}
			if r := parser.ValidElements(values, func(e []byte) bool {
				return jsonEntry(e, sc, h, &err)
			}); r != parser.OK || err != nil {
				return err == nil && bad("values: %s", r)
			}
			return true
		}) != parser.OK || err != nil {
			return err == nil && bad("streams is no array of streams")
		}
		return true
	})
	if err != nil {
		return err
	}
	if r != parser.OK {
		return fmt.Errorf("%w: %s", errMalformed, r)
	}
	return nil
}

// jsonEntry reads one value, ["<ns>", "line"] or ["<ns>", "line", {metadata}].
func jsonEntry(e []byte, sc *scratch, h handler, errp *error) bool {
	var ns int64
	var line []byte
	n := 0
	sc.metadata = sc.metadata[:0]
	fail := func(format string, a ...any) bool {
		*errp = fmt.Errorf("%w: a value: "+format, append([]any{errMalformed}, a...)...)
		return false
	}
	if r := parser.ValidElements(e, func(v []byte) bool {
		n++
		switch n {
		case 1:
			text, ok := parser.StringOf(v)
			if !ok {
				text = v // a number, as some clients write it
			}
			x, ok := nanos(text)
			if !ok {
				return fail("timestamp %s is no count of nanoseconds", clip(v))
			}
			ns = x
		case 2:
			text, ok := parser.StringOf(v)
			if !ok {
				return fail("the line is no string")
			}
			line = text
		case 3:
			if r := parser.ValidMembers(v, func(name, value []byte) bool {
				text, ok := parser.StringOf(value)
				if !ok {
					return fail("structured metadata %q is no string", name)
				}
				sc.metadata = append(sc.metadata, pair{name, text})
				return true
			}); r != parser.OK && *errp == nil {
				return fail("structured metadata: %s", r)
			}
		default:
			return fail("more than 3 elements")
		}
		return *errp == nil
	}); r != parser.OK || *errp != nil {
		return *errp == nil && fail("%s", r)
	}
	if n < 2 {
		return fail("want [timestamp, line] or [timestamp, line, metadata]")
	}
	if *errp = h.entry(ns, line, sc.metadata); *errp != nil {
		return false
	}
	return true
}

// nanos reads a count of nanoseconds: decimal digits, within an int64.
func nanos(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n >= 0
}

// legacyEntry reads one entry of the older JSON form, which Loki clients
// built on logproto's JSON tags still send: {"ts":"2026-12-05T10:00:00.123Z","line":"..."}.
func legacyEntry(e []byte, sc *scratch, h handler, errp *error) bool {
	var ns int64
	var line []byte
	seen := 0
	sc.metadata = sc.metadata[:0]
	if r := parser.ValidMembers(e, func(key, v []byte) bool {
		switch string(key) {
		case "ts", "timestamp":
			text, ok := parser.StringOf(v)
			t, err := time.Parse(time.RFC3339Nano, string(text))
			if !ok || err != nil {
				*errp = fmt.Errorf("%w: an entry's ts %s is no RFC 3339 time", errMalformed, clip(v))
				return false
			}
			ns, seen = t.UnixNano(), seen|1
		case "line":
			text, ok := parser.StringOf(v)
			if !ok {
				*errp = fmt.Errorf("%w: an entry's line is no string", errMalformed)
				return false
			}
			line, seen = text, seen|2
		}
		return true
	}); r != parser.OK || *errp != nil {
		if *errp == nil {
			*errp = fmt.Errorf("%w: an entry: %s", errMalformed, r)
		}
		return false
	}
	if seen != 3 || ns < 0 {
		*errp = fmt.Errorf("%w: an entry wants ts and line", errMalformed)
		return false
	}
	if *errp = h.entry(ns, line, sc.metadata); *errp != nil {
		return false
	}
	return true
}

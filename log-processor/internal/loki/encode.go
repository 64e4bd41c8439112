package loki

import (
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Stream is a stream of a push request, for clients (the load test, the
// tests): its labels in their text form, {app="api", env="prod"}, and its
// entries.
type Stream struct {
	Labels  string
	Entries []Entry
}

// Entry is an entry of a Stream: its time, its line, and its structured
// metadata as name, value pairs.
type Entry struct {
	Time     time.Time
	Line     string
	Metadata [][2]string
}

// AppendProto appends streams as a PushRequest in protobuf wire format, as
// Loki's push.proto lays it out; Loki clients send it compressed as a
// Snappy block.
func AppendProto(dst []byte, streams []Stream) []byte {
	for _, s := range streams {
		dst = protowire.AppendTag(dst, fRequestStreams, protowire.BytesType)
		dst = appendSized(dst, func(b []byte) []byte {
			b = protowire.AppendTag(b, fStreamLabels, protowire.BytesType)
			b = protowire.AppendString(b, s.Labels)
			for _, e := range s.Entries {
				b = protowire.AppendTag(b, fStreamEntries, protowire.BytesType)
				b = appendSized(b, func(b []byte) []byte { return appendEntry(b, e) })
			}
			return b
		})
	}
	return dst
}

func appendEntry(b []byte, e Entry) []byte {
	b = protowire.AppendTag(b, fEntryTimestamp, protowire.BytesType)
	b = appendSized(b, func(b []byte) []byte {
		b = protowire.AppendTag(b, fTimestampSeconds, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(e.Time.Unix()))
		b = protowire.AppendTag(b, fTimestampNanos, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(e.Time.Nanosecond()))
	})
	b = protowire.AppendTag(b, fEntryLine, protowire.BytesType)
	b = protowire.AppendString(b, e.Line)
	for _, kv := range e.Metadata {
		b = protowire.AppendTag(b, fEntryMetadata, protowire.BytesType)
		b = appendSized(b, func(b []byte) []byte {
			b = protowire.AppendTag(b, fPairName, protowire.BytesType)
			b = protowire.AppendString(b, kv[0])
			b = protowire.AppendTag(b, fPairValue, protowire.BytesType)
			return protowire.AppendString(b, kv[1])
		})
	}
	return b
}

// appendSized appends what fill writes, preceded by its length.
func appendSized(dst []byte, fill func([]byte) []byte) []byte {
	body := fill(nil)
	dst = protowire.AppendVarint(dst, uint64(len(body)))
	return append(dst, body...)
}

package bus

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

func sample() []models.LogEntry {
	return []models.LogEntry{
		{Timestamp: 1700000000123, Level: "INFO", Message: "hello", Service: "api", Source: "gen-1", ReceivedAt: 1700000000200},
		{Timestamp: -5, Level: "ERROR", Message: strings.Repeat("x", 300), Service: "billing", Component: "db",
			TraceID: "t", SpanID: "s", ParentID: "p", Attrs: `{"k":1}`, Source: "push:default:http", ReceivedAt: 1},
		{},
		// An identity its pusher gave it (an Idempotency-Key) travels
		// with it.
		{Timestamp: 7, Level: "WARN", Message: "keyed", Service: "api", Bus: models.BusID{Epoch: models.KeyEpoch("tok\x00key-1"), Pos: 3}},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprint("compress=", compress), func(t *testing.T) { roundTrip(t, compress) })
	}
}

func roundTrip(t *testing.T, compress bool) {
	in := sample()
	msg := Encode(in, compress)
	if n, err := Count(msg); err != nil || n != len(in) {
		t.Fatalf("Count = %d, %v", n, err)
	}
	var d Decoder
	out, err := d.Decode(nil, msg, 77, 9)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("decoded %d entries, want %d", len(out), len(in))
	}
	for i := range in {
		want := in[i]
		if want.Bus.IsZero() {
			want.Bus = models.NewBusID(77, 9, i)
		}
		if out[i] != want {
			t.Errorf("entry %d:\n got %+v\nwant %+v", i, out[i], want)
		}
	}
	if out[1].Bus.Pos != 9<<16|1 {
		t.Errorf("Pos = %d", out[1].Bus.Pos)
	}
}

func TestDecodeRejectsCorrupt(t *testing.T) {
	good := Encode(sample(), false)
	packed := Encode(sample(), true)
	cases := map[string][]byte{
		"bad compressed block": append(append([]byte(nil), packed[:3]...), 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3),
		"compressed, cut":      packed[:len(packed)-2],
		"claims 1 GiB":         {'L', 2, 1, 0x80, 0x80, 0x80, 0x80, 0x04, 0},
		"empty":                nil,
		"bad magic":            append([]byte{'X'}, good[1:]...),
		"bad version":          append([]byte{'L', 9}, good[2:]...),
		"truncated":            good[:len(good)-1],
		"trailing bytes":       append(append([]byte(nil), good...), 0),
		"count too high":       {'L', 1, 0xff, 0xff, 0xff, 0x0f},
		"short entry":          {'L', 1, 1, 5, 0},
	}
	for name, msg := range cases {
		dst := []models.LogEntry{{Message: "kept"}}
		out, err := Decode(dst, msg, 1, 1)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
		if len(out) != 1 || out[0].Message != "kept" {
			t.Errorf("%s: dst changed: %+v", name, out)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(sample(), false))
	f.Add(Encode(sample(), true))
	f.Add([]byte{'L', 1, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		out, err := Decode(nil, msg, 1, 1)
		if err != nil {
			return
		}
		// What decodes encodes back to the same bytes.
		for i := range out {
			out[i].Bus = models.BusID{}
		}
		if again := Encode(out, msg[1] == versionS2); string(again) != string(msg) {
			// Varints have one shortest form; a longer one decodes too.
			if _, err := Decode(nil, again, 1, 1); err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	e := models.LogEntry{Timestamp: 1700000000123, Level: "INFO", Message: "user login succeeded for account 4821",
		Service: "auth", Source: "gen-1", ReceivedAt: 1700000000200}
	var enc encoder
	b.ReportAllocs()
	for b.Loop() {
		if enc.count == 500 {
			enc.reset()
		}
		enc.add(&e)
	}
}

func BenchmarkDecode(b *testing.B) {
	e := models.LogEntry{Timestamp: 1700000000123, Level: "INFO", Message: "user login succeeded for account 4821",
		Service: "auth", Source: "gen-1", ReceivedAt: 1700000000200}
	in := make([]models.LogEntry, 500)
	for i := range in {
		in[i] = e
	}
	for _, compress := range []bool{false, true} {
		b.Run(fmt.Sprint("compress=", compress), func(b *testing.B) {
			msg := Encode(in, compress)
			dst := make([]models.LogEntry, 0, 500)
			var d Decoder
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				dst, _ = d.Decode(dst[:0], msg, 1, 1)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/entry")
		})
	}
}

// BenchmarkSeal is the cost per entry of finishing a message of 500.
func BenchmarkSeal(b *testing.B) {
	e := models.LogEntry{Timestamp: 1700000000123, Level: "INFO", Message: "user login succeeded for account 4821",
		Service: "auth", Source: "gen-1", ReceivedAt: 1700000000200}
	var enc encoder
	for range 500 {
		enc.add(&e)
	}
	for _, compress := range []bool{false, true} {
		b.Run(fmt.Sprint("compress=", compress), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = enc.message(compress)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/entry")
		})
	}
}

package otlp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

var now = time.Unix(1_764_300_000, 0)

func str(s string) *commonpb.AnyValue {
	return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
}

func kv(k string, v *commonpb.AnyValue) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: v}
}

// request is an export with two resources, scopes, and records of every
// kind of body and attribute.
func request() *collogspb.ExportLogsServiceRequest {
	ns := uint64(now.UnixNano())
	return &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{
		{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("checkout")), kv("host.name", str("web-1"))}},
			ScopeLogs: []*logspb.ScopeLogs{{
				Scope: &commonpb.InstrumentationScope{Name: "checkout.http", Version: "1.0.0"},
				LogRecords: []*logspb.LogRecord{
					{TimeUnixNano: ns, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO, SeverityText: "Information",
						Body: str("request \"done\"\n"), Attributes: []*commonpb.KeyValue{
							kv("http.status_code", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 200}}),
							kv("ok", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}),
							kv("ratio", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.25}}),
						}},
					{ObservedTimeUnixNano: ns, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_WARN4, Body: &commonpb.AnyValue{
						Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{Values: []*commonpb.KeyValue{
							kv("a", str("x")), kv("list", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
								Values: []*commonpb.AnyValue{str("y"), {Value: &commonpb.AnyValue_IntValue{IntValue: -3}}}}}}),
						}}}}},
					{TimeUnixNano: ns, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_DEBUG4, Body: str("below the floor")},
					{TimeUnixNano: ns, SeverityText: "LOUD", Body: str("a bad level")},
				},
			}},
		},
		{
			ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
				{TimeUnixNano: ns, SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_ERROR, Body: str("no resource, no scope"), EventName: "payment.failed"},
			}}},
		},
	}}
}

// parsed runs Records over a request and parses each frame.
func parsed(t *testing.T, msg []byte) (entries []models.LogEntry, reasons []parser.Reason) {
	t.Helper()
	p := parser.Parser{DefaultService: "token"}
	_, err := Records(msg, nil, func(frame []byte) bool {
		if !json.Valid(frame) {
			t.Fatalf("frame is not JSON: %s", frame)
		}
		e, r := p.Parse(frame, now)
		entries, reasons = append(entries, e), append(reasons, r)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return entries, reasons
}

func TestRecords(t *testing.T) {
	msg, err := proto.Marshal(request())
	if err != nil {
		t.Fatal(err)
	}
	entries, reasons := parsed(t, msg)
	want := []struct {
		r                             parser.Reason
		level, message, service, attr string
	}{
		{parser.OK, "INFO", "request \"done\"\n", "checkout",
			`{"resource.host.name":"web-1","scope.name":"checkout.http","scope.version":"1.0.0","http.status_code":"200","ok":true,"ratio":0.25,"severityText":"Information"}`},
		{parser.OK, "WARN", `{"a":"x","list":["y",-3]}`, "checkout", `{"resource.host.name":"web-1","scope.name":"checkout.http","scope.version":"1.0.0"}`},
		{parser.BelowMinLevel, "", "", "", ""},
		{parser.InvalidLevel, "", "", "", ""},
		{parser.OK, "ERROR", "no resource, no scope", "token", `{"eventName":"payment.failed"}`},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d records, want %d", len(entries), len(want))
	}
	for i, w := range want {
		e := entries[i]
		if reasons[i] != w.r || e.Level != w.level || e.Message != w.message || e.Service != w.service || string(e.Attrs) != w.attr {
			t.Errorf("record %d: %v %s %q %q %s\nwant       %v %s %q %q %s", i, reasons[i], e.Level, e.Message, e.Service, e.Attrs,
				w.r, w.level, w.message, w.service, w.attr)
		}
		if w.r == parser.OK && e.Timestamp != now.UnixMilli() {
			t.Errorf("record %d: timestamp %d, want %d", i, e.Timestamp, now.UnixMilli())
		}
	}
}

// TestOneMapping: a request read as protobuf and as OTLP/JSON gives the
// same entries: one mapping for both (and for OTLP/JSON lines on the other
// paths, which the JSON parser reads).
func TestOneMapping(t *testing.T) {
	req := request()
	req.ResourceLogs[0].ScopeLogs[0].LogRecords[0].TraceId = []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	req.ResourceLogs[0].ScopeLogs[0].LogRecords[0].SpanId = []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
	msg, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	fromProto, _ := parsed(t, msg)
	if got := fromProto[0].TraceID + " " + fromProto[0].SpanID; got != "5b8efff798038103d269b633813fc60c eee19b7ec3c1b174" {
		t.Errorf("ids %q, want hex", got)
	}
	// protojson writes ids in base64, OTLP/JSON in hex: compare without them.
	req.ResourceLogs[0].ScopeLogs[0].LogRecords[0].TraceId, req.ResourceLogs[0].ScopeLogs[0].LogRecords[0].SpanId = nil, nil
	js, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON []models.LogEntry
	p := parser.Parser{DefaultService: "token"}
	p.ParseEach(js, now, func(e models.LogEntry, _ parser.Reason) bool { fromJSON = append(fromJSON, e); return true })
	if len(fromJSON) != len(fromProto) {
		t.Fatalf("%d entries from JSON, %d from protobuf", len(fromJSON), len(fromProto))
	}
	for i := range fromJSON {
		a, b := fromProto[i], fromJSON[i]
		a.TraceID, a.SpanID = "", ""
		if a != b {
			t.Errorf("record %d:\nprotobuf %+v\nJSON     %+v", i, a, b)
		}
	}
}

func TestRecordsMalformed(t *testing.T) {
	msg, _ := proto.Marshal(request())
	for _, bad := range [][]byte{msg[:len(msg)-3], {0x0a, 0xff}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if _, err := Records(bad, nil, func([]byte) bool { return true }); err == nil {
			t.Errorf("Records(%x) = nil, want an error", bad)
		}
	}
	// Nested past maxDepth.
	v := str("deep")
	for range maxDepth + 2 {
		v = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{v}}}}
	}
	deep, _ := proto.Marshal(&collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{ScopeLogs: []*logspb.ScopeLogs{{
		LogRecords: []*logspb.LogRecord{{Body: v}}}}}}})
	if _, err := Records(deep, nil, func([]byte) bool { return true }); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("a value nested %d deep: %v", maxDepth+2, err)
	}
	// Empty, and unknown fields only: no records, no error.
	for _, ok := range [][]byte{nil, {0x50, 0x01}} {
		n := 0
		if _, err := Records(ok, nil, func([]byte) bool { n++; return true }); err != nil || n != 0 {
			t.Errorf("Records(%x) = %d records, %v", ok, n, err)
		}
	}
}

// seeds are requests real clients send, captured into testdata/ (the Go
// SDK's exporter; see TestCapture in the cli package), and the test
// request.
func seeds(tb testing.TB) [][]byte {
	msg, _ := proto.Marshal(request())
	out := [][]byte{msg}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.binpb"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzRecords(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	p := parser.Parser{DefaultService: "token"}
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _ = Records(msg, nil, func(frame []byte) bool {
			if !json.Valid(frame) {
				t.Fatalf("frame is not JSON: %s", frame)
			}
			p.Parse(frame, now)
			return true
		})
	})
}

func BenchmarkRecords(b *testing.B) {
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", str("checkout"))}},
		ScopeLogs: []*logspb.ScopeLogs{{Scope: &commonpb.InstrumentationScope{Name: "app"}}},
	}}}
	for i := range 100 {
		req.ResourceLogs[0].ScopeLogs[0].LogRecords = append(req.ResourceLogs[0].ScopeLogs[0].LogRecords, &logspb.LogRecord{
			TimeUnixNano: uint64(now.UnixNano()), SeverityNumber: logspb.SeverityNumber_SEVERITY_NUMBER_INFO,
			Body: str("request completed successfully"), TraceId: make([]byte, 16), SpanId: make([]byte, 8),
			Attributes: []*commonpb.KeyValue{kv("user_id", str("u-1007")), kv("n", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: int64(i)}})},
		})
	}
	msg, _ := proto.Marshal(req)
	p := parser.Parser{}
	var buf []byte
	b.Run("walk", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			buf, _ = Records(msg, buf, func([]byte) bool { return true })
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/record")
	})
	b.Run("walk and parse", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			buf, _ = Records(msg, buf, func(frame []byte) bool { p.Parse(frame, now); return true })
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/record")
	})
	b.Run("proto.Unmarshal, for comparison", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			var r collogspb.ExportLogsServiceRequest
			_ = proto.Unmarshal(msg, &r)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/record")
	})
}

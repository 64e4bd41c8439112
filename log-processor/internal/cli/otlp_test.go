package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
)

// emitWith sends n records through an OpenTelemetry SDK logger provider
// over exp, as service, and flushes them.
func emitWith(t *testing.T, exp sdklog.Exporter, service string, n int) {
	t.Helper()
	ctx := context.Background()
	provider := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewBatchProcessor(exp, sdklog.WithExportMaxBatchSize(50))),
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", service), attribute.String("host.name", "web-1"))))
	logger := provider.Logger("checkout.http", otellog.WithInstrumentationVersion("1.0.0"))
	sevs := []struct {
		s    otellog.Severity
		text string
	}{{otellog.SeverityInfo, "Information"}, {otellog.SeverityWarn2, "WARN2"}, {otellog.SeverityError4, "ERROR4"}, {otellog.SeverityFatal, ""}}
	for i := range n {
		var r otellog.Record
		r.SetTimestamp(time.Now())
		r.SetSeverity(sevs[i%len(sevs)].s)
		r.SetSeverityText(sevs[i%len(sevs)].text)
		r.SetBody(attribute.StringValue(fmt.Sprintf("order %d placed", i)))
		r.AddAttributes(attribute.String("user_id", "u-1007"), attribute.Int("n", i))
		logger.Emit(ctx, r)
	}
	if err := provider.Shutdown(ctx); err != nil { // flushes
		t.Fatalf("%s: shutdown: %v", service, err)
	}
}

// TestOTLPWithTheSDK (issue 21): the official OpenTelemetry Go SDK's log
// exporters, over HTTP (protobuf, gzip) and over gRPC, deliver to the
// processor as they would to a Collector, with a token; every record is
// stored with its service, level (by severity number), attributes and
// scope; a wrong token is refused.
func TestOTLPWithTheSDK(t *testing.T) {
	const token = "otel-token-5f1"
	tokenFile := filepath.Join(t.TempDir(), "otel.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--ingest-token-file", "otel="+tokenFile)
	ctx := context.Background()
	auth := map[string]string{"Authorization": "Bearer " + token}
	hexp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL("http://"+p.ingest+"/v1/logs"), otlploghttp.WithHeaders(auth),
		otlploghttp.WithCompression(otlploghttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	gexp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(p.grpc), otlploggrpc.WithInsecure(), otlploggrpc.WithHeaders(auth))
	if err != nil {
		t.Fatal(err)
	}
	emitWith(t, hexp, "shop-http", 200)
	emitWith(t, gexp, "shop-grpc", 100)

	var s stats
	poll.Until(t, 20*time.Second, "300 records stored", func() bool { getJSON(t, p.api+"/stats", &s); return s.Stored == 300 })
	if s.ByService["shop-http"] != 200 || s.ByService["shop-grpc"] != 100 || s.ParseErr != 0 {
		t.Fatalf("by service %v, parse errors %d: want 200 over HTTP, 100 over gRPC, none refused", s.ByService, s.ParseErr)
	}
	// Information, WARN2, ERROR4, FATAL: the severity number decides.
	if s.ByLevel["INFO"] != 75 || s.ByLevel["WARN"] != 75 || s.ByLevel["ERROR"] != 150 {
		t.Errorf("by level %v, want 75 INFO, 75 WARN, 150 ERROR (ERROR4 and FATAL)", s.ByLevel)
	}
	var recs []struct {
		Level, Message, Service, Source string
		Attrs                           map[string]any
	}
	getJSON(t, p.api+"/logs?service=shop-grpc&limit=1", &recs)
	if len(recs) != 1 || recs[0].Source != "push:otel" || recs[0].Attrs["user_id"] != "u-1007" || recs[0].Attrs["scope.name"] != "checkout.http" ||
		recs[0].Attrs["resource.host.name"] != "web-1" || !strings.HasPrefix(recs[0].Message, "order ") {
		t.Errorf("a stored record: %+v", recs)
	}
	for _, name := range []string{"push:otel:otlp", "push:otel:otlp-grpc"} {
		if src := sourceNamed(s, name); src == nil || src.Submitted == 0 || src.Requests == 0 {
			t.Errorf("source %s: %+v", name, src)
		}
	}
	// A wrong token: the exporters report the refusal.
	bad := map[string]string{"Authorization": "Bearer nope"}
	hbad, _ := otlploghttp.New(ctx, otlploghttp.WithEndpointURL("http://"+p.ingest+"/v1/logs"), otlploghttp.WithHeaders(bad),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}))
	if err := hbad.Export(ctx, sdkRecords(1)); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("HTTP with a wrong token: %v, want 401", err)
	}
	gbad, _ := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(p.grpc), otlploggrpc.WithInsecure(), otlploggrpc.WithHeaders(bad),
		otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: false}))
	if err := gbad.Export(ctx, sdkRecords(1)); err == nil || !strings.Contains(err.Error(), "Unauthenticated") {
		t.Errorf("gRPC with a wrong token: %v, want Unauthenticated", err)
	}
	_ = hbad.Shutdown(ctx)
	_ = gbad.Shutdown(ctx)
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// sdkRecords makes n SDK records, for an exporter's Export.
func sdkRecords(n int) []sdklog.Record {
	out := make([]sdklog.Record, n)
	for i := range out {
		out[i].SetTimestamp(time.Now())
		out[i].SetSeverity(otellog.SeverityInfo)
		out[i].SetBody(attribute.StringValue("x"))
	}
	return out
}

// TestOTLPHTTPAnswers: OTLP/HTTP's answers, in the request's encoding:
// 200 with a partial success naming the refused records' reasons (not to
// be retried), 400 with a google.rpc.Status for a body that does not
// decode, 415 for another content type, 413 past the body bound, and
// OTLP/JSON in both member spellings.
func TestOTLPHTTPAnswers(t *testing.T) {
	p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--otlp-max-body-bytes", "64KiB")
	url := "http://" + p.ingest + "/v1/logs"
	now := uint64(time.Now().UnixNano())
	req := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{ScopeLogs: []*logspb.ScopeLogs{{LogRecords: []*logspb.LogRecord{
		{TimeUnixNano: now, SeverityNumber: 9, Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "kept"}}},
		{TimeUnixNano: now, SeverityNumber: 9}, // no body: missing_message
		{TimeUnixNano: now, SeverityText: "LOUD", Body: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "?"}}},
	}}}}}}
	body, _ := proto.Marshal(req)
	post := func(ct string, b []byte) (int, string, []byte) {
		resp, err := http.Post(url, ct, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), out
	}
	code, ct, out := post("application/x-protobuf", body)
	var res collogspb.ExportLogsServiceResponse
	if code != 200 || ct != "application/x-protobuf" || proto.Unmarshal(out, &res) != nil || res.PartialSuccess.GetRejectedLogRecords() != 2 ||
		!strings.Contains(res.PartialSuccess.GetErrorMessage(), "invalid_level 1") || !strings.Contains(res.PartialSuccess.GetErrorMessage(), "missing_message 1") {
		t.Errorf("partial success: %d %s %+v", code, ct, &res)
	}
	jsonBody := fmt.Sprintf(`{"resource_logs":[{"scope_logs":[{"log_records":[{"time_unix_nano":"%d","severity_number":13,"body":{"string_value":"snake case"}}]}]}]}`, now)
	if code, ct, out := post("application/json", []byte(jsonBody)); code != 200 || ct != "application/json" || string(out) != "{}" {
		t.Errorf("OTLP/JSON in snake case: %d %s %s", code, ct, out)
	}
	if code, ct, out := post("application/json", []byte(`{"resourceLogs":[{`)); code != 400 || ct != "application/json" || !strings.Contains(string(out), `"message"`) {
		t.Errorf("broken JSON: %d %s %s", code, ct, out)
	}
	if code, _, _ := post("application/x-protobuf", []byte{0x0a, 0xff}); code != 400 {
		t.Errorf("broken protobuf: %d, want 400", code)
	}
	if code, _, _ := post("text/plain", body); code != 415 {
		t.Errorf("text/plain: %d, want 415", code)
	}
	if code, _, _ := post("application/x-protobuf", bytes.Repeat([]byte{0x50, 0x01}, 40<<10)); code != 413 {
		t.Errorf("80 KiB: %d, want 413", code)
	}
	var recs []struct{ Message, Level string }
	poll.Until(t, 10*time.Second, "2 stored", func() bool { getJSON(t, p.api+"/logs", &recs); return len(recs) == 2 })
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

package otlp

import (
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
)

var capture = flag.Bool("capture", false, "rewrite testdata/sdk-go-http.binpb from the OpenTelemetry Go SDK's exporter")

// TestCaptureSDKRequest records what the official Go SDK's OTLP/HTTP log
// exporter sends (with -capture), as a seed for FuzzRecords and a case for
// the decoder: a real client's request, decoded record by record.
func TestCaptureSDKRequest(t *testing.T) {
	got := make(chan []byte, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- b:
		default:
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	ctx := context.Background()
	exp, err := otlploghttp.New(ctx, otlploghttp.WithEndpointURL(srv.URL+"/v1/logs"))
	if err != nil {
		t.Fatal(err)
	}
	provider := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(exp)),
		sdklog.WithResource(resource.NewSchemaless(attribute.String("service.name", "captured"), attribute.String("host.name", "h"))))
	var r otellog.Record
	r.SetTimestamp(time.Unix(1_764_300_000, 0))
	r.SetSeverity(otellog.SeverityWarn3)
	r.SetSeverityText("WARN3")
	r.SetBody(attribute.MapValue(attribute.String("order", "o-1"), attribute.Int("items", 3)))
	r.AddAttributes(attribute.Bool("retry", true), attribute.Float64("ratio", 0.5), attribute.ByteSlice("raw", []byte{1, 2}),
		attribute.Slice("tags", attribute.StringValue("a"), attribute.StringValue("b")))
	r.SetEventName("checkout.done")
	provider.Logger("capture", otellog.WithInstrumentationVersion("0.1")).Emit(ctx, r)
	_ = provider.Shutdown(ctx)
	body := <-got
	path := filepath.Join("testdata", "sdk-go-http.binpb")
	if *capture {
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var frames []string
	if _, err := Records(body, nil, func(f []byte) bool { frames = append(frames, string(f)); return true }); err != nil || len(frames) != 1 {
		t.Fatalf("the SDK's request: %d records, %v", len(frames), err)
	}
	want := `{"service.name":"captured","resource.host.name":"h","scope.name":"capture","scope.version":"0.1","timeUnixNano":"1764300000000000000",` +
		`"observedTimeUnixNano":"OBSERVED","severityNumber":15,"severityText":"WARN3","eventName":"checkout.done",` +
		`"body":{"kvlistValue":{"values":[{"key":"order","value":{"stringValue":"o-1"}},{"key":"items","value":{"intValue":"3"}}]}},` +
		`"attributes":[{"key":"retry","value":{"boolValue":true}},{"key":"ratio","value":{"doubleValue":0.5}},{"key":"raw","value":{"bytesValue":"AQI="}},` +
		`{"key":"tags","value":{"arrayValue":{"values":[{"stringValue":"a"},{"stringValue":"b"}]}}}]}`
	if len(frames[0]) != len(want)-len("OBSERVED")+19 { // the observed time is the moment of Emit: 19 digits
		t.Errorf("the SDK's record as OTLP/JSON:\n%s\nwant the shape of\n%s", frames[0], want)
	}
}

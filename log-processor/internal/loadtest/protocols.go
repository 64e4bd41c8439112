package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/snappy"
	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/logpipeline/log-processing-service/log-processor/internal/loki"
	"github.com/logpipeline/log-processing-service/log-processor/internal/proc"
)

// perRequest is how many entries each protocol's request carries: the
// batch size of the shippers' defaults (Filebeat's bulk_max_size is 1600,
// the OpenTelemetry SDK's 512, Promtail's 1 MiB of lines).
const perRequest = 500

// protocolBody is one protocol's request: where it goes, how it is
// marked, and its body, encoded once.
type protocolBody struct {
	name, path string
	header     map[string]string
	body       []byte
}

// protocolBodies encodes perRequest entries, alike in every protocol (a
// service, a level, a message of some 60 bytes, two attributes), as each
// protocol's clients send them, at now.
func protocolBodies(now time.Time) []protocolBody {
	levels := []string{"INFO", "WARN", "ERROR"}
	msg := func(i int) string { return "request " + strconv.Itoa(i) + " completed for user u-1007 in 12 ms" }

	var ndjson, bulk bytes.Buffer
	for i := range perRequest {
		line := fmt.Sprintf(`{"timestamp":%d,"level":%q,"message":%q,"service":"checkout","user_id":"u-1007","latency_ms":12}`,
			now.UnixMilli(), levels[i%3], msg(i))
		ndjson.WriteString(line + "\n")
		bulk.WriteString(`{"create":{"_index":"logs-checkout-default"}}` + "\n" + line + "\n")
	}

	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	sev := []logspb.SeverityNumber{logspb.SeverityNumber_SEVERITY_NUMBER_INFO, logspb.SeverityNumber_SEVERITY_NUMBER_WARN, logspb.SeverityNumber_SEVERITY_NUMBER_ERROR}
	scope := &logspb.ScopeLogs{Scope: &commonpb.InstrumentationScope{Name: "checkout.http"}}
	for i := range perRequest {
		scope.LogRecords = append(scope.LogRecords, &logspb.LogRecord{
			TimeUnixNano: uint64(now.UnixNano()), SeverityNumber: sev[i%3], Body: str(msg(i)),
			Attributes: []*commonpb.KeyValue{{Key: "user_id", Value: str("u-1007")},
				{Key: "latency_ms", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 12}}}},
		})
	}
	otlp := &collogspb.ExportLogsServiceRequest{ResourceLogs: []*logspb.ResourceLogs{{
		Resource:  &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: str("checkout")}}},
		ScopeLogs: []*logspb.ScopeLogs{scope},
	}}}
	otlpProto, _ := proto.Marshal(otlp)
	otlpJSON, _ := protojson.Marshal(otlp)

	// Loki: a stream per level, the message as the line, the user as
	// structured metadata (as Alloy sends a line with its labels).
	var streams []loki.Stream
	for l, level := range levels {
		s := loki.Stream{Labels: `{env="prod", level="` + strings.ToLower(level) + `", service_name="checkout"}`}
		for i := l; i < perRequest; i += 3 {
			s.Entries = append(s.Entries, loki.Entry{Time: now, Line: msg(i), Metadata: [][2]string{{"user_id", "u-1007"}}})
		}
		streams = append(streams, s)
	}
	var lokiJSON bytes.Buffer
	lokiJSON.WriteString(`{"streams":[`)
	for si, s := range streams {
		if si > 0 {
			lokiJSON.WriteByte(',')
		}
		fmt.Fprintf(&lokiJSON, `{"stream":{"env":"prod","level":%q,"service_name":"checkout"},"values":[`, strings.ToLower(levels[si]))
		for i, e := range s.Entries {
			if i > 0 {
				lokiJSON.WriteByte(',')
			}
			fmt.Fprintf(&lokiJSON, `[%q,%q,{"user_id":"u-1007"}]`, strconv.FormatInt(e.Time.UnixNano(), 10), e.Line)
		}
		lokiJSON.WriteString("]}")
	}
	lokiJSON.WriteString("]}")

	ct := func(v string) map[string]string { return map[string]string{"Content-Type": v} }
	return []protocolBody{
		{"POST /ingest, NDJSON", "/ingest", ct("application/x-ndjson"), ndjson.Bytes()},
		{"OTLP/HTTP, protobuf", "/v1/logs", ct("application/x-protobuf"), otlpProto},
		{"OTLP/HTTP, JSON", "/v1/logs", ct("application/json"), otlpJSON},
		// As Filebeat and Logstash ask, for the answer they read.
		{"Elasticsearch _bulk", "/_bulk?filter_path=errors,items.*.error,items.*.status", ct("application/x-ndjson"), bulk.Bytes()},
		{"Loki push, protobuf + Snappy", loki.Path, ct("application/x-protobuf"), snappy.Encode(nil, loki.AppendProto(nil, streams))},
		{"Loki push, JSON", loki.Path, ct("application/json"), lokiJSON.Bytes()},
	}
}

// protocolRows measures the processor with memory storage taking each
// ingest protocol from one client that sends the same request of
// perRequest entries again and again, each compared with POST /ingest
// NDJSON measured in the same run.
func (cfg SuiteConfig) protocolRows(ctx context.Context) ([]row, error) {
	var rows []row
	var ndjson float64
	for i, pb := range protocolBodies(time.Now()) {
		fmt.Fprintf(cfg.Out, "# processor, memory storage, one client pushing %s, %d entries a request\n", pb.name, perRequest)
		res, err := cfg.protocolRun(ctx, pb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pb.name, err)
		}
		if i == 0 {
			ndjson = res.Rate
		}
		rows = append(rows, row{name: fmt.Sprintf("processor, memory, 1 client, %s (vs /ingest NDJSON)", pb.name), rate: res.Rate, ceiling: ndjson, res: res})
	}
	return rows, nil
}

// protocolRun starts a processor with pushes on and measures it while one
// client sends pb's request in a loop. The bodies' times are those of the
// suite's start, well within the time window for its length.
func (cfg SuiteConfig) protocolRun(ctx context.Context, pb protocolBody) (Result, error) {
	p, err := proc.Start(cfg.ProcessorBin, "--ingest-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "json")
	if err != nil {
		return Result{}, fmt.Errorf("start processor: %w", err)
	}
	defer p.Stop(30 * time.Second)
	addr, err := ingestAddr(p)
	if err != nil {
		return Result{}, err
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var cerr error
	wg.Go(func() { cerr = sendLoop(cctx, "http://"+addr+pb.path, pb) })
	res, werr := Watch(ctx, "http://"+p.Addr, p.Pid(), cfg.Warmup, cfg.Duration)
	cancel()
	wg.Wait()
	if err := p.Stop(30 * time.Second); err != nil {
		return Result{}, fmt.Errorf("processor exit: %v\n%s", err, tail(p.Log(), 20))
	}
	if werr != nil {
		return Result{}, fmt.Errorf("measure processor: %w", werr)
	}
	if cerr != nil {
		return Result{}, cerr
	}
	return res, nil
}

// sendLoop posts pb's body to url until ctx ends, on one keep-alive
// connection. A refusal to retry (429, 503) is waited out briefly; any
// other answer than success is an error.
func sendLoop(ctx context.Context, url string, pb protocolBody) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	defer client.CloseIdleConnections()
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(pb.body))
		if err != nil {
			return err
		}
		for k, v := range pb.header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case resp.StatusCode < 300:
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			time.Sleep(10 * time.Millisecond)
		default:
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
	}
	return nil
}

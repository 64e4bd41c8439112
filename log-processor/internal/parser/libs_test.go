package parser

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// libsNow is when the files under testdata/libs were written: the tests
// pin "now" there, so that the 7-day window never makes them stale.
var libsNow = time.Date(2026, 11, 29, 2, 40, 0, 0, time.UTC)

// libWant is the expected outcome of one line: its reason and, when OK, the
// entry's fields ("" and 0 are not checked, except Service, always
// checked) and attributes the entry must hold (a subset, as JSON).
type libWant struct {
	reason                  Reason
	level, service, message string
	trace, span             string
	ms                      int64
	attrs                   string
}

// ok and below are shorthands for the table.
func ok(level, service, message string) libWant {
	return libWant{reason: OK, level: level, service: service, message: message}
}

func below() libWant { return libWant{reason: BelowMinLevel} }

func (w libWant) with(f func(*libWant)) libWant { f(&w); return w }

// The source's name stands in for a missing service.
const libSource = "lib-source"

var libCases = map[string][]libWant{
	"log-slog@go1.26.8.jsonl": {
		below(),
		ok("INFO", libSource, "request completed").with(func(w *libWant) {
			w.attrs = `{"method":"GET","path":"/api/orders","status":200,"duration_ms":12.5}`
			w.ms = time.Date(2026, 11, 29, 2, 39, 40, 426e6, time.UTC).UnixMilli()
		}),
		ok("WARN", libSource, "slow query"),
		ok("ERROR", libSource, "payment declined").with(func(w *libWant) {
			w.trace, w.attrs = "4bf92f3577b34da6a3ce929d0e0e4736", `{"user_id":"u-1007"}`
		}),
		ok("INFO", libSource, "between info and warn"), // INFO+2
		ok("INFO", libSource, "just below warn"),       // INFO+3, as slog names WARN-1
		ok("ERROR", libSource, "beyond error"),         // ERROR+4
		ok("INFO", "checkout", "order placed").with(func(w *libWant) { w.attrs = `{"order":{"id":"o-17","total":42.5}}` }),
	},
	"go.uber.org-zap@v1.28.0.jsonl": {
		below(),
		ok("INFO", libSource, "request completed").with(func(w *libWant) {
			w.ms, w.attrs = 1795919980427, `{"caller":"samplegen/main.go:94","method":"GET","status":200}`
		}),
		ok("WARN", libSource, "slow query"),
		ok("ERROR", libSource, "payment declined"),
		ok("ERROR", libSource, "inconsistent state"), // dpanic
		ok("INFO", "billing", "invoice sent"),        // a named logger
		ok("WARN", "billing.tax", "rate missing"),
	},
	"github.com-rs-zerolog@v1.35.1.jsonl": {
		below(), below(),
		ok("INFO", libSource, "request completed").with(func(w *libWant) {
			w.ms, w.attrs = time.Date(2026, 11, 29, 2, 39, 40, 0, time.UTC).UnixMilli(), `{"method":"GET","status":200}`
		}),
		ok("WARN", libSource, "slow query"),
		ok("ERROR", libSource, "payment declined"),
		ok("ERROR", libSource, "cannot continue"),  // fatal
		ok("ERROR", libSource, "invariant broken"), // panic
		ok("INFO", "checkout", "order placed"),
	},
	"github.com-sirupsen-logrus@v1.10.2.jsonl": {
		below(), below(),
		ok("INFO", libSource, "request completed").with(func(w *libWant) { w.attrs = `{"method":"GET","status":200}` }),
		ok("WARN", libSource, "slow query"), // "warning"
		ok("ERROR", libSource, "payment declined"),
		ok("INFO", "checkout", "order placed"), // app
	},
	"pino@10.4.0.jsonl": {
		below(), below(),
		ok("INFO", "checkout", "request completed").with(func(w *libWant) {
			w.ms, w.attrs = 1795919996171, `{"pid":31141,"hostname":"vm","method":"GET","status":200}`
		}),
		ok("WARN", "checkout", "slow query"),
		ok("ERROR", "checkout", "payment declined"),
		ok("ERROR", "checkout", "cannot continue"), // 60, fatal
		ok("INFO", libSource, "no name given"),
	},
	"bunyan@2.0.5.jsonl": {
		below(), below(),
		ok("INFO", "inventory", "request completed").with(func(w *libWant) {
			w.ms, w.attrs = time.Date(2026, 11, 29, 2, 39, 56, 215e6, time.UTC).UnixMilli(), `{"hostname":"vm","v":0}`
		}),
		ok("WARN", "inventory", "slow query"),
		ok("ERROR", "inventory", "payment declined"),
		ok("ERROR", "inventory", "cannot continue"),
	},
	"winston@3.19.0.jsonl": {
		below(), below(), below(), below(), // silly, debug, verbose, http
		ok("INFO", "notifications", "request completed").with(func(w *libWant) { w.attrs = `{"method":"GET","status":200}` }),
		ok("WARN", "notifications", "slow query"),
		ok("ERROR", "notifications", "payment declined").with(func(w *libWant) { w.attrs = `{"user_id":"u-1007"}` }),
	},
	"ecs@1.x-spec.jsonl": {
		ok("INFO", "orders", "request completed").with(func(w *libWant) {
			w.ms, w.trace, w.span = 1795919990123, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			w.attrs = `{"ecs.version":"1.6.0","http.request.method":"GET"}`
		}),
		ok("WARN", "orders", "slow query").with(func(w *libWant) { // the nested form
			w.trace, w.span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			w.attrs = `{"log":{"level":"warn","logger":"orders.db"},"service":{"name":"orders","version":"1.2.3"},"event":{"duration":812000000}}`
		}),
		ok("ERROR", "orders", "payment declined").with(func(w *libWant) { w.attrs = `{"error":{"type":"DeclinedError","message":"card expired"}}` }),
		below(),
	},
	"otel-logrecord@1.x-spec.jsonl": {
		ok("INFO", libSource, "request completed").with(func(w *libWant) {
			w.ms, w.trace, w.span = 1795919990123, "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
			w.attrs = `{"http.method":"GET","http.status_code":"200","user_id":"u-1007","observedTimeUnixNano":"1795919990200000000"}`
		}),
		ok("ERROR", "checkout", "payment declined"), // severityNumber 17; service.name from the resource
		ok("WARN", libSource, "slow query").with(func(w *libWant) { w.attrs = `{"db.statement.ms":812.5,"retry":true}` }),
		below(), // severityNumber 5
	},
	"gelf@1.1-spec.jsonl": {
		ok("INFO", "storefront", "request completed").with(func(w *libWant) {
			w.ms, w.attrs = 1795919990123, `{"version":"1.1","host":"web-1","full_message":"GET /api/orders 200 in 12 ms","_user_id":"u-1007"}`
		}),
		ok("ERROR", "storefront", "payment declined"), // level 3; _app
		ok("WARN", "storefront", "disk almost full"),
		below(), // level 7
		ok("ERROR", "storefront", "no level: alert by the spec"),
	},
}

// TestLibrarySamples: every line written by a real library (or, for ECS,
// OpenTelemetry and GELF, from their specifications) normalises to its
// expected entry.
func TestLibrarySamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "libs", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	p := Parser{DefaultService: libSource}
	for _, path := range files {
		name := filepath.Base(path)
		wants, known := libCases[name]
		if !known {
			t.Errorf("%s has no expectations in libCases", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			lines := readLines(t, path)
			if len(lines) != len(wants) {
				t.Fatalf("%d lines, %d expectations", len(lines), len(wants))
			}
			for i, line := range lines {
				e, r := p.Parse(line, libsNow)
				checkLib(t, i+1, e, r, wants[i])
			}
		})
	}
}

// TestOTelExport: an OTLP/JSON export frame is Multi, and ParseEach reads
// each record, with the resource's service.name and the scope kept.
func TestOTelExport(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "otel-export@1.x-spec.json"))
	if err != nil {
		t.Fatal(err)
	}
	p := Parser{DefaultService: libSource}
	if _, r := p.Parse(data, libsNow); r != Multi {
		t.Fatalf("Parse = %v, want multi", r)
	}
	type result struct {
		Entry  models.LogEntry
		Reason Reason
	}
	parseAll := func(data []byte) []result {
		var out []result
		p.ParseEach(data, libsNow, func(e models.LogEntry, r Reason) bool { out = append(out, result{e, r}); return true })
		return out
	}
	got := parseAll(data)
	wants := []libWant{
		ok("INFO", "checkout", "request completed").with(func(w *libWant) {
			w.ms, w.attrs = 1795919990123, `{"resource.host.name":"web-1","scope.name":"checkout.http","scope.version":"1.0.0","http.status_code":"200"}`
		}),
		ok("WARN", "checkout", "slow request").with(func(w *libWant) { w.ms = 1795919990124 }),
		ok("ERROR", "checkout", "deadlock").with(func(w *libWant) { w.trace = "5b8efff798038103d269b633813fc60c" }),
		below(),
	}
	if len(got) != len(wants) {
		t.Fatalf("%d records, want %d", len(got), len(wants))
	}
	for i := range got {
		checkLib(t, i+1, got[i].Entry, got[i].Reason, wants[i])
	}
	snake := strings.NewReplacer(`"resourceLogs"`, `"resource_logs"`, `"scopeLogs"`, `"scope_logs"`, `"logRecords"`, `"log_records"`).Replace(string(data))
	if got := parseAll([]byte(snake)); len(got) != len(wants) || got[0].Reason != OK {
		t.Errorf("the export in snake_case: %d records, want %d", len(got), len(wants))
	}
	n := 0
	p.ParseEach(data, libsNow, func(models.LogEntry, Reason) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("ParseEach went on after fn said stop: %d calls", n)
	}
	if got := parseAll([]byte(`{"resourceLogs":"nope"}`)); len(got) != 1 || got[0].Reason != InvalidJSON {
		t.Errorf("a broken export = %+v, want one invalid_json", got)
	}
}

func checkLib(t *testing.T, line int, e models.LogEntry, r Reason, w libWant) {
	t.Helper()
	if r != w.reason {
		t.Errorf("line %d: reason %v, want %v", line, r, w.reason)
		return
	}
	if r != OK {
		return
	}
	if e.Level != w.level || e.Service != w.service || e.Message != w.message {
		t.Errorf("line %d: level %q service %q message %q; want %q %q %q", line, e.Level, e.Service, e.Message, w.level, w.service, w.message)
	}
	if (w.trace != "" && e.TraceID != w.trace) || (w.span != "" && e.SpanID != w.span) {
		t.Errorf("line %d: trace %q span %q; want %q %q", line, e.TraceID, e.SpanID, w.trace, w.span)
	}
	if w.ms != 0 && e.Timestamp != w.ms {
		t.Errorf("line %d: timestamp %d, want %d", line, e.Timestamp, w.ms)
	}
	if d := e.Timestamp - libsNow.UnixMilli(); d > time.Minute.Milliseconds() || -d > time.Minute.Milliseconds() {
		t.Errorf("line %d: timestamp %d is not within a minute of the samples", line, e.Timestamp)
	}
	if w.attrs != "" {
		var got, want map[string]any
		if err := json.Unmarshal([]byte(e.Attrs), &got); err != nil {
			t.Errorf("line %d: attrs %q: %v", line, e.Attrs, err)
			return
		}
		if err := json.Unmarshal([]byte(w.attrs), &want); err != nil {
			t.Fatal(err)
		}
		for k, v := range want {
			if gb, _ := json.Marshal(got[k]); string(gb) != mustJSON(v) {
				t.Errorf("line %d: attrs[%q] = %s, want %s (attrs %s)", line, k, gb, mustJSON(v), e.Attrs)
			}
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	return out
}

// BenchmarkParseDialects parses one INFO line of each library's sample, to
// compare with BenchmarkParse/valid (the generator's format).
func BenchmarkParseDialects(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join("testdata", "libs", "*"))
	p := Parser{DefaultService: libSource}
	for _, path := range files {
		var in []byte
		for _, line := range readLines(b, path) {
			if e, r := p.Parse(line, libsNow); r == OK && e.Level == "INFO" {
				in = line
				break
			}
		}
		if in == nil {
			continue
		}
		name := strings.SplitN(filepath.Base(path), "@", 2)[0]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				p.Parse(in, libsNow)
			}
		})
	}
}

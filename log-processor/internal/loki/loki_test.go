package loki

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push/pushtest"
)

var discard = slog.New(slog.DiscardHandler)

const secret = "loki-token-41d"

// testStream and testEntry describe a push request, encoded by
// encodeProto as Loki's push.proto lays it out (the labels in their text
// form, as Promtail writes a label set) and by encodeJSON as its JSON form.
type testStream struct {
	labels  string
	entries []testEntry
}

type testEntry struct {
	ts   time.Time
	line string
	md   [][2]string
}

func encodeProto(streams []testStream) []byte {
	var out []Stream
	for _, s := range streams {
		st := Stream{Labels: s.labels}
		for _, e := range s.entries {
			st.Entries = append(st.Entries, Entry{Time: e.ts, Line: e.line, Metadata: e.md})
		}
		out = append(out, st)
	}
	return AppendProto(nil, out)
}

// encodeJSON writes streams in Loki's JSON form; labels are given as
// name=value pairs separated by commas (no quoting: test values only).
func encodeJSON(streams []testStream) []byte {
	type js struct {
		Stream map[string]string `json:"stream"`
		Values [][]any           `json:"values"`
	}
	var out struct {
		Streams []js `json:"streams"`
	}
	for _, s := range streams {
		st := js{Stream: map[string]string{}}
		for kv := range strings.SplitSeq(strings.Trim(s.labels, "{}"), ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				continue
			}
			st.Stream[strings.Trim(k, `"`)] = strings.Trim(v, `"`)
		}
		for _, e := range s.entries {
			v := []any{strconv.FormatInt(e.ts.UnixNano(), 10), e.line}
			if len(e.md) > 0 {
				md := map[string]string{}
				for _, kv := range e.md {
					md[kv[0]] = kv[1]
				}
				v = append(v, md)
			}
			st.Values = append(st.Values, v)
		}
		out.Streams = append(out.Streams, st)
	}
	b, _ := json.Marshal(out)
	return b
}

// encodeLegacyJSON writes streams in the older JSON form, as clients
// built on logproto's JSON tags (loki-client-go's JSON mode) write it: the
// labels in their text form, entries with an RFC 3339 ts.
func encodeLegacyJSON(streams []testStream) []byte {
	type entry struct {
		TS   time.Time `json:"ts"`
		Line string    `json:"line"`
	}
	type stream struct {
		Labels  string  `json:"labels"`
		Entries []entry `json:"entries"`
	}
	var out struct {
		Streams []stream `json:"streams"`
	}
	for _, s := range streams {
		st := stream{Labels: s.labels}
		for _, e := range s.entries { // the older form has no structured metadata
			st.Entries = append(st.Entries, entry{e.ts, e.line})
		}
		out.Streams = append(out.Streams, st)
	}
	b, _ := json.Marshal(out)
	return b
}

type fixture struct {
	store *pushtest.Store
	push  *Push
	url   string
}

// newFixture serves the push source on loopback in front of a real pool
// of one worker and a queue of queueSize.
func newFixture(t *testing.T, open bool, queueSize int, cfg Config) *fixture {
	t.Helper()
	f := &fixture{store: pushtest.NewStore(open)}
	env := pushtest.Env(t, f.store, queueSize, parser.Parser{MaxAttrsBytes: 512}, push.GateConfig{}, push.Token{Name: "alloy", Value: secret})
	f.push = New(cfg, env, discard)
	f.url = pushtest.Serve(t, f.push) + Path
	return f
}

// send posts body as Promtail does: Basic auth with the token as the
// password, the tenant, and the content type given.
func (f *fixture) send(t *testing.T, ct string, body []byte, header ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest("POST", f.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("1234", secret)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("X-Scope-OrgID", "team-a")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(out)
}

// mapping are streams whose entries show each rule of the mapping, with
// the service, level and attributes each must be stored with.
func mapping(now time.Time) ([]testStream, map[string]string) {
	streams := []testStream{
		{`{app="shop", env="prod", level="error", service_name="checkout"}`, []testEntry{
			{now, "payment declined", [][2]string{{"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"}, {"user", "u-1"}}},
			{now, `{"level":"info","msg":"from a JSON line","order":"o-7","service":"inner"}`, nil},
		}},
		{`{detected_level="unknown", filename="/var/log/app.log", job="varlogs"}`, []testEntry{
			{now, "a line with no level", nil},
			{now, `{"severity":"WARNING","message":"the line's level, when the labels name none"}`, nil},
			{now, `{"not":"a log"}`, nil},
		}},
		{`{container="api", "k8s.pod"="api-1", level="warn"}`, []testEntry{
			{now.Add(-time.Second), "quoted \"name\" label", nil},
		}},
		{`{}`, []testEntry{{now, "no labels at all", nil}}},
	}
	want := map[string]string{
		"payment declined":                            `checkout ERROR {"app":"shop","env":"prod","tenant":"team-a","user":"u-1"}`,
		"from a JSON line":                            `checkout ERROR {"app":"shop","env":"prod","tenant":"team-a","order":"o-7"}`,
		"a line with no level":                        `varlogs INFO {"detected_level":"unknown","filename":"/var/log/app.log","tenant":"team-a"}`,
		"the line's level, when the labels name none": `varlogs WARN {"detected_level":"unknown","filename":"/var/log/app.log","tenant":"team-a"}`,
		`{"not":"a log"}`:                             `varlogs INFO {"detected_level":"unknown","filename":"/var/log/app.log","tenant":"team-a"}`,
		`quoted "name" label`:                         `api WARN {"k8s.pod":"api-1","tenant":"team-a"}`,
		"no labels at all":                            `alloy INFO {"tenant":"team-a"}`,
	}
	return streams, want
}

// TestPushMapping (issue 21): protobuf (Snappy, as every Loki client
// sends it) and JSON (plain and gzip) requests are stored by the same
// rules: service and level from the labels, a JSON line read by the
// parser for what the labels do not say, the other labels, the structured
// metadata and the tenant as attributes, trace_id as the trace id, the
// entry's own time; the answer is 204.
func TestPushMapping(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	streams, want := mapping(now)
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		w := gzip.NewWriter(&out)
		_, _ = w.Write(b)
		_ = w.Close()
		return out.Bytes()
	}
	cases := []struct {
		name, ct string
		body     []byte
		header   []string
	}{
		{"protobuf", "application/x-protobuf", snappy.Encode(nil, encodeProto(streams)), nil},
		{"protobuf, Content-Encoding snappy", "application/x-protobuf", snappy.Encode(nil, encodeProto(streams)), []string{"Content-Encoding", "snappy"}},
		{"JSON", "application/json", encodeJSON(streams), nil},
		{"JSON, gzip", "application/json; charset=utf-8", gz(encodeJSON(streams)), []string{"Content-Encoding", "gzip"}},
		{"JSON, the older form", "application/json", encodeLegacyJSON(streams), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, true, 64, Config{})
			code, _, out := f.send(t, c.ct, c.body, c.header...)
			if code != http.StatusNoContent {
				t.Fatalf("%d %s, want 204", code, out)
			}
			poll.Until(t, 10*time.Second, "7 stored", func() bool { return len(f.store.Entries()) == 7 })
			for _, e := range f.store.Entries() {
				got := e.Service + " " + e.Level + " " + string(e.Attrs)
				w := want[e.Message]
				if c.name == "JSON, the older form" && e.Message == "payment declined" {
					w, e.TraceID = `checkout ERROR {"app":"shop","env":"prod","tenant":"team-a"}`, "4bf92f3577b34da6a3ce929d0e0e4736"
				}
				if got != w {
					t.Errorf("%q: %s, want %s", e.Message, got, w)
				}
				if e.Source != "push:alloy" {
					t.Errorf("source %q", e.Source)
				}
				if e.Message == "payment declined" && e.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" {
					t.Errorf("trace id %q", e.TraceID)
				}
				if e.Message == `quoted "name" label` && e.Timestamp != now.Add(-time.Second).UnixMilli() {
					t.Errorf("time %d, want the entry's %d", e.Timestamp, now.Add(-time.Second).UnixMilli())
				}
			}
			st := f.push.Stats()
			if len(st) != 1 || st[0].Name != "push:alloy:loki" || st[0].Submitted != 7 || st[0].Requests != 1 || st[0].DefaultLevel != 3 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestPushRefusals: whole requests refused with Loki's statuses (nothing
// kept), and entries refused one by one (the others stored, the answer a
// 400 that counts them, as Loki answers entries it refuses).
func TestPushRefusals(t *testing.T) {
	f := newFixture(t, true, 64, Config{MaxBodyBytes: 64 << 10, MaxLabels: 3, MaxLabelBytes: 32})
	now := time.Now()
	ok := snappy.Encode(nil, encodeProto([]testStream{{`{app="a"}`, []testEntry{{now, "x", nil}}}}))
	bomb := protowire.AppendVarint(nil, 1<<30) // claims a GiB
	bomb = append(bomb, 0x00)
	cases := []struct {
		name, ct string
		body     []byte
		auth     string
		code     int
		says     string
	}{
		{"not Snappy", "application/x-protobuf", []byte("plain text"), "", 400, "Snappy"},
		{"not protobuf", "application/x-protobuf", snappy.Encode(nil, []byte{0x0a, 0xff, 0x01}), "", 400, "malformed"},
		{"labels", "application/x-protobuf", snappy.Encode(nil, encodeProto([]testStream{{`{app=a}`, []testEntry{{now, "x", nil}}}})), "", 400, "malformed labels"},
		{"a Snappy bomb", "application/x-protobuf", bomb, "", 413, "--loki-max-body-bytes"},
		{"JSON", "application/json", []byte(`{"streams":[{"stream":{"a":1}}]}`), "", 400, "no string"},
		{"JSON values", "application/json", []byte(`{"streams":[{"stream":{},"values":[["x","y"]]}]}`), "", 400, "nanoseconds"},
		{"JSON truncated", "application/json", []byte(`{"streams":[`), "", 400, "malformed"},
		{"content type", "text/plain", ok, "", 415, "Content-Type"},
		{"token", "application/x-protobuf", ok, "Bearer nope", 401, "unauthorized"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := []string{}
			if c.auth != "" {
				h = []string{"Authorization", c.auth}
			}
			code, _, out := f.send(t, c.ct, c.body, h...)
			if code != c.code || !strings.Contains(out, c.says) {
				t.Errorf("%d %q, want %d saying %q", code, out, c.code, c.says)
			}
		})
	}
	if n := len(f.store.Entries()); n != 0 {
		t.Fatalf("%d entries kept from refused requests", n)
	}
	// Entries refused one by one: too old, a stream over the label bounds,
	// and NUL in a label; the others are stored.
	mixed := []testStream{
		{`{app="a"}`, []testEntry{{now, "kept", nil}, {now.Add(-30 * 24 * time.Hour), "too old", nil}}},
		{`{a="1", b="2", c="3", d="4"}`, []testEntry{{now, "too many labels", nil}}},
		{`{app="` + strings.Repeat("x", 40) + `"}`, []testEntry{{now, "a long label", nil}}},
		{`{app="nul\x00"}`, []testEntry{{now, "a NUL in a label", nil}}},
		{`{app="b"}`, []testEntry{{now, "kept too", [][2]string{{"k", "v"}}}}},
	}
	code, _, out := f.send(t, "application/x-protobuf", snappy.Encode(nil, encodeProto(mixed)))
	if code != 400 || !strings.Contains(out, "4 entries refused (field_too_long 2, nul_character 1, timestamp_out_of_range 1), the other 2 stored") {
		t.Errorf("mixed: %d %q", code, out)
	}
	poll.Until(t, 10*time.Second, "2 stored", func() bool { return len(f.store.Entries()) == 2 })
}

// TestPushFullQueue: with storage stalled, requests fill the queue and
// the next is refused whole with 429 and Retry-After (Loki clients
// retry it), counted as refused; once storage moves the retry is taken.
func TestPushFullQueue(t *testing.T) {
	f := newFixture(t, false, 8, Config{SubmitTimeout: 20 * time.Millisecond})
	body := snappy.Encode(nil, encodeProto([]testStream{{`{app="a"}`, []testEntry{{time.Now(), "1", nil}, {time.Now(), "2", nil}, {time.Now(), "3", nil}}}}))
	accepted, code := 0, 0
	var h http.Header
	for range 40 {
		if code, h, _ = f.send(t, "application/x-protobuf", body); code != 204 {
			break
		}
		accepted += 3
	}
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || accepted == 0 {
		t.Fatalf("filling the queue: %d (Retry-After %q) after %d accepted, want 429 with Retry-After", code, h.Get("Retry-After"), accepted)
	}
	if st := f.push.Stats()[0]; st.Refused != 1 || st.Submitted != uint64(accepted) {
		t.Fatalf("after the refusal: %+v", st)
	}
	f.store.SetOpen(true)
	if code, _, out := f.send(t, "application/x-protobuf", body); code != 204 {
		t.Fatalf("retry: %d %s", code, out)
	}
	poll.Until(t, 10*time.Second, "all stored", func() bool { return len(f.store.Entries()) == accepted+3 })
}

func TestParseLabels(t *testing.T) {
	cases := []struct {
		in   string
		want string // name=value;... or the error's text
	}{
		{`{}`, ""},
		{` { } `, ""},
		{`{job="varlogs"}`, "job=varlogs;"},
		{`{job="varlogs", filename="/var/log/x.log"}`, "job=varlogs;filename=/var/log/x.log;"},
		{`{a="1",b="2",}`, "a=1;b=2;"},
		{`{a="q\"uote", b="back\\slash", c="new\nline", d="\u00e9", e="\x41"}`, "a=q\"uote;b=back\\slash;c=new\nline;d=é;e=A;"},
		{"{a=`raw \\n`}", `a=raw \n;`},
		{`{"service.name"="api", _x9="y"}`, "service.name=api;_x9=y;"},
		{`{a="1"`, "does not end with }"},
		{`a="1"}`, "does not start with {"},
		{`{a=1}`, "want a quoted value"},
		{`{a="1" b="2"}`, "want , or }"},
		{`{="1"}`, "a label name is missing"},
		{`{a="1", a="2"}`, "duplicate label name"},
		{`{a="x\q"}`, "invalid syntax"},
		{`{a="open}`, "unterminated"},
		{`{a="1"} x`, "does not end with }"},
		{`{9a="1"}`, "a label name is missing"},
	}
	for _, c := range cases {
		ps, err := parseLabels([]byte(c.in), nil)
		got := ""
		for _, p := range ps {
			got += string(p.name) + "=" + string(p.value) + ";"
		}
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, c.want) || (c.want == "" && got != "") {
			t.Errorf("%s: %q, want %q", c.in, got, c.want)
		}
	}
}

// collect is a handler that records what a decoder passes, as the
// request does (so that the fuzz targets reach the mapping too).
type collect struct {
	n   int
	req *request
}

func (c *collect) stream(labels []pair) error { return c.req.stream(labels) }
func (c *collect) entry(ns int64, line []byte, md []pair) error {
	c.n++
	e, r := c.req.build(ns, line, md)
	if r.IsEntry() && new(parser.Parser).Check(&e, c.req.now) != parser.OK {
		return fmt.Errorf("an entry the parser's rules refuse: %+v", e)
	}
	return nil
}

func newCollect() *collect {
	l := New(Config{}, push.Env{Sink: intake.NewSink(intake.SinkConfig{})}, discard)
	return &collect{req: &request{l: l, p: parser.Parser{DefaultService: "fuzz", MaxAttrsBytes: 256}, now: time.Unix(1_764_900_000, 0), tenant: []byte("t")}}
}

func seedStreams() []testStream {
	now := time.Unix(1_764_900_000, 0)
	streams, _ := mapping(now)
	return append(streams, testStream{`{job="docker", container_name="web", host="h1", compose_service="web", level="info"}`,
		[]testEntry{{now, `{"log":"{\"level\":\"warn\",\"msg\":\"nested\"}\n","stream":"stdout"}`, [][2]string{{"span_id", "00f067aa0ba902b7"}}}}})
}

// FuzzProto: whatever a protobuf body holds, decoding it never panics and
// every entry it makes is one the parser's rules accept.
func FuzzProto(f *testing.F) {
	for _, s := range seedStreams() {
		f.Add(encodeProto([]testStream{s}))
	}
	f.Add(encodeProto(seedStreams()))
	f.Fuzz(func(t *testing.T, msg []byte) {
		c := newCollect()
		var sc scratch
		if err := decodeProto(msg, &sc, c); err != nil && strings.Contains(err.Error(), "the parser's rules refuse") {
			t.Fatal(err)
		}
	})
}

// FuzzJSON: likewise for JSON bodies.
func FuzzJSON(f *testing.F) {
	f.Add(encodeJSON(seedStreams()))
	f.Add(encodeLegacyJSON(seedStreams()))
	f.Add([]byte(`{"streams":[{"labels":"{a=\"1\"}","values":[["1","x",{"k":"v"}],[2,"y"]]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c := newCollect()
		var sc scratch
		if err := decodeJSON(body, &sc, c); err != nil && strings.Contains(err.Error(), "the parser's rules refuse") {
			t.Fatal(err)
		}
	})
}

// FuzzLabels: the label parser never panics, and what it accepts it
// accepts again when written back in the form Loki's clients write.
func FuzzLabels(f *testing.F) {
	for _, s := range seedStreams() {
		f.Add(s.labels)
	}
	f.Add("{a=`raw`, \"q.n\"=\"\\u00e9\\n\",}")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := parseLabels([]byte(in), nil)
		if err != nil {
			return
		}
		var b strings.Builder
		b.WriteString("{")
		for i, p := range ps {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(string(p.name)) + "=" + strconv.Quote(string(p.value)))
		}
		b.WriteString("}")
		again, err := parseLabels([]byte(b.String()), nil)
		if err != nil || len(again) != len(ps) {
			t.Fatalf("%q accepted, written back as %q: %v", in, b.String(), err)
		}
		for i := range ps {
			if string(ps[i].name) != string(again[i].name) || string(ps[i].value) != string(again[i].value) {
				t.Fatalf("%q: %q=%q came back as %q=%q", in, ps[i].name, ps[i].value, again[i].name, again[i].value)
			}
		}
	})
}

// BenchmarkDecode: a request of 500 entries (three streams, a label set
// each, a metadata pair per entry) decoded and mapped to entries, per
// entry: protobuf after its Snappy block is inflated, and JSON.
func BenchmarkDecode(b *testing.B) {
	now := time.Now()
	var streams []testStream
	for l, level := range []string{"info", "warn", "error"} {
		s := testStream{labels: `{env="prod", level="` + level + `", service_name="checkout"}`}
		for i := l; i < 500; i += 3 {
			s.entries = append(s.entries, testEntry{now, "request " + strconv.Itoa(i) + " completed for user u-1007 in 12 ms", [][2]string{{"user_id", "u-1007"}}})
		}
		streams = append(streams, s)
	}
	for _, c := range []struct {
		name   string
		body   []byte
		decode func([]byte, *scratch, handler) error
	}{{"protobuf", encodeProto(streams), decodeProto}, {"json", encodeJSON(streams), decodeJSON}} {
		b.Run(c.name, func(b *testing.B) {
			req := newCollect().req
			req.now = now
			var sc scratch
			h := &keep{req: req}
			b.ReportAllocs()
			for b.Loop() {
				h.n = 0
				if err := c.decode(c.body, &sc, h); err != nil || h.n != 500 {
					b.Fatal(err, h.n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/entry")
			b.ReportMetric(float64(testing.AllocsPerRun(10, func() { h.n = 0; _ = c.decode(c.body, &sc, h) }))/500, "allocs/entry")
		})
	}
}

// keep maps each entry, as a request does, and counts the entries kept.
type keep struct {
	req *request
	n   int
}

func (k *keep) stream(labels []pair) error { return k.req.stream(labels) }
func (k *keep) entry(ns int64, line []byte, md []pair) error {
	if _, r := k.req.build(ns, line, md); r.IsEntry() {
		k.n++
	}
	return nil
}

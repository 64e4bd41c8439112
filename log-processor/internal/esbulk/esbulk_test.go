package esbulk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push/pushtest"
)

var (
	discard = slog.New(slog.DiscardHandler)
	capture = flag.Bool("capture", false, "rewrite testdata/go-elasticsearch-bulk.ndjson from the official client's bulk indexer")
)

const secret = "es-token-7f3"

type fixture struct {
	store *pushtest.Store
	bulk  *Bulk
	url   string
}

// newFixture serves the _bulk source on loopback in front of a real pool
// of one worker and a queue of queueSize, saving into a pushtest.Store.
func newFixture(t *testing.T, open bool, queueSize int, cfg Config) *fixture {
	t.Helper()
	f := &fixture{store: pushtest.NewStore(open)}
	env := pushtest.Env(t, f.store, queueSize, parser.Parser{}, push.GateConfig{}, push.Token{Name: "beats", Value: secret})
	f.bulk = New(cfg, env, discard)
	f.url = pushtest.Serve(t, f.bulk)
	return f
}

// do sends a request with the token as a Bearer and returns the status,
// headers and body.
func (f *fixture) do(t *testing.T, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, out
}

// bulkAnswer is the part of a _bulk response shippers read.
type bulkAnswer struct {
	Errors bool
	Items  []map[string]struct {
		Index  string `json:"_index"`
		ID     string `json:"_id"`
		Status int
		Result string
		Error  struct{ Type, Reason string }
	}
}

func ecs(level, msg string) string {
	return fmt.Sprintf(`{"@timestamp":%q,"log":{"level":%q},"message":%q,"host":{"name":"web-1"}}`,
		time.Now().UTC().Format(time.RFC3339Nano), level, msg)
}

// TestBulkAnswers: a _bulk request's items are answered in order, each
// with its own status: index and create stored (a document with no
// service named by its index), an id made where none is given and kept
// where one is, delete and update refused item by item without failing the
// others, a refused document a per-item 400 that names the reason, and a
// missing final newline accepted.
func TestBulkAnswers(t *testing.T) {
	f := newFixture(t, true, 64, Config{})
	body := strings.Join([]string{
		`{"index":{"_index":"filebeat-8.19.0"}}`, ecs("info", "served /cart"),
		`{"create":{"_id":"given-1"}}`, `{"@timestamp":"` + time.Now().UTC().Format(time.RFC3339) + `","level":"warn","message":"slow","service":{"name":"cart"}}`,
		`{"delete":{"_index":"x","_id":"1"}}`,
		`{"update":{"_index":"x","_id":"2"}}`, `{"doc":{"a":1}}`,
		`{"index":{}}`, ecs("LOUD", "what level is this"),
		`{"create":{"_index":"logs-app-default"}}`, ecs("error", "no final newline"),
	}, "\n")
	code, h, out := f.do(t, "POST", "/applogs/_bulk", body)
	var a bulkAnswer
	if code != 200 || h.Get("X-Elastic-Product") != "Elasticsearch" || json.Unmarshal(out, &a) != nil {
		t.Fatalf("answer %d %v: %s", code, h, out)
	}
	type want struct {
		verb, index, id string
		status          int
		result, errType string
	}
	wants := []want{
		{"index", "filebeat-8.19.0", "", 201, "created", ""},
		{"create", "applogs", "given-1", 201, "created", ""},
		{"delete", "x", "1", 400, "", "action_request_validation_exception"},
		{"update", "x", "2", 400, "", "action_request_validation_exception"},
		{"index", "applogs", "", 400, "", "document_parsing_exception"},
		{"create", "logs-app-default", "", 201, "created", ""},
	}
	if !a.Errors || len(a.Items) != len(wants) {
		t.Fatalf("errors %t, %d items: %s", a.Errors, len(a.Items), out)
	}
	for i, w := range wants {
		it, ok := a.Items[i][w.verb]
		if !ok || it.Index != w.index || it.Status != w.status || it.Result != w.result || it.Error.Type != w.errType ||
			(w.id != "" && it.ID != w.id) || (w.verb != "delete" && w.verb != "update" && len(it.ID) == 0) {
			t.Errorf("item %d: %+v, want %+v", i, a.Items[i], w)
		}
	}
	if r := a.Items[4]["index"].Error.Reason; !strings.Contains(r, "invalid_level") {
		t.Errorf("the refused document's reason %q does not name invalid_level", r)
	}
	poll.Until(t, 10*time.Second, "3 stored", func() bool { return len(f.store.Entries()) == 3 })
	services := map[string]string{}
	for _, e := range f.store.Entries() {
		services[e.Message] = e.Service + " " + e.Level
		if e.Source != "push:beats" {
			t.Errorf("source %q, want push:beats", e.Source)
		}
	}
	wantSvc := map[string]string{"served /cart": "filebeat-8.19.0 INFO", "slow": "cart WARN", "no final newline": "logs-app-default ERROR"}
	if fmt.Sprint(services) != fmt.Sprint(wantSvc) {
		t.Errorf("stored %v, want %v", services, wantSvc)
	}
	st := f.bulk.Stats()
	if len(st) != 1 || st[0].Name != "push:beats:es" || st[0].Submitted != 3 || st[0].Requests != 1 || st[0].ParseErrors["invalid_level"] != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestBulkRefusals: whole requests refused with Elasticsearch's statuses
// and error documents: a malformed action line or a last action with no
// document is 400, a body past the bound is 413, a wrong token is 401, a
// GET of _bulk is 405, and nothing of a refused request is kept.
func TestBulkRefusals(t *testing.T) {
	f := newFixture(t, true, 64, Config{MaxBodyBytes: 4 << 10, MaxRecords: 3})
	doc := ecs("info", "m")
	cases := []struct {
		name, method, path, body string
		code                     int
		errType                  string
	}{
		{"not JSON", "POST", "/_bulk", "index\n" + doc + "\n", 400, "illegal_argument_exception"},
		{"unknown action", "POST", "/_bulk", `{"upsert":{}}` + "\n" + doc + "\n", 400, "illegal_argument_exception"},
		{"two actions in one line", "POST", "/_bulk", `{"index":{},"create":{}}` + "\n" + doc + "\n", 400, "illegal_argument_exception"},
		{"no document", "POST", "/_bulk", `{"index":{}}` + "\n", 400, "illegal_argument_exception"},
		{"too large", "POST", "/_bulk", strings.Repeat(`{"index":{}}`+"\n"+doc+"\n", 80), 413, "content_too_long_exception"},
		{"too many documents", "PUT", "/_bulk", strings.Repeat(`{"index":{}}`+"\n"+doc+"\n", 4), 413, "illegal_argument_exception"},
		{"another op", "POST", "/logs/_refresh", "", 400, "illegal_argument_exception"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, h, out := f.do(t, c.method, c.path, c.body)
			var e struct {
				Error  struct{ Type, Reason string }
				Status int
			}
			if code != c.code || json.Unmarshal(out, &e) != nil || e.Error.Type != c.errType || e.Status != c.code ||
				h.Get("X-Elastic-Product") != "Elasticsearch" {
				t.Errorf("%d %s, want %d %s", code, out, c.code, c.errType)
			}
		})
	}
	if code, _, _ := f.do(t, "GET", "/_bulk", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /_bulk: %d, want 405", code)
	}
	req, _ := http.NewRequest("POST", f.url+"/_bulk", strings.NewReader(`{"index":{}}`+"\n"+doc+"\n"))
	req.Header.Set("Authorization", "ApiKey "+base64.StdEncoding.EncodeToString([]byte("id:wrong")))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Errorf("wrong key: %d %v", resp.StatusCode, resp.Header)
	}
	if n := len(f.store.Entries()); n != 0 {
		t.Errorf("%d entries kept from refused requests", n)
	}
}

// TestBulkFullQueue: with storage stalled, requests fill the queue and
// the next is refused whole with 429 and Retry-After, counted as refused
// and not as received; once storage moves the same request is taken.
func TestBulkFullQueue(t *testing.T) {
	f := newFixture(t, false, 8, Config{SubmitTimeout: 20 * time.Millisecond})
	body := strings.Repeat(`{"create":{"_index":"app"}}`+"\n"+ecs("info", "m")+"\n", 3)
	accepted, code := 0, 0
	var h http.Header
	for range 40 { // the queue holds a few requests' worth: 40 is far more
		code, h, _ = f.do(t, "POST", "/_bulk", body)
		if code != 200 {
			break
		}
		accepted += 3
	}
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || accepted == 0 {
		t.Fatalf("filling the queue: %d (Retry-After %q) after %d accepted, want 429 with Retry-After", code, h.Get("Retry-After"), accepted)
	}
	if st := f.bulk.Stats()[0]; st.Refused != 1 || st.Submitted != uint64(accepted) {
		t.Fatalf("after the refusal: %+v, want 1 refused and %d submitted", st, accepted)
	}
	f.store.SetOpen(true)
	if code, _, out := f.do(t, "POST", "/_bulk", body); code != 200 {
		t.Fatalf("retry: %d %s", code, out)
	}
	poll.Until(t, 10*time.Second, "all stored", func() bool { return len(f.store.Entries()) == accepted+3 })
}

// TestStartupCalls: what shippers call before they send is answered as an
// Elasticsearch 8 cluster would: the version document (HEAD too), the
// license, X-Pack, health, nodes, and templates, policies, pipelines,
// data streams, aliases and indices that exist and whose installation is
// acknowledged, every answer marked as Elasticsearch's.
func TestStartupCalls(t *testing.T) {
	f := newFixture(t, true, 8, Config{})
	cases := []struct {
		method, path, body string
		check              string // a member path the answer must hold, dot-separated
		want               any
	}{
		{"GET", "/", "", "version.number", Version},
		{"GET", "/", "", "version.build_flavor", "default"},
		{"GET", "/", "", "tagline", "You Know, for Search"},
		{"GET", "/_license?human=false", "", "license.status", "active"},
		{"GET", "/_license", "", "license.type", "basic"},
		{"GET", "/_xpack", "", "features.ilm.enabled", true},
		{"GET", "/_cluster/health", "", "status", "green"},
		{"GET", "/_cluster/health/logs-app", "", "status", "green"},
		{"GET", "/_nodes/http", "", "_nodes.total", 1.0},
		{"GET", "/_index_template/filebeat-8.19.0", "", "index_templates.0.name", "filebeat-8.19.0"},
		{"PUT", "/_index_template/ecs-logstash", `{"index_patterns":["logstash-*"]}`, "acknowledged", true},
		{"GET", "/_template/logstash", "", "logstash.order", 0.0},
		{"PUT", "/_template/logstash", `{}`, "acknowledged", true},
		{"PUT", "/_component_template/c", `{}`, "acknowledged", true},
		{"GET", "/_ilm/policy/filebeat", "", "filebeat.version", 1.0},
		{"PUT", "/_ilm/policy/filebeat", `{"policy":{}}`, "acknowledged", true},
		{"GET", "/_ingest/pipeline/p1", "", "p1.processors", []any{}},
		{"PUT", "/_ingest/pipeline/p1", `{"processors":[]}`, "acknowledged", true},
		{"GET", "/_data_stream/logs-nginx-default", "", "data_streams.0.status", "GREEN"},
		{"PUT", "/_data_stream/logs-nginx-default", "", "acknowledged", true},
		{"GET", "/_alias/logstash", "", "logstash-000001.aliases.logstash.is_write_index", true},
		{"PUT", "/%3Clogstash-%7Bnow%2Fd%7D-000001%3E", `{"aliases":{"logstash":{"is_write_index":true}}}`, "index", "logstash-{now/d}-000001"},
	}
	for _, c := range cases {
		code, h, out := f.do(t, c.method, c.path, c.body)
		var doc any
		if code != 200 || h.Get("X-Elastic-Product") != "Elasticsearch" || json.Unmarshal(out, &doc) != nil {
			t.Errorf("%s %s: %d %v %s", c.method, c.path, code, h, out)
			continue
		}
		if got := member(doc, c.check); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s %s: %s is %v, want %v (%s)", c.method, c.path, c.check, got, c.want, out)
		}
	}
	for _, path := range []string{"/", "/_index_template/filebeat", "/logstash", "/_alias/logstash"} {
		code, h, out := f.do(t, "HEAD", path, "")
		if code != 200 || h.Get("X-Elastic-Product") != "Elasticsearch" || len(out) != 0 {
			t.Errorf("HEAD %s: %d %v %q, want 200 (it exists)", path, code, h, out)
		}
	}
	if code, _, _ := f.do(t, "GET", "/ingest", ""); code != 400 {
		t.Errorf("GET /ingest: %d, want 400 (no handler)", code)
	}
}

// member returns the value at a dot-separated path of a decoded JSON
// document (a number is an array index).
func member(doc any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch v := doc.(type) {
		case map[string]any:
			doc = v[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(v) {
				return nil
			}
			doc = v[i]
		default:
			return nil
		}
	}
	return doc
}

// TestOfficialClientBulkIndexer: the official Go client starts (its
// product check reads GET / and the X-Elastic-Product header), authenticates
// with an API key, Basic, and a bearer token, and its bulk indexer delivers
// every document; a document the parser refuses reaches the indexer's
// failure callback as a 400 rather than being retried. With -capture its
// request is kept as a fuzz seed.
func TestOfficialClientBulkIndexer(t *testing.T) {
	f := newFixture(t, true, 256, Config{})
	var seen bytes.Buffer
	var seenMu sync.Mutex
	tap := func(next http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/_bulk") && r.GetBody != nil {
				if b, err := r.GetBody(); err == nil {
					seenMu.Lock()
					if seen.Len() == 0 {
						_, _ = io.Copy(&seen, b)
					}
					seenMu.Unlock()
					b.Close()
				}
			}
			return next.RoundTrip(r)
		})
	}
	clients := map[string]elasticsearch.Config{
		"api key": {APIKey: base64.StdEncoding.EncodeToString([]byte("beats-id:" + secret))},
		"basic":   {Username: "elastic", Password: secret},
		"bearer":  {ServiceToken: secret},
	}
	for name, cfg := range clients {
		cfg.Addresses = []string{f.url}
		cfg.Transport = tap(http.DefaultTransport)
		es, err := elasticsearch.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		info, err := es.Info()
		if err != nil || info.StatusCode != 200 {
			t.Fatalf("%s: info: %v %v", name, info, err)
		}
		info.Body.Close()
		if name != "api key" {
			continue
		}
		bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, Index: "shop", NumWorkers: 2, FlushBytes: 8 << 10})
		if err != nil {
			t.Fatal(err)
		}
		var failed, ok sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		for i := range 300 {
			level := []string{"info", "warn", "error"}[i%3]
			if i == 150 {
				level = "LOUD"
			}
			item := esutil.BulkIndexerItem{Action: "create", Body: strings.NewReader(ecs(level, fmt.Sprintf("order %d", i)))}
			if i == 150 {
				failed.Add(1)
				item.OnFailure = func(_ context.Context, _ esutil.BulkIndexerItem, res esutil.BulkIndexerResponseItem, err error) {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s %v", res.Status, res.Error.Type, err))
					mu.Unlock()
					failed.Done()
				}
			} else {
				ok.Add(1)
				item.OnSuccess = func(context.Context, esutil.BulkIndexerItem, esutil.BulkIndexerResponseItem) { ok.Done() }
			}
			if err := bi.Add(context.Background(), item); err != nil {
				t.Fatal(err)
			}
		}
		if err := bi.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		failed.Wait()
		ok.Wait()
		if st := bi.Stats(); st.NumFlushed != 299 || st.NumFailed != 1 || len(failures) != 1 || !strings.HasPrefix(failures[0], "400 document_parsing_exception") {
			t.Errorf("indexer stats %+v, failures %v", st, failures)
		}
	}
	poll.Until(t, 10*time.Second, "299 stored", func() bool { return len(f.store.Entries()) == 299 })
	for _, e := range f.store.Entries() {
		if e.Service != "shop" || !strings.Contains(string(e.Attrs), `"host":{"name":"web-1"}`) {
			t.Fatalf("stored %+v, want service shop (the index) and attributes", e)
		}
	}
	seenMu.Lock()
	defer seenMu.Unlock()
	path := filepath.Join("testdata", "go-elasticsearch-bulk.ndjson")
	if *capture {
		if err := os.WriteFile(path, seen.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// seeds are real shippers' requests: the official Go client's (captured
// with -capture), Filebeat's and Fluent Bit's es output's (as their
// sources write them), and a few edges.
func seeds(tb testing.TB) [][]byte {
	out := [][]byte{
		[]byte(`{"create":{"_index":"filebeat-8.19.0"}}` + "\n" +
			`{"@timestamp":"2026-12-05T10:00:00.000Z","message":"GET /cart 200","log":{"level":"info","file":{"path":"/var/log/app.log"},"offset":1024},"input":{"type":"filestream"},"ecs":{"version":"8.0.0"},"host":{"name":"web-1"},"agent":{"type":"filebeat","version":"8.19.0"}}` + "\n"),
		[]byte(`{"create":{"_index":"fluent-bit"}}` + "\n" + `{"@timestamp":"2026-12-05T10:00:00.123Z","log":"{\"level\":\"warn\",\"msg\":\"slow\"}","stream":"stdout"}` + "\n"),
		[]byte(`{"index":{"_index":"x","_id":"1"}}` + "\n" + `{"message":"a"}` + "\n" + `{"delete":{"_id":"1"}}` + "\n" + `{"update":{"_id":"1"}}` + "\n" + `{"doc":{}}`),
		[]byte("\n\n{\"index\":{}}\n{}\n"),
	}
	if b, err := os.ReadFile(filepath.Join("testdata", "go-elasticsearch-bulk.ndjson")); err == nil {
		out = append(out, b)
	} else {
		tb.Errorf("the captured request: %v", err)
	}
	return out
}

// FuzzBulk: whatever a body holds, reading it never panics, answers one
// item per action in a response that is JSON, and keeps no entry that is
// not a document's.
func FuzzBulk(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	sink := intake.NewSink(intake.SinkConfig{})
	b := New(Config{MaxRecords: 1000}, push.Env{Sink: sink, Auth: &push.Auth{}, Gate: push.NewGate(push.GateConfig{})}, discard)
	in := b.path.Requests("fuzz", "fuzz")
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte) {
		batch := intake.Batch{MaxEntries: 1000}
		items, err := b.parse(in, &batch, nil, body, "fuzz", "idx", true, now)
		if err != nil {
			return
		}
		if len(batch.Entries) > len(items) {
			t.Fatalf("%d entries from %d items", len(batch.Entries), len(items))
		}
		w := httptest.NewRecorder()
		b.answer(w, items, time.Millisecond, showAll)
		var a bulkAnswer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || len(a.Items) != len(items) {
			t.Fatalf("answer %s: %v", w.Body.Bytes(), err)
		}
	})
}

// TestBulkFilterPath: the filter_path Filebeat and Logstash send keeps the
// response to what they read; a pattern not known here shows everything.
func TestBulkFilterPath(t *testing.T) {
	f := newFixture(t, true, 64, Config{})
	body := `{"create":{"_index":"a"}}` + "\n" + ecs("info", "m") + "\n" + `{"create":{"_index":"a"}}` + "\n" + ecs("LOUD", "m") + "\n"
	cases := []struct{ filter, want string }{
		{"errors,items.*.error,items.*.status", `{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"invalid_level: a level that is no known level name or number"}}}]}`},
		{"took,errors", `{"took":0,"errors":true}`},
		{"items.*._index,items.*.result", `{"items":[{"create":{"_index":"a","_version":1,"result":"created","_shards":{"total":1,"successful":1,"failed":0},"_seq_no":3,"_primary_term":1}},{"create":{"_index":"a"}}]}`}, // the third document taken
	}
	for _, c := range cases {
		code, _, out := f.do(t, "POST", "/_bulk?filter_path="+c.filter, body)
		got := strings.TrimSpace(string(out))
		if c.filter == "took,errors" {
			got = strings.Replace(got, `"took":1`, `"took":0`, 1)
		}
		if code != 200 || got != c.want {
			t.Errorf("filter_path=%s: %d\n%s\nwant\n%s", c.filter, code, got, c.want)
		}
	}
	_, _, out := f.do(t, "POST", "/_bulk?filter_path=-items.*._shards", body)
	if !strings.Contains(string(out), `"took":`) || !strings.Contains(string(out), `"_shards":`) {
		t.Errorf("an unknown pattern: %s, want everything", out)
	}
}

package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/tail"
)

func TestParseFilter(t *testing.T) {
	ms := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC).UnixMilli()
	tests := []struct {
		query string
		want  storage.Filter
		err   string
	}{
		{"", storage.Filter{}, ""},
		{"service=auth&level=warn&contains=timeout&limit=5", storage.Filter{Service: "auth", Level: "WARN", Contains: "timeout", Limit: 5}, ""},
		{"since=2026-11-28T10:00:00Z", storage.Filter{Since: ms}, ""},
		{"since=2026-11-28T11:00:00%2B01:00&until=1795860001000", storage.Filter{Since: ms, Until: ms + 1000}, ""},
		{"limit=1000", storage.Filter{Limit: 1000}, ""},
		{"level=debug", storage.Filter{Level: "DEBUG"}, ""},
		{"level=TRACE", storage.Filter{}, `invalid level="TRACE": want DEBUG, INFO, WARN or ERROR`},
		{"limit=0", storage.Filter{}, `invalid limit="0": want an integer from 1 to 1000`},
		{"limit=1001", storage.Filter{}, `invalid limit="1001"`},
		{"limit=ten", storage.Filter{}, `invalid limit="ten"`},
		{"since=yesterday", storage.Filter{}, `invalid since="yesterday": want RFC 3339`},
		{"until=-5", storage.Filter{}, `invalid until="-5": want a positive Unix time`},
		{"since=2000&until=1000", storage.Filter{}, "since is after until"},
		{"service=", storage.Filter{}, `invalid service=""`},
		{"contains=", storage.Filter{}, `invalid contains=""`},
		{"service=a&service=b", storage.Filter{}, "given 2 times"},
		{"sevrice=a", storage.Filter{}, `unknown query parameter "sevrice"`},
		{"attr.user_id=u-1007", storage.Filter{Attrs: []storage.AttrFilter{{Key: "user_id", Value: "u-1007"}}}, ""},
		{"attr.=x", storage.Filter{}, `invalid attr.="x": want an attribute name`},
		{"attr.a%22b=x", storage.Filter{}, `without quotes`},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			f, err := ParseFilter(q)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(f, tc.want) {
				t.Fatalf("ParseFilter(%q) = %+v, %v; want %+v", tc.query, f, err, tc.want)
			}
		})
	}
}

func TestParseRejectedFilter(t *testing.T) {
	tests := []struct {
		query string
		want  storage.RejectedFilter
		err   string
	}{
		{"", storage.RejectedFilter{}, ""},
		{"reason=invalid_level&source=push:b&before=9&limit=5", storage.RejectedFilter{Reason: "invalid_level", Source: "push:b", Before: 9, Limit: 5}, ""},
		{"id=3,%205,8", storage.RejectedFilter{IDs: []int64{3, 5, 8}, Limit: 3}, ""},
		{"id=3&limit=2000", storage.RejectedFilter{IDs: []int64{3}, Limit: storage.MaxLimit}, ""},
		{"id=3,,4", storage.RejectedFilter{}, "want positive integers"},
		{"id=-1", storage.RejectedFilter{}, "want positive integers"},
		{"id=1&id=2", storage.RejectedFilter{}, "given 2 times"},
		{"id=" + strings.Repeat("1,", storage.MaxLimit) + "1", storage.RejectedFilter{}, "at most 1000"},
		{"ids=1", storage.RejectedFilter{}, "unknown query parameter"},
	}
	for _, tc := range tests {
		q, _ := url.ParseQuery(tc.query)
		f, err := ParseRejectedFilter(q)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRejectedFilter(%q) = %v, want an error containing %q", tc.query, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(f, tc.want) {
			t.Errorf("ParseRejectedFilter(%q) = %+v, %v; want %+v", tc.query, f, err, tc.want)
		}
	}
}

// fake is a pipeline with fixed answers. A query blocks while block is
// set, until it is closed.
type fake struct {
	ready   pipeline.Readiness
	mu      sync.Mutex
	got     storage.Filter
	block   chan struct{}
	entered chan struct{} // if set, a query sends on it as it starts
}

// handler serves the API over f (as pipeline and store) and a tail hub.
func handler(f *fake, opts Options) http.Handler {
	return NewHandler(f, f, tail.NewHub(tail.Config{MaxClients: 2}), opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func (f *fake) ListRejected(context.Context, storage.RejectedFilter) ([]storage.Rejected, error) {
	return []storage.Rejected{}, nil
}

func (f *fake) Scan(context.Context, storage.Filter, func(*storage.Record) bool) error { return nil }
func (f *fake) Buckets(context.Context, storage.Filter, storage.BucketQuery, func(storage.Bucket) bool) error {
	return nil
}

func (f *fake) Replay(_ context.Context, flt storage.RejectedFilter) (pipeline.Replayed, error) {
	return pipeline.Replayed{Stored: len(flt.IDs), Items: []pipeline.ReplayItem{}}, nil
}

func (f *fake) StatsWithTotals(context.Context) pipeline.Stats { return pipeline.Stats{Workers: 3} }
func (f *fake) Ready() pipeline.Readiness                      { return f.ready }
func (f *fake) Query(_ context.Context, flt storage.Filter) ([]storage.Record, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = flt
	return []storage.Record{}, nil
}

func TestHandler(t *testing.T) {
	p := &fake{ready: pipeline.Readiness{Status: "degraded"}}
	srv := httptest.NewServer(handler(p, Options{}))
	defer srv.Close()
	tests := []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/healthz", 200, "ok\n"},
		{"GET", "/", 200, "GET /logs/rejected"},
		{"GET", "/readyz", 503, `"status": "degraded"`},
		{"GET", "/stats", 200, `"Workers": 3`},
		{"GET", "/logs?level=error&limit=7", 200, "[]\n"},
		{"GET", "/logs?level=nope", 400, `invalid level="nope"`},
		{"POST", "/logs/rejected/replay?id=4,9", 200, `"stored": 2`},
		{"POST", "/logs/rejected/replay?id=x", 400, `want positive integers`},
		{"GET", "/logs/rejected/replay", 405, ""},
		{"POST", "/stats", 405, ""},
		{"GET", "/nope", 404, ""},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.body) {
			t.Errorf("%s %s = %d %q, want %d containing %q", tc.method, tc.path, resp.StatusCode, body, tc.code, tc.body)
		}
	}
	if p.got.Level != "ERROR" || p.got.Limit != 7 {
		t.Errorf("query got filter %+v", p.got)
	}
	var v any
	resp, err := http.Get(srv.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("/stats is not JSON: %v %s", err, resp.Header.Get("Content-Type"))
	}
}

func TestToken(t *testing.T) {
	srv := httptest.NewServer(handler(&fake{}, Options{Token: "s3cret", Pprof: true}))
	defer srv.Close()
	tests := []struct {
		path, auth string
		code       int
	}{
		{"POST /logs/rejected/replay", "", 401},
		{"POST /logs/rejected/replay", "Bearer s3cret", 200},
		{"/logs", "", 401},
		{"/logs", "Bearer wrong", 401},
		{"/logs", "Basic s3cret", 401},
		{"/logs", "Bearer s3cret", 200},
		{"/logs/rejected", "", 401},
		{"/logs/rejected", "Bearer s3cret", 200},
		{"/debug/pprof/", "", 401},
		{"/debug/pprof/cmdline", "Bearer s3cret", 200},
		{"/healthz", "", 200},
		{"/stats", "", 200},
		{"/readyz", "", 503},
	}
	for _, tc := range tests {
		method, path, ok := strings.Cut(tc.path, " ")
		if !ok {
			method, path = "GET", tc.path
		}
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s with %q = %d, want %d", tc.path, tc.auth, resp.StatusCode, tc.code)
		}
	}
}

// TestQueryLimit: queries beyond MaxQueries at once get 503 with
// Retry-After, at once, rather than queueing behind the others.
func TestQueryLimit(t *testing.T) {
	p := &fake{block: make(chan struct{}), entered: make(chan struct{}, 2)}
	srv := httptest.NewServer(handler(p, Options{MaxQueries: 2}))
	defer srv.Close()
	codes := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := http.Get(srv.URL + "/logs")
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	<-p.entered
	<-p.entered // both queries hold their slot
	resp, err := http.Get(srv.URL + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	close(p.block)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("no 503 with Retry-After while 2 queries were running")
	}
	for range 2 {
		if c := <-codes; c != 200 {
			t.Errorf("blocked query answered %d, want 200", c)
		}
	}
}

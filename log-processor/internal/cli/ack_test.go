package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres/pgtest"
)

// ndjson returns n log lines stamped now.
func ndjson(n int, tag string) string {
	var b strings.Builder
	now := time.Now().UnixMilli()
	for i := range n {
		fmt.Fprintf(&b, `{"timestamp":%d,"level":"INFO","service":"ack","message":"%s %d"}`+"\n", now, tag, i)
	}
	return b.String()
}

// TestAckStoredIsCommitted: with --ack stored, a push request is answered
// once its entries are committed, long before the flush interval (an
// hour here) would have written them; with --ack queued the answer comes
// first and the rows only at the flush (here, the shutdown's). Per backend,
// read from the database itself.
func TestAckStoredIsCommitted(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var dsn string
			if backend == "sqlite" {
				dsn = filepath.Join(t.TempDir(), "logs.db")
			} else {
				dsn = pgtest.DSN(t)
			}
			for _, ack := range []string{"stored", "queued"} {
				p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--storage", backend, "--dsn", dsn,
					"--flush-interval", "1h", "--batch-size", "100000", "--ack", ack)
				before := countRows(t, backend, dsn)
				for i := range 3 {
					resp, err := http.Post("http://"+p.ingest+"/ingest", "application/x-ndjson", strings.NewReader(ndjson(10, ack)))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("--ack %s: POST %d: status %d", ack, i, resp.StatusCode)
					}
					got := countRows(t, backend, dsn) - before
					switch want := int64(10 * (i + 1)); {
					case ack == "stored" && got != want:
						t.Fatalf("--ack stored: answered 200 with %d rows committed, want %d", got, want)
					case ack == "queued" && got != 0:
						t.Fatalf("--ack queued with a 1h flush interval: %d rows committed before the shutdown, want 0", got)
					}
				}
				if err := p.stop(t); err != nil {
					t.Fatal(err)
				}
				if got := countRows(t, backend, dsn) - before; got != 30 {
					t.Fatalf("--ack %s: %d rows after the shutdown, want 30", ack, got)
				}
			}
		})
	}
}

// TestRetriesStoredOnce: a request sent again with the same
// Idempotency-Key, and a bulk document sent again with the same _id, are
// stored once (counted as duplicates), per storage, through the pool and
// through the embedded bus; a request with another key is stored again.
func TestRetriesStoredOnce(t *testing.T) {
	for _, tc := range []struct {
		name, backend string
		bus           bool
	}{{"sqlite", "sqlite", false}, {"postgres", "postgres", false}, {"embedded bus + sqlite", "sqlite", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dsn := filepath.Join(dir, "logs.db")
			if tc.backend == "postgres" {
				dsn = pgtest.DSN(t)
			}
			args := []string{"--ingest-addr", "127.0.0.1:0", "--storage", tc.backend, "--dsn", dsn}
			if tc.bus {
				args = append(args, "--bus", "embedded", "--data-dir", filepath.Join(dir, "data"))
			}
			p := startProcessor(t, args...)
			post := func(path, ctype, key, body string) {
				t.Helper()
				req, err := http.NewRequest(http.MethodPost, "http://"+p.ingest+path, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", ctype)
				if key != "" {
					req.Header.Set("Idempotency-Key", key)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("POST %s (key %q): status %d", path, key, resp.StatusCode)
				}
			}
			lines := ndjson(10, "once")
			post("/ingest", "application/x-ndjson", `"req-1"`, lines)
			post("/ingest", "application/x-ndjson", `"req-1"`, lines) // a retry
			post("/ingest", "application/x-ndjson", "req-2", lines)   // another request
			now := time.Now().UnixMilli()
			var bulk strings.Builder
			for i := range 5 {
				fmt.Fprintf(&bulk, `{"create":{"_index":"bulk","_id":"doc-%d"}}`+"\n"+`{"@timestamp":%d,"level":"info","message":"doc %d"}`+"\n", i, now, i)
			}
			post("/_bulk", "application/x-ndjson", "", bulk.String())
			post("/_bulk", "application/x-ndjson", "", bulk.String()) // a retry
			want := int64(10 + 10 + 5)
			count := func() int64 { return countRows(t, tc.backend, dsn) }
			if tc.bus { // --ack stored with a bus: on the stream; stored soon after
				poll.Until(t, 30*time.Second, "the stream stored", func() bool {
					var s stats
					getJSON(t, p.api+"/stats", &s)
					return s.Storage.Stored+s.Storage.Duplicates >= uint64(want+15)
				})
			}
			if got := count(); got != want {
				t.Fatalf("%d rows, want %d: a retried request or document stored twice, or a new one not at all", got, want)
			}
			var s stats
			getJSON(t, p.api+"/stats", &s)
			if s.Storage.Duplicates != 15 {
				t.Errorf("storage.duplicates = %d, want 15 (10 lines and 5 documents sent twice)", s.Storage.Duplicates)
			}
			if err := p.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDeadLetters: records the parser refuses on a push request are kept
// as dead letters, with their reason, source and bytes (cut at
// --rejected-max-bytes), read back with GET /logs/rejected (filtered,
// paged), and, with SQLite, still there after a restart.
func TestDeadLetters(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "logs.db")
	args := []string{"--ingest-addr", "127.0.0.1:0", "--storage", "sqlite", "--dsn", dsn, "--rejected-max-bytes", "64"}
	p := startProcessor(t, args...)
	now := time.Now().UnixMilli()
	long := strings.Repeat("x", 100)
	body := fmt.Sprintf(`{"timestamp":%d,"level":"INFO","service":"dl","message":"fine"}
{"timestamp":%d,"level":"LOUD","service":"dl","message":"bad level"}
{"timestamp":%d,"level":"INFO","service":"dl","message":"bad json"
{"timestamp":%d,"level":"INFO","service":"dl","message":"%s","padding":"%s"}
`, now, now, now, now, "also fine", long)
	resp, err := http.Post("http://"+p.ingest+"/ingest", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	type dead struct {
		ID        int64  `json:"id"`
		Record    string `json:"record"`
		Truncated bool   `json:"truncated"`
		Reason    string `json:"reason"`
		Source    string `json:"source"`
	}
	get := func(query string) []dead {
		t.Helper()
		var ds []dead
		if code := getJSON(t, p.api+"/logs/rejected?"+query, &ds); code != http.StatusOK {
			t.Fatalf("/logs/rejected?%s: %d", query, code)
		}
		return ds
	}
	ds := get("")
	if len(ds) != 2 || ds[0].Reason != "invalid_json" || ds[1].Reason != "invalid_level" ||
		!strings.Contains(ds[1].Record, `"LOUD"`) || ds[1].Source != "push:anonymous" || ds[0].ID <= ds[1].ID {
		t.Fatalf("dead letters %+v, want the bad JSON then the bad level, newest first, from push:anonymous", ds)
	}
	if len(ds[1].Record) != 64 || !ds[1].Truncated {
		t.Errorf("a record over --rejected-max-bytes must be cut at it and say so: %+v", ds[1])
	}
	if got := get("reason=invalid_level"); len(got) != 1 || got[0].Reason != "invalid_level" {
		t.Errorf("by reason: %+v", got)
	}
	if got := get(fmt.Sprintf("limit=1&before=%d", ds[0].ID)); len(got) != 1 || got[0].ID != ds[1].ID {
		t.Errorf("the second page: %+v", got)
	}
	if resp, err := http.Get(p.api + "/logs/rejected?limit=zero"); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad limit: %v %v, want 400", resp.Status, err)
	} else {
		resp.Body.Close()
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	p = startProcessor(t, args...)
	if got := get(""); len(got) != 2 {
		t.Fatalf("after a restart: %d dead letters, want 2", len(got))
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestReplayDeadLetters: records refused for a bound are kept; after a
// restart with the bound raised, a replay stores them (with the service
// their path gave them) and lets them go, keeps the one still refused,
// and a second replay of the same ids finds nothing to do.
func TestReplayDeadLetters(t *testing.T) {
	dsn := filepath.Join(t.TempDir(), "logs.db")
	args := []string{"--ingest-addr", "127.0.0.1:0", "--storage", "sqlite", "--dsn", dsn, "--flush-interval", "20ms"}
	p := startProcessor(t, append(args, "--message-max-bytes", "16")...)
	now := time.Now().UnixMilli()
	body := fmt.Sprintf(`{"timestamp":%d,"level":"INFO","service":"rp","message":"short"}
{"timestamp":%d,"level":"WARN","service":"rp","message":"a message longer than sixteen bytes"}
{"timestamp":%d,"level":"ERROR","message":"no service, and longer than sixteen bytes"}
{"timestamp":%d,"level":"LOUD","service":"rp","message":"bad level"}
`, now, now, now, now)
	resp, err := http.Post("http://"+p.ingest+"/ingest", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}

	p = startProcessor(t, args...)
	replay := func(query string) (int, pipeline.Replayed) {
		t.Helper()
		resp, err := http.Post(p.api+"/logs/rejected/replay?"+query, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out pipeline.Replayed
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, out
	}
	var before []storage.Rejected
	getJSON(t, p.api+"/logs/rejected", &before)
	if len(before) != 3 {
		t.Fatalf("dead letters before the replay: %+v, want 3", before)
	}
	code, out := replay("")
	if code != http.StatusOK || out.Stored != 2 || out.Refused != 1 || len(out.Items) != 3 ||
		out.Items[0].Status != pipeline.ReplayRefused || out.Items[0].Reason != "invalid_level" {
		t.Fatalf("replay = %d %+v, want 2 stored and the bad level refused", code, out)
	}
	var logs []storage.Record
	getJSON(t, p.api+"/logs?level=ERROR", &logs)
	if len(logs) != 1 || logs[0].Service != "anonymous" || logs[0].Source != "push:anonymous" || !strings.HasPrefix(logs[0].Message, "no service") {
		t.Errorf("the replayed record without a service = %+v, want it stored under its path's service and source", logs)
	}
	getJSON(t, p.api+"/logs?service=rp&level=WARN", &logs)
	if len(logs) != 1 || !strings.HasPrefix(logs[0].Message, "a message longer") {
		t.Errorf("WARN entries of rp after the replay: %+v, want the long one", logs)
	}
	var after []storage.Rejected
	getJSON(t, p.api+"/logs/rejected", &after)
	if len(after) != 1 || after[0].Reason != "invalid_level" {
		t.Errorf("dead letters after the replay: %+v, want the bad level only", after)
	}
	ids := fmt.Sprintf("id=%d,%d", out.Items[1].ID, out.Items[2].ID)
	if code, again := replay(ids); code != http.StatusOK || again.Stored != 0 || len(again.Items) != 0 {
		t.Errorf("replay of the stored ids again = %d %+v, want nothing to do", code, again)
	}
	var st pipeline.Stats
	getJSON(t, p.api+"/stats", &st)
	if st.Storage.Totals == nil || st.Storage.Totals.Total != 3 {
		t.Errorf("stored entries in all = %+v, want 3", st.Storage.Totals)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

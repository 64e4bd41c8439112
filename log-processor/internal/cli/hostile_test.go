package cli

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e/hostile"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres/pgtest"
)

// frame builds a log frame at the current time with the given JSON-encoded
// message and service, and extra JSON members appended.
func frame(message, service, extra string) []byte {
	return []byte(`{"timestamp":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `,"level":"INFO","message":` +
		message + `,"service":` + service + extra + `}`)
}

// sendFrames is a hostile source's serve function: it sends the frames
// made by next until next returns nil, then holds the connection open.
func sendFrames(next func(i int) []byte) func(int, *websocket.Conn) {
	return func(n int, c *websocket.Conn) {
		if n == 1 {
			for i := 0; ; i++ {
				f := next(i)
				if f == nil {
					break
				}
				if c.WriteMessage(websocket.TextMessage, f) != nil {
					return
				}
			}
		}
		hostile.Hold(c)
	}
}

// dbStrings runs query, which selects one text column, on the backend.
func dbStrings(t *testing.T, backend, dsn, query string) []string {
	t.Helper()
	var rows storage.Rows
	switch backend {
	case "sqlite":
		db, err := sql.Open("sqlite", "file:"+dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		r, err := db.Query(query)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rows = r
	case "postgres":
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		r, err := conn.Query(context.Background(), query)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rows = r
	default:
		t.Fatalf("no database for backend %q", backend)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// backends returns the storage flags for every backend, with a fresh
// database each.
func backends(t *testing.T) map[string][]string {
	return map[string][]string{
		"memory":   nil,
		"sqlite":   {"--storage", "sqlite", "--dsn", filepath.Join(t.TempDir(), "logs.db"), "--flush-interval", "20ms"},
		"postgres": {"--storage", "postgres", "--dsn", pgtest.DSN(t), "--flush-interval", "20ms"},
	}
}

// TestPoisonFieldsEveryBackend: NUL in each string field and each field
// over its bound are counted as parse errors; every other entry, padded
// ones too, is stored on every backend, and nothing is refused later.
func TestPoisonFieldsEveryBackend(t *testing.T) {
	fields := []string{"message", "service", "component", "trace_id", "span_id", "parent_id"}
	bound := map[string]int{"message": parser.DefaultMaxMessageBytes, "service": parser.DefaultMaxNameBytes,
		"component": parser.DefaultMaxNameBytes, "trace_id": parser.DefaultMaxIDBytes, "span_id": parser.DefaultMaxIDBytes,
		"parent_id": parser.DefaultMaxIDBytes}
	var frames [][]byte
	for _, f := range fields {
		msg, svc, extra := `"m"`, `"svc"`, ""
		set := func(v string) {
			switch f {
			case "message":
				msg = v
			case "service":
				svc = v
			default:
				extra = `,"` + f + `":` + v
			}
		}
		set(`"bad\u0000` + f + `"`)
		frames = append(frames, frame(msg, svc, extra))
		msg, svc, extra = `"m"`, `"svc"`, ""
		set(`"` + strings.Repeat("x", bound[f]+1) + `"`)
		frames = append(frames, frame(msg, svc, extra))
	}
	const good, padded = 50, 20
	for i := range good {
		frames = append(frames, frame(fmt.Sprintf(`"good %d"`, i), `"svc"`, `,"component":"c"`))
	}
	pad := `,"pad":"` + strings.Repeat("p", 200<<10) + `"`
	for i := range padded {
		frames = append(frames, frame(fmt.Sprintf(`"padded %d"`, i), `"svc"`+pad, ""))
	}
	for name, flags := range backends(t) {
		t.Run(name, func(t *testing.T) {
			src := hostile.WS(t, sendFrames(func(i int) []byte {
				if i < len(frames) {
					return frames[i]
				}
				return nil
			}))
			p := startProcessor(t, append([]string{"--urls", src.URL}, flags...)...)
			var s stats
			poll.Until(t, 30*time.Second, "every frame stored", func() bool {
				s = stats1(t, p)
				return s.Received == uint64(len(frames)) && s.Stored == good+padded
			})
			if s.ParseErrors["nul_character"] != 6 || s.ParseErrors["field_too_long"] != 6 || s.ParseErr != 12 {
				t.Errorf("parse errors %v, want 6 nul_character and 6 field_too_long", s.ParseErrors)
			}
			if s.Storage.Rejected != 0 || s.Storage.State != "ok" {
				t.Errorf("storage %+v: nothing the parser accepts may be refused", s.Storage)
			}
			if rs := getLogs(t, p.api, "limit=1000"); len(rs) != good+padded {
				t.Errorf("/logs returned %d entries, want %d", len(rs), good+padded)
			}
			if err := p.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPaddedFramesHeapBound: frames of 200 KiB whose entry is a few dozen
// bytes, far more of them than the memory store keeps: the heap holds the
// entries' own bytes, not the frames'.
func TestPaddedFramesHeapBound(t *testing.T) {
	const n = 1500 // 300 MiB of frames; before, each kept entry held its whole frame
	pad := `,"pad":"` + strings.Repeat("p", 200<<10) + `"`
	src := hostile.WS(t, sendFrames(func(i int) []byte {
		if i < n {
			return frame(`"small"`, `"svc"`+pad, "")
		}
		return nil
	}))
	p := startProcessor(t, "--urls", src.URL)
	poll.Until(t, 60*time.Second, "every frame stored", func() bool { return stats1(t, p).Stored == n })
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("heap in use after %d padded frames: %.1f MiB", n, float64(ms.HeapInuse)/(1<<20))
	if ms.HeapInuse > 64<<20 {
		t.Errorf("heap in use %.1f MiB after %d padded frames, want under 64 MiB", float64(ms.HeapInuse)/(1<<20), n)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestManyServicesStatsSmall: distinct service names of the longest allowed
// length leave /stats small: 100,000 streamed through the memory backend
// (ten times the names it counts), and a million in the counts tables of
// the database backends (100,000 for SQLite, whose fill is slow under the
// race detector). make bench streams a million through each backend.
func TestManyServicesStatsSmall(t *testing.T) {
	const services = 1_000_000 // in the counts tables
	const streamed = 100_000   // through the memory backend, ten times its name cap
	long := strings.Repeat("s", parser.DefaultMaxNameBytes-8)
	t.Run("memory", func(t *testing.T) {
		src := hostile.WS(t, sendFrames(func(i int) []byte {
			if i < streamed {
				return frame(`"m"`, fmt.Sprintf(`"%s%08d"`, long, i), "")
			}
			return nil
		}))
		p := startProcessor(t, "--urls", src.URL, "--submit-timeout", "1s")
		poll.Until(t, 120*time.Second, "every entry", func() bool { return stats1(t, p).Stored == streamed })
		checkStatsSize(t, p.api)
		if err := p.stop(t); err != nil {
			t.Fatal(err)
		}
	})
	// SQLite fills slowly under the race detector: 100,000 services there
	// (the counts are read through the same index either way).
	for backend, n := range map[string]int{"sqlite": 100_000, "postgres": services} {
		t.Run(backend, func(t *testing.T) {
			flags := backends(t)[backend]
			dsn := flags[3]
			// Open once so that the schema exists, then fill the counts
			// table directly: what /stats reads, at a million services.
			p := startProcessor(t, append([]string{"--urls", "ws://127.0.0.1:1/ws/logs"}, flags...)...)
			if err := p.stop(t); err != nil {
				t.Fatal(err)
			}
			fillServiceCounts(t, backend, dsn, long, n)
			p = startProcessor(t, append([]string{"--urls", "ws://127.0.0.1:1/ws/logs"}, flags...)...)
			checkStatsSize(t, p.api)
			if err := p.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// fillServiceCounts writes n services of one entry each into the counts
// tables, in one statement.
func fillServiceCounts(t *testing.T, backend, dsn, prefix string, n int) {
	t.Helper()
	stmts := map[string][]string{
		"sqlite": {
			`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM s WHERE i < ` + strconv.Itoa(n-1) + `)
			 INSERT INTO service_counts (service, n) SELECT '` + prefix + `' || printf('%08d', i), 1 FROM s`,
			`INSERT INTO level_counts (level, n) VALUES ('INFO', ` + strconv.Itoa(n) + `)`,
		},
		"postgres": {
			`INSERT INTO service_counts (service, n) SELECT '` + prefix + `' || lpad(i::text, 8, '0'), 1 FROM generate_series(0, ` + strconv.Itoa(n-1) + `) i`,
			`INSERT INTO level_counts (level, n) VALUES ('INFO', ` + strconv.Itoa(n) + `)`,
		},
	}[backend]
	for _, q := range stmts {
		switch backend {
		case "sqlite":
			db, err := sql.Open("sqlite", "file:"+dsn)
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.Exec(q)
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
		case "postgres":
			conn, err := pgx.Connect(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.Exec(context.Background(), q)
			conn.Close(context.Background())
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// checkStatsSize fetches /stats and checks that it is under 1 MiB, with
// the top services named and the rest under (other); it logs the time.
func checkStatsSize(t *testing.T, api string) {
	t.Helper()
	start := time.Now()
	resp, err := http.Get(api + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/stats: %d %v", resp.StatusCode, err)
	}
	t.Logf("/stats: %d bytes in %v", len(body), took)
	if len(body) > 1<<20 {
		t.Errorf("/stats is %d bytes, want under 1 MiB", len(body))
	}
	if !strings.Contains(string(body), `"(other)"`) {
		t.Errorf("/stats has no (other) bucket")
	}
}

// TestConcurrentLogsDoNotStarveIngest: 200 concurrent /logs?limit=1000
// during a paced stream: beyond the limit they get 503 with Retry-After,
// and the stream loses nothing.
func TestConcurrentLogsDoNotStarveIngest(t *testing.T) {
	gen := startGenerator(t)
	p := startProcessor(t, "--urls", gen.WSURL("rate=5000"))
	poll.Until(t, 20*time.Second, "the ring to fill", func() bool { return stats1(t, p).Stored > 10000 })
	var wg sync.WaitGroup
	codes := make(chan int, 200)
	for range 200 {
		wg.Go(func() {
			resp, err := http.Get(p.api + "/logs?limit=1000")
			if err != nil {
				codes <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				codes <- -1
				return
			}
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[200] == 0 || count[200]+count[503] != 200 {
		t.Errorf("answers %v, want 200s and 503s with Retry-After only", count)
	}
	if s := stats1(t, p); s.Dropped != 0 {
		t.Errorf("%d entries dropped while /logs was hammered", s.Dropped)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestSecretsRedactedEverywhere: credentials in a source URL appear in no
// log line, /stats, /readyz or stored row, on every backend.
func TestSecretsRedactedEverywhere(t *testing.T) {
	for name, flags := range backends(t) {
		t.Run(name, func(t *testing.T) {
			src := hostile.WS(t, sendFrames(func(i int) []byte {
				if i < 10 {
					return frame(`"m"`, `"svc"`, "")
				}
				return nil
			}))
			secretURL := strings.Replace(src.URL, "ws://", "ws://alice:pa55word@", 1) + "?token=tok-s3cret&sig=sig-s3cret"
			p := startProcessor(t, append([]string{"--urls", secretURL}, flags...)...)
			poll.Until(t, 20*time.Second, "entries stored", func() bool { return stats1(t, p).Stored == 10 })
			var shown []string
			for _, path := range []string{"/stats", "/readyz", "/logs"} {
				resp, err := http.Get(p.api + path)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				shown = append(shown, path+": "+string(b))
			}
			if err := p.stop(t); err != nil {
				t.Fatal(err)
			}
			shown = append(shown, "log: "+p.stderr.String())
			if name != "memory" {
				dsn := flags[3]
				shown = append(shown, "rows: "+strings.Join(dbStrings(t, name, dsn, "SELECT DISTINCT source FROM logs"), ","))
			}
			for _, s := range shown {
				for _, secret := range []string{"pa55word", "alice", "tok-s3cret", "sig-s3cret"} {
					if strings.Contains(s, secret) {
						where, _, _ := strings.Cut(s, ":")
						t.Errorf("%s shows %q", where, secret)
					}
				}
			}
		})
	}
}

package sqlite

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/storagetest"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t testing.TB, path string) *Store { return openWith(t, Config{Path: path}) }

// openWith opens cfg with a short flush interval.
func openWith(t testing.TB, cfg Config) *Store {
	t.Helper()
	cfg.Batch.FlushInterval = 5 * time.Millisecond
	s, err := Open(context.Background(), cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the suite without the search index and with it.
func TestConformance(t *testing.T) {
	for _, search := range []bool{false, true} {
		t.Run(fmt.Sprintf("search-index=%t", search), func(t *testing.T) {
			var path string
			storagetest.Run(t, storagetest.Options{
				Dedup: true,
				Open: func(t *testing.T) storage.Store {
					path = filepath.Join(t.TempDir(), "logs.db")
					return openWith(t, Config{Path: path, SearchIndex: search})
				},
				Reopen: func(t *testing.T) storage.Store { return openWith(t, Config{Path: path, SearchIndex: search}) },
				OpenRetention: func(t *testing.T, ret storage.Retention) storage.Store {
					return openWith(t, Config{Path: filepath.Join(t.TempDir(), "logs.db"), Retention: ret, SearchIndex: search})
				},
			})
		})
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs.db")
	s := open(t, path)
	if _, err := s.write.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Config{Path: path}, discard)
	if err == nil {
		t.Fatal("opened a database with a newer schema")
	}
}

func BenchmarkWriteBatch(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "logs.db"))
			defer s.Close(context.Background())
			batch := storagetest.Batch(size, time.Now().UnixMilli())
			w := writer{s.write}
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch { // time moves on: indexes on ts grow at their end
					batch[i].Timestamp += int64(size)
				}
				if _, err := w.WriteBatch(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestMigrateFromV1: a version 1 file (counts by service and level in one
// table) opens with its totals intact.
func TestMigrateFromV1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := openDB(path, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`CREATE TABLE logs (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, level TEXT NOT NULL, service TEXT NOT NULL,
			message TEXT NOT NULL, component TEXT NOT NULL DEFAULT '', trace_id TEXT NOT NULL DEFAULT '',
			span_id TEXT NOT NULL DEFAULT '', parent_id TEXT NOT NULL DEFAULT '', source TEXT NOT NULL DEFAULT '',
			received_at INTEGER NOT NULL)`,
		`CREATE TABLE log_counts (service TEXT NOT NULL, level TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (service, level)) WITHOUT ROWID`,
		`INSERT INTO log_counts VALUES ('a', 'INFO', 5), ('a', 'ERROR', 2), ('b', 'INFO', 1)`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s := open(t, path)
	defer s.Close(context.Background())
	c, err := s.Counts(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != 8 || c.ByService["a"] != 7 || c.ByService["b"] != 1 || c.ByLevel["INFO"] != 6 || c.ByLevel["ERROR"] != 2 {
		t.Errorf("counts after migration = %+v", c)
	}
}

// TestMigrateFromV5: a version 5 file (dead letters without a service,
// the (service, ts) index without level) opens with its dead letters,
// keeps services from then on, and has the index with level instead.
func TestMigrateFromV5(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v5.db")
	ctx := context.Background()
	s := open(t, path)
	if err := s.SetAside(ctx, []storage.Rejected{{Record: "{", Reason: "invalid_json", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	alter(t, path, `ALTER TABLE rejected DROP COLUMN service`, `DROP INDEX logs_service_ts_level`,
		`CREATE INDEX logs_service_ts ON logs (service, ts)`, `PRAGMA user_version = 5`)
	s = open(t, path)
	defer s.Close(ctx)
	if err := s.SetAside(ctx, []storage.Rejected{{Record: "}", Reason: "invalid_json", Service: "checkout", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	rs, err := s.ListRejected(ctx, storage.RejectedFilter{})
	if err != nil || len(rs) != 2 || rs[0].Service != "checkout" || rs[1].Record != "{" || rs[1].Service != "" {
		t.Errorf("dead letters after migration = %+v, %v", rs, err)
	}
	var idx string
	if err := s.read.QueryRowContext(ctx, `SELECT group_concat(name) FROM sqlite_master WHERE type = 'index' AND name LIKE 'logs_service%'`).Scan(&idx); err != nil || idx != "logs_service_ts_level" {
		t.Errorf("service indexes after migration: %q, %v; want logs_service_ts_level alone", idx, err)
	}
}

// TestAwkwardPaths: '#', '?' and '%' in a path name that file; a missing
// directory is named in the error.
func TestAwkwardPaths(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a#b.db", "a?b.db", "100%.db", "with space.db"} {
		path := filepath.Join(dir, name)
		s := open(t, path)
		if err := s.Save(context.Background(), storagetest.Batch(3, time.Now().UnixMilli())); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			t.Errorf("%s: no database file at %s: %v", name, path, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n := e.Name(); n == "a" || n == "100" {
			t.Errorf("stray file %q: the path was cut", n)
		}
	}
	missing := filepath.Join(dir, "no", "such", "dir", "logs.db")
	_, err := Open(context.Background(), Config{Path: missing}, discard)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "no", "such", "dir")) {
		t.Errorf("Open in a missing directory = %v, want an error naming it", err)
	}
}

// TestSearchIndex: the trigram index stays in step with the logs table
// through saves and retention's deletes (FTS5's integrity check compares
// it with the messages), a search uses it, turning it off drops it, and
// turning it on builds it from the messages there.
func TestSearchIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "search.db")
	s := openWith(t, Config{Path: path, SearchIndex: true})
	batch := storagetest.Batch(2000, time.Now().Add(-time.Hour).UnixMilli())
	batch[1500].Message = "a rare-term here"
	if err := s.Save(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.deleteBefore("logs", "ts")(ctx, batch[1000].Timestamp, 10_000); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		if _, err := s.write.ExecContext(ctx, `INSERT INTO logs_fts (logs_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
			t.Errorf("the search index is out of step with the logs: %v", err)
		}
		rs, err := s.Query(ctx, storage.Filter{Contains: "rare-term"})
		if err != nil || len(rs) != 1 || rs[0].Message != "a rare-term here" {
			t.Errorf("search = %v, %v", rs, err)
		}
	}
	check(s)
	q, args := s.dialect.SelectSQL(storage.Columns, storage.Filter{Service: "svc1", Contains: "rare-term"})
	plan := strings.Join(queryPlan(t, s, q, args), "\n") + "\n"
	t.Logf("plan:\n%s", plan)
	if !strings.Contains(plan, "VIRTUAL TABLE INDEX") || strings.Contains(plan, "SCAN logs\n") {
		t.Errorf("the plan of a search does not use the index, or reads the whole table:\n%s", plan)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Off: dropped, and the search still finds the line (reading).
	s = open(t, path)
	var n int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name LIKE 'logs_fts%'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("with the index off, %d of its tables and triggers are left (%v)", n, err)
	}
	if rs, err := s.Query(ctx, storage.Filter{Contains: "rare-term"}); err != nil || len(rs) != 1 {
		t.Errorf("search without the index = %v, %v", rs, err)
	}
	if err := s.Save(ctx, []models.LogEntry{{Timestamp: time.Now().UnixMilli(), Level: "INFO", Service: "svc1", Message: "another rare-term", ReceivedAt: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// On again: built from every message, the one saved while off too.
	s = openWith(t, Config{Path: path, SearchIndex: true})
	defer s.Close(ctx)
	if _, err := s.write.ExecContext(ctx, `INSERT INTO logs_fts (logs_fts, rank) VALUES ('integrity-check', 1)`); err != nil {
		t.Errorf("the rebuilt index is out of step: %v", err)
	}
	if rs, err := s.Query(ctx, storage.Filter{Contains: "rare-term"}); err != nil || len(rs) != 2 {
		t.Errorf("search with the rebuilt index = %v, %v; want both lines", rs, err)
	}
}

// TestSearchProbe: with the search index, a substring search reads a rare
// term's rows through the index alone, and a common term's newest (or
// oldest) rows first, then asks the index for the rest; the entries it
// finds, in order, are those a plain scan finds, across the probe's
// boundary and ties of timestamps there.
func TestSearchProbe(t *testing.T) {
	ctx := context.Background()
	s := openWith(t, Config{Path: filepath.Join(t.TempDir(), "probe.db"), SearchIndex: true})
	defer s.Close(ctx)
	base := time.Now().Add(-time.Hour).UnixMilli()
	batch := make([]models.LogEntry, 3*searchProbe)
	for i := range batch {
		batch[i] = models.LogEntry{Timestamp: base + int64(i/3), Level: "INFO", Service: fmt.Sprintf("svc%d", i%2),
			Message: fmt.Sprintf("line %d", i), ReceivedAt: 1}
		switch {
		case i == 100 || i == len(batch)-2*searchProbe+1 || i == len(batch)-2*searchProbe-1:
			batch[i].Message += " rare-term"
		case i%7 == 0:
			batch[i].Message += " common-term"
		}
	}
	if err := s.Save(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []storage.Filter{
		{Contains: "rare-term"}, {Contains: "rare-term", Oldest: true}, {Contains: "common-term"},
		{Contains: "common-term", Service: "svc1", Oldest: true}, {Contains: "rare-term", Service: "svc1"},
		{Contains: "line 1", Since: base + 10, Until: base + 4000},
	} {
		var want []string
		for i := range batch {
			if f.Match(&batch[i]) {
				want = append(want, batch[i].Message)
			}
		}
		if !f.Oldest {
			slices.Reverse(want)
		}
		var got []string
		if err := s.Scan(ctx, f, func(r *storage.Record) bool { got = append(got, r.Message); return true }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Scan(%+v): %d entries, want %d; first %q, want %q", f, len(got), len(want), first(got), first(want))
		}
		stop := 0
		if err := s.Scan(ctx, f, func(*storage.Record) bool { stop++; return stop < 2 }); err != nil || stop != min(2, len(want)) {
			t.Errorf("Scan(%+v) stopped after %d, want %d (%v)", f, stop, min(2, len(want)), err)
		}
		if rs, err := s.Query(ctx, storage.Filter{Contains: f.Contains, Service: f.Service, Since: f.Since, Until: f.Until, Limit: 3}); err != nil || len(rs) != min(3, len(want)) {
			t.Errorf("Query: %d, %v", len(rs), err)
		}
	}
}

// TestRarePlan: a rare term's rows are read by id as the search index lists
// them, never by stepping through an index of the logs table (a service's
// day of rows) or the table itself, whatever the other conditions.
func TestRarePlan(t *testing.T) {
	ctx := context.Background()
	s := openWith(t, Config{Path: filepath.Join(t.TempDir(), "plan.db"), SearchIndex: true})
	defer s.Close(ctx)
	for _, f := range []storage.Filter{
		{Contains: "rare-term"},
		{Contains: "rare-term", Service: "svc7"},
		{Contains: "rare-term", Service: "svc7", Level: "ERROR", Since: 1, Until: 2},
		{Contains: "rare-term", Service: "svc7", Oldest: true},
	} {
		q, args := rareSQL(f)
		joined := strings.Join(queryPlan(t, s, q, args), "; ")
		if !strings.Contains(joined, "logs USING INTEGER PRIMARY KEY") || strings.Contains(joined, "USING INDEX logs_") ||
			strings.Contains(joined, "SCAN logs ") || strings.HasSuffix(joined, "SCAN logs") {
			t.Errorf("%+v: plan %q, want the rows by id from logs_fts", f, joined)
		}
	}
}

// queryPlan returns the detail lines of EXPLAIN QUERY PLAN for q.
func queryPlan(t *testing.T, s *Store, q string, args []any) []string {
	t.Helper()
	rows, err := s.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

// TestMigrateFromV7: a version 7 file (no minute_counts) gets the counts
// of the entries it holds, by minute, and keeps them from then on.
func TestMigrateFromV7(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v7.db")
	storagetest.MinuteMigration(t, func(t *testing.T) storage.Store { return open(t, path) },
		func(t *testing.T) { alter(t, path, `DROP TABLE minute_counts`, `PRAGMA user_version = 7`) })
}

// alter runs stmts on the file at path, as an older release would have
// left it.
func alter(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := openDB(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMinutePlan: counts on whole minutes, of a service or of all, read
// minute_counts alone, never the logs table.
func TestMinutePlan(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "plan.db"))
	defer s.Close(ctx)
	for _, f := range []storage.Filter{
		{Since: storage.Minute + 1, Until: 1441 * storage.Minute},
		{Since: storage.Minute + 1, Until: 1441 * storage.Minute, Service: "svc7"},
		{Since: storage.Minute + 1, Service: "svc7", Level: "ERROR"},
	} {
		bq := storage.BucketQuery{Origin: storage.Minute, Step: 5 * storage.Minute, Bytes: true}
		q, args := dialect.MinuteBucketsSQL(f, bq)
		joined := strings.Join(queryPlan(t, s, q, args), "; ")
		if !strings.Contains(joined, "minute_counts") || strings.Contains(joined, "logs") {
			t.Errorf("%+v: plan %q, want minute_counts alone", f, joined)
		}
	}
}

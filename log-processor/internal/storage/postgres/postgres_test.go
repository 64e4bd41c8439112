package postgres

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres/pgtest"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/storagetest"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func open(t testing.TB, dsn, instance string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{DSN: dsn, Instance: instance,
		Batch: storage.BatchConfig{FlushInterval: 5 * time.Millisecond}}, discard)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	var dsn string
	storagetest.Run(t, storagetest.Options{
		Dedup: true,
		Open: func(t *testing.T) storage.Store {
			dsn = pgtest.DSN(t)
			return open(t, dsn, "test-instance")
		},
		Reopen:   func(t *testing.T) storage.Store { return open(t, dsn, "test-instance") },
		Instance: "test-instance",
		// PostgreSQL's text cannot hold NUL (SQLSTATE 22021).
		Poison: func(i int) models.LogEntry {
			return models.LogEntry{Timestamp: time.Now().UnixMilli(), Level: "INFO", Service: "svc0",
				Message: fmt.Sprintf("poison %d: \x00 inside", i), ReceivedAt: 1}
		},
		OpenRetention: func(t *testing.T, ret storage.Retention) storage.Store {
			s, err := Open(context.Background(), Config{DSN: pgtest.DSN(t), Instance: "ret",
				Batch: storage.BatchConfig{FlushInterval: 5 * time.Millisecond}, Retention: ret}, discard)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	})
}

// TestSharedDatabase: two stores (two processors) writing to one database
// see each other's rows and totals.
func TestSharedDatabase(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := open(t, dsn, "proc-a"), open(t, dsn, "proc-b")
	defer a.Close(context.Background())
	defer b.Close(context.Background())
	now := time.Now().UnixMilli()
	for i := range 50 {
		s, svc := a, "alpha"
		if i%2 == 1 {
			s, svc = b, "beta"
		}
		if err := s.Save(context.Background(), []models.LogEntry{{Timestamp: now + int64(i), Level: "INFO", Service: svc, Message: "m"}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.Status().Stored+b.Status().Stored < 50 {
		if time.Now().After(deadline) {
			t.Fatal("not stored")
		}
		time.Sleep(5 * time.Millisecond)
	}
	rs, err := a.Query(context.Background(), storage.Filter{Service: "beta"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 25 || rs[0].Instance != "proc-b" {
		t.Errorf("a sees %d beta rows (first from %q), want 25 from proc-b", len(rs), rs[0].Instance)
	}
	c, err := b.Counts(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != 50 || c.ByService["alpha"] != 25 {
		t.Errorf("b's counts = %+v, want both instances' 50", c)
	}
}

func BenchmarkWriteBatch(b *testing.B) {
	for _, size := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := open(b, pgtest.DSN(b), "bench")
			defer s.Close(context.Background())
			batch := storagetest.Batch(size, time.Now().UnixMilli())
			w := writer{pool: s.pool, instance: "bench"}
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

// TestQueryPlans: the queries of /logs and of the Loki API read through
// an index, never a sequential scan of the logs table, on a table large
// enough (and vacuumed) for the planner to choose: a service's newest,
// a time range's newest, a substring (the trigram index), a service's
// substring, and a service's counts by step over a day.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DSN: pgtest.DSN(t), Instance: "plans", SearchIndex: true}, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	now := time.Now()
	batch := make([]models.LogEntry, 0, 1000)
	for i := range 150_000 {
		batch = append(batch, models.LogEntry{Timestamp: now.Add(-time.Duration(i) * 576 * time.Millisecond).UnixMilli(), Level: models.Levels[i%3],
			Service: fmt.Sprintf("svc%d", i%50), Message: fmt.Sprintf("request %d served in %dms by worker %d", i, i%977, i%13), ReceivedAt: 1})
		if i == 31_337 {
			batch[len(batch)-1].Message = "a rare-term in one line"
		}
		if len(batch) == cap(batch) {
			if err := s.Save(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// As autovacuum would: statistics, and the search index's pending
	// list merged (a large one makes the planner cost the index high).
	for _, table := range []string{"logs", "minute_counts"} {
		if _, err := s.pool.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			t.Fatal(err)
		}
	}
	day := now.Add(-24 * time.Hour).UnixMilli()
	bq, bargs := dialect.BucketsSQL(storage.Filter{Service: "svc7", Since: day + 1, Until: now.UnixMilli()}, storage.BucketQuery{Origin: day, Step: 5 * 60_000})
	minute := storage.MinuteOf(day)
	mq, margs := dialect.MinuteBucketsSQL(storage.Filter{Service: "svc7", Since: minute + 1, Until: minute + 1440*storage.Minute}, storage.BucketQuery{Origin: minute, Step: 5 * 60_000})
	for _, tc := range []struct {
		name  string
		f     storage.Filter
		q     string
		args  []any
		index string
	}{
		{name: "a service's counts by whole minutes", q: mq, args: margs, index: "minute_counts"}, // not the logs
		{name: "a service's newest", f: storage.Filter{Service: "svc7"}, index: "logs_service_ts"},
		{name: "a time range's newest", f: storage.Filter{Since: now.Add(-time.Hour).UnixMilli(), Until: now.UnixMilli()}, index: "logs_ts"},
		{name: "a substring", f: storage.Filter{Contains: "rare-term"}, index: "logs_message_trgm"},
		{name: "a service's substring", f: storage.Filter{Service: "svc37", Contains: "rare-term"}, index: "logs_"},
		{name: "a service's counts by step", q: bq, args: bargs, index: "logs_service_ts"},
	} {
		q, args := tc.q, tc.args
		if q == "" {
			q, args = dialect.SelectSQL(columns, tc.f)
		}
		rows, err := s.pool.Query(ctx, "EXPLAIN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		rows.Close()
		if p := plan.String(); !strings.Contains(p, "using "+tc.index) && !strings.Contains(p, "on "+tc.index) || strings.Contains(p, "Seq Scan on logs") {
			t.Errorf("%s: want %s and no sequential scan:\n%s", tc.name, tc.index, p)
		}
	}
	if rs, err := s.Query(ctx, storage.Filter{Service: "svc37", Contains: "rare-term"}); err != nil || len(rs) != 1 {
		t.Errorf("the rare term: %v, %v", rs, err)
	}
}

// TestSearchIndexLeftAlone: a processor without --search-index leaves the
// index another made, and says so, with how to drop it.
func TestSearchIndexLeftAlone(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s, err := Open(ctx, Config{DSN: dsn, Instance: "a", SearchIndex: true}, discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	s, err = Open(ctx, Config{DSN: dsn, Instance: "b"}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	var there bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('logs_message_trgm') IS NOT NULL`).Scan(&there); err != nil || !there {
		t.Errorf("the index is gone (%v): another processor may use it", err)
	}
	if !strings.Contains(logs.String(), "DROP INDEX logs_message_trgm") {
		t.Errorf("no word of the index left there: %q", logs.String())
	}
}

// TestMigrateFromV7: a version 7 schema (no minute_counts) gets the counts
// of the entries it holds, by minute, and keeps them from then on.
func TestMigrateFromV7(t *testing.T) {
	dsn := pgtest.DSN(t)
	storagetest.MinuteMigration(t, func(t *testing.T) storage.Store { return open(t, dsn, "v8") }, func(t *testing.T) {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		for _, stmt := range []string{`DROP TABLE minute_counts`, `DELETE FROM log_schema`, `INSERT INTO log_schema (version) VALUES (7)`} {
			if _, err := conn.Exec(context.Background(), stmt); err != nil {
				t.Fatal(err)
			}
		}
	})
}

package postgres

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

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

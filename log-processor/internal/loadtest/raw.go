package loadtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/sqlite"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// rawBatch is the batch size of the raw insert measurement, the
// processor's default --batch-size.
const rawBatch = storage.DefaultBatchSize

// rawSuffix keeps the raw measurement's table apart from the processor's:
// a separate SQLite file, the same PostgreSQL database.
func rawSuffix(backend string) string {
	if backend == "sqlite" {
		return ".raw"
	}
	return ""
}

// RawInsert measures the backend alone: one goroutine saving batches of
// rawBatch generator-shaped entries as fast as the store commits them, for
// d. It returns rows committed per second.
func RawInsert(ctx context.Context, backend, dsn string, d time.Duration) (float64, error) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var st storage.Store
	var err error
	switch backend {
	case "sqlite":
		st, err = sqlite.Open(ctx, sqlite.Config{Path: dsn}, logger)
	case "postgres":
		st, err = postgres.Open(ctx, postgres.Config{DSN: dsn, Instance: "loadtest-raw"}, logger)
	default:
		return 0, fmt.Errorf("unknown backend %q", backend)
	}
	if err != nil {
		return 0, err
	}
	defer st.Close(context.Background())
	now := time.Now().UnixMilli()
	batch := make([]models.LogEntry, rawBatch)
	for i := range batch {
		batch[i] = models.LogEntry{
			Timestamp: now + int64(i), Level: models.Levels[i%3], Service: fmt.Sprintf("service-%d", i%5),
			Message: "request completed successfully", Component: "http",
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", ParentID: "a3ce929d0e0e4736",
			Source: "ws://127.0.0.1:8080/ws/logs", ReceivedAt: now,
		}
	}
	// Warm up with one batch, then count what is committed within d.
	if err := st.Save(ctx, batch); err != nil {
		return 0, err
	}
	for st.Status().Stored < rawBatch {
		if err := sleep(ctx, time.Millisecond); err != nil {
			return 0, err
		}
	}
	start, s0 := time.Now(), st.Status().Stored
	for time.Since(start) < d {
		// Time moves on, as it does for real entries: the indexes on ts
		// grow at their end.
		for i := range batch {
			batch[i].Timestamp += rawBatch
		}
		if err := st.Save(ctx, batch); err != nil {
			return 0, err
		}
	}
	elapsed := time.Since(start)
	return float64(st.Status().Stored-s0) / elapsed.Seconds(), nil
}

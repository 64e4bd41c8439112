package storage

import (
	"context"
	"log/slog"
	"time"
)

// Retention deletes entries older than Keep in the background, a small
// batch at a time so that ingest is never stalled for long.
type Retention struct {
	Keep      time.Duration // entries older than now-Keep are deleted, by whole minutes (up to a minute more is kept); 0 = keep everything
	Every     time.Duration // time between sweeps; 0 = Keep/10, within 1 s to 1 min
	BatchSize int           // rows per delete statement
	// Delete removes up to limit entries with Timestamp < cutoff (Unix ms)
	// and returns how many it removed; the cutoff falls just after a whole
	// minute (RetentionCutoff).
	Delete func(ctx context.Context, cutoff int64, limit int) (int64, error)
	Log    *slog.Logger
}

// DeleteBeforeSQL is a retention batch's statement for the SQL backends:
// rows of table whose column is before the first parameter, the oldest
// first, at most the second (placeholders cutoff and limit).
func DeleteBeforeSQL(table, column, cutoff, limit string) string {
	return "DELETE FROM " + table + " WHERE id IN (SELECT id FROM " + table + " WHERE " + column + " < " + cutoff +
		" ORDER BY " + column + " LIMIT " + limit + ")"
}

// retentionPause separates delete batches, leaving the database to ingest.
const retentionPause = 20 * time.Millisecond

// Run deletes old entries every Every until ctx ends. It returns at once if
// Keep is zero.
func (r Retention) Run(ctx context.Context) {
	if r.Keep <= 0 {
		return
	}
	if r.BatchSize <= 0 {
		r.BatchSize = 1000
	}
	if r.Every <= 0 {
		r.Every = min(max(r.Keep/10, time.Second), time.Minute)
	}
	t := time.NewTicker(r.Every)
	defer t.Stop()
	for {
		r.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sweep deletes batches until none is full.
func (r Retention) sweep(ctx context.Context) {
	cutoff := RetentionCutoff(time.Now().UnixMilli(), r.Keep.Milliseconds())
	var total int64
	for ctx.Err() == nil {
		n, err := r.Delete(ctx, cutoff, r.BatchSize)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				r.Log.Warn("retention: delete failed", "err", err)
			}
			return
		}
		if n < int64(r.BatchSize) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(retentionPause):
		}
	}
	if total > 0 {
		r.Log.Info("retention: deleted old entries", "entries", total, "older_than", time.UnixMilli(cutoff).UTC())
	}
}

package storage

import (
	"cmp"
	"context"
	"slices"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// The SQL backends keep the entries' counts and bytes by minute, service
// and level (the minute_counts table), written in the transaction that
// stores the entries, so that a log-volume query over a day reads
// thousands of rows rather than millions. A row of minute m counts the
// timestamps in (m-Minute, m], as a Bucket does: MinuteOf(ts) is the end
// of the minute holding ts. Retention deletes entries on whole minutes
// (RetentionCutoff) and the rows of those minutes with them.

// Minute is the width of a minute_counts row, in milliseconds.
const Minute int64 = 60_000

// MinuteOf is the end of the minute holding ts (Unix ms): the smallest
// multiple of Minute not before it.
func MinuteOf(ts int64) int64 {
	m := ts / Minute * Minute // towards zero
	if m < ts {
		m += Minute
	}
	return m
}

// MinuteCount is one minute_counts row's key and the totals a batch adds
// to it.
type MinuteCount struct {
	Minute         int64
	Service, Level string
	N, Bytes       int64
}

// CountByMinute totals batch by minute, service and level, sorted by that
// key, so that writers sharing the table lock its rows in one order.
func CountByMinute(batch []models.LogEntry) []MinuteCount {
	type key struct {
		minute         int64
		service, level string
	}
	at := make(map[key]int, 64) // index in out
	out := make([]MinuteCount, 0, 64)
	for i := range batch {
		e := &batch[i]
		k := key{MinuteOf(e.Timestamp), e.Service, e.Level}
		j, ok := at[k]
		if !ok {
			j = len(out)
			at[k] = j
			out = append(out, MinuteCount{Minute: k.minute, Service: e.Service, Level: e.Level})
		}
		out[j].N++
		out[j].Bytes += int64(len(e.Message))
	}
	slices.SortFunc(out, func(a, b MinuteCount) int {
		return cmp.Or(cmp.Compare(a.Minute, b.Minute), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Level, b.Level))
	})
	return out
}

// ByMinute reports whether Buckets can read f and bq from minute_counts:
// the conditions are on service and level alone, the streams are not
// told apart by source or component, and every bucket, and the range,
// begins and ends on a whole minute.
func ByMinute(f Filter, bq BucketQuery) bool {
	onMinute := func(t int64) bool { return t%Minute == 0 }
	return f.Contains == "" && len(f.Attrs) == 0 && !bq.Source && !bq.Component &&
		bq.Step > 0 && onMinute(bq.Step) && onMinute(bq.Origin) &&
		(f.Since == 0 || onMinute(f.Since-1)) && (f.Until == 0 || onMinute(f.Until))
}

// MinuteBucketsSQL is BucketsSQL read from minute_counts; ByMinute(f, bq)
// must hold. A minute m lies wholly in the bucket and the range that hold
// m, which lie on whole minutes: it is in [f.Since, f.Until] exactly when
// its timestamps are.
func (d Dialect) MinuteBucketsSQL(f Filter, bq BucketQuery) (string, []any) {
	return d.bucketsSQL(minuteTable, f, bq)
}

// MinuteBackfillSQL fills minute_counts from the entries stored before
// it existed (a schema migration, or rows loaded by hand).
func (d Dialect) MinuteBackfillSQL() string {
	return "INSERT INTO minute_counts (minute, service, level, n, bytes) SELECT (ts + 59999) / 60000 * 60000 AS m, service, level, count(*), sum(" +
		d.Bytes + ") FROM logs GROUP BY m, service, level" // ts > 0: integer division truncates towards zero
}

// MinuteCountsDeleteSQL deletes the rows of the minutes before the
// cutoff (the placeholder), which RetentionCutoff puts just after a whole
// minute: the minutes whose entries retention has deleted.
func MinuteCountsDeleteSQL(cutoff string) string {
	return "DELETE FROM minute_counts WHERE minute < " + cutoff
}

// RetentionCutoff is the cutoff of a retention keeping keep from now
// (Unix ms): just after the last whole minute before now-keep, so that
// what it deletes is whole minutes.
func RetentionCutoff(now, keep int64) int64 {
	return MinuteOf(now-keep-Minute+1) + 1
}

// WithMinutes returns the entries' retention Delete del, which also
// deletes, with minutes, the minute_counts rows before the cutoff when a
// batch comes short: the sweep has deleted every entry before it.
func WithMinutes(del func(ctx context.Context, cutoff int64, limit int) (int64, error),
	minutes func(ctx context.Context, cutoff int64) error) func(ctx context.Context, cutoff int64, limit int) (int64, error) {
	return func(ctx context.Context, cutoff int64, limit int) (int64, error) {
		n, err := del(ctx, cutoff, limit)
		if err == nil && n < int64(limit) {
			err = minutes(ctx, cutoff)
		}
		return n, err
	}
}

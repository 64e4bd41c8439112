package storage

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

func TestMinuteOf(t *testing.T) {
	for _, tc := range []struct{ ts, want int64 }{
		{1, Minute},
		{Minute - 1, Minute},
		{Minute, Minute}, // a minute's last millisecond is its end
		{Minute + 1, 2 * Minute},
		{1_793_534_400_000, 1_793_534_400_000},
		{1_793_534_400_001, 1_793_534_460_000},
	} {
		if got := MinuteOf(tc.ts); got != tc.want {
			t.Errorf("MinuteOf(%d) = %d, want %d", tc.ts, got, tc.want)
		}
	}
}

// TestRetentionCutoff: the cutoff falls just after the last whole minute
// at or before now-keep, so that what is deleted (ts < cutoff) is the
// minutes ending before it, and nothing kept is older than keep plus a
// minute.
func TestRetentionCutoff(t *testing.T) {
	const keep = 3_600_000
	for _, tc := range []struct{ now, want int64 }{
		{10*Minute + keep, 10*Minute + 1},
		{10*Minute + keep + 1, 10*Minute + 1},
		{11*Minute + keep - 1, 10*Minute + 1},
		{11*Minute + keep, 11*Minute + 1},
	} {
		got := RetentionCutoff(tc.now, keep)
		if got != tc.want {
			t.Errorf("RetentionCutoff(%d, %d) = %d, want %d", tc.now, keep, got, tc.want)
		}
		// Whole minutes: the minute holding cutoff-1 ends at cutoff-1.
		if MinuteOf(got-1) != got-1 {
			t.Errorf("RetentionCutoff(%d): %d does not follow a whole minute", tc.now, got)
		}
	}
}

func TestCountByMinute(t *testing.T) {
	e := func(ts int64, service, level, msg string) models.LogEntry {
		return models.LogEntry{Timestamp: ts, Service: service, Level: level, Message: msg}
	}
	got := CountByMinute([]models.LogEntry{
		e(2*Minute+1, "b", "INFO", "xyz"),
		e(Minute, "b", "INFO", "ab"), // the first minute's last millisecond
		e(Minute+1, "b", "INFO", "abcd"),
		e(2*Minute, "a", "WARN", "é"),
		e(1, "b", "INFO", "c"),
		e(2*Minute, "b", "INFO", "d"),
	})
	want := []MinuteCount{
		{Minute, "b", "INFO", 2, 3},
		{2 * Minute, "a", "WARN", 1, 2},
		{2 * Minute, "b", "INFO", 2, 5},
		{3 * Minute, "b", "INFO", 1, 3},
	}
	if !slices.Equal(got, want) {
		t.Errorf("CountByMinute = %+v\nwant %+v", got, want)
	}
}

func TestByMinute(t *testing.T) {
	on := BucketQuery{Origin: 10 * Minute, Step: 5 * Minute}
	for _, tc := range []struct {
		name string
		f    Filter
		bq   BucketQuery
		want bool
	}{
		{"whole minutes", Filter{Since: 10*Minute + 1, Until: 20 * Minute, Service: "a", Level: "INFO"}, on, true},
		{"no bounds", Filter{}, on, true},
		{"a substring", Filter{Since: 10*Minute + 1, Contains: "x"}, on, false},
		{"an attribute", Filter{Since: 10*Minute + 1, Attrs: []AttrFilter{{"k", "v"}}}, on, false},
		{"by source", Filter{Since: 10*Minute + 1}, BucketQuery{Origin: 10 * Minute, Step: Minute, Source: true}, false},
		{"by component", Filter{Since: 10*Minute + 1}, BucketQuery{Origin: 10 * Minute, Step: Minute, Component: true}, false},
		{"a step of seconds", Filter{Since: 10*Minute + 1}, BucketQuery{Origin: 10 * Minute, Step: 30_000}, false},
		{"an origin within a minute", Filter{Since: 10*Minute + 2}, BucketQuery{Origin: 10*Minute + 1, Step: Minute}, false},
		{"a start within a minute", Filter{Since: 10 * Minute}, on, false},
		{"an end within a minute", Filter{Since: 10*Minute + 1, Until: 20*Minute - 1}, on, false},
	} {
		if got := ByMinute(tc.f, tc.bq); got != tc.want {
			t.Errorf("%s: ByMinute(%+v, %+v) = %t, want %t", tc.name, tc.f, tc.bq, got, tc.want)
		}
	}
}

// TestWithMinutes: the minutes' rows go once a sweep has deleted every
// entry before the cutoff (a short batch), not before, and not after a
// failed delete.
func TestWithMinutes(t *testing.T) {
	var calls []int64
	left := int64(250)
	fail := false
	del := WithMinutes(func(ctx context.Context, cutoff int64, limit int) (int64, error) {
		if fail {
			return 0, errors.New("disk on fire")
		}
		n := min(left, int64(limit))
		left -= n
		return n, nil
	}, func(ctx context.Context, cutoff int64) error {
		calls = append(calls, cutoff)
		return nil
	})
	ctx := context.Background()
	for _, want := range []int64{100, 100, 50} {
		if n, err := del(ctx, 7, 100); n != want || err != nil {
			t.Fatalf("delete = %d, %v; want %d", n, err, want)
		}
		if want == 100 && len(calls) != 0 {
			t.Fatalf("minutes deleted after a full batch: %v", calls)
		}
	}
	if !slices.Equal(calls, []int64{7}) {
		t.Errorf("minutes deleted %v, want once before 7", calls)
	}
	fail = true
	if _, err := del(ctx, 8, 100); err == nil || len(calls) != 1 {
		t.Errorf("a failed delete: %v, minutes deleted %v", err, calls)
	}
}

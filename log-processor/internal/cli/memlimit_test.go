package cli

import (
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

// TestMemoryLimit: the soft memory limit is the sum of the bounds the
// configuration sets, and headroom; the in-flight budget counts only with
// push paths, the memory store only as the storage.
func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{[]string{"-u", "ws://h/ws/logs"}, (32 + 16 + 2*8 + 64 + 32) * mib},
		{[]string{"-u", "ws://h/ws/logs", "--ingest-addr", "127.0.0.1:0"}, (32 + 16 + 2*8 + 64 + 32 + 64) * mib},
		{[]string{"--ingest-addr", "127.0.0.1:0", "--storage", "sqlite", "--dsn", "x.db", "--queue-max-bytes", "8MiB", "--ingest-max-inflight-bytes", "16MiB"},
			(8 + 16 + 2*8 + 64 + 16) * mib},
	} {
		cfg, err := parse(tc.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := memoryLimit(&cfg); got != tc.want {
			t.Errorf("%v: %d MiB, want %d MiB", tc.args, got/mib, tc.want/mib)
		}
	}
}

// TestApplyMemoryLimit: the binary's entry point sets the collector's
// target to gcPercent and the soft memory limit to memoryLimit, unless
// GOGC and GOMEMLIMIT say otherwise.
func TestApplyMemoryLimit(t *testing.T) {
	cfg, err := parse([]string{"-u", "ws://h/ws/logs"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	restore := func() { debug.SetGCPercent(100); debug.SetMemoryLimit(math.MaxInt64) }
	defer restore()
	for _, tc := range []struct {
		gogc, gomemlimit string
		wantPercent      int
		wantLimit        int64
	}{
		{"", "", gcPercent, memoryLimit(&cfg)},
		{"50", "", 100, memoryLimit(&cfg)},
		{"", "off", gcPercent, math.MaxInt64},
	} {
		restore()
		t.Setenv("GOGC", tc.gogc)
		if tc.gomemlimit != "" {
			t.Setenv("GOMEMLIMIT", tc.gomemlimit)
		}
		applyMemoryLimit(&cfg, logger)
		if got := debug.SetGCPercent(100); got != tc.wantPercent {
			t.Errorf("GOGC=%q: collector's target %d, want %d", tc.gogc, got, tc.wantPercent)
		}
		if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
			t.Errorf("GOMEMLIMIT=%q: limit %d, want %d", tc.gomemlimit, got, tc.wantLimit)
		}
	}
}

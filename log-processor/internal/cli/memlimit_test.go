package cli

import (
	"io"
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

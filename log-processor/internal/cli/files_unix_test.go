//go:build unix

package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOperatorFilesBounded (issue 20): a config or token file that is not a
// regular file, or is too large, is a clear error at once; a FIFO never
// blocks the start.
func TestOperatorFilesBounded(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", 2<<20)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bigToken := filepath.Join(dir, "big.token")
	if err := os.WriteFile(bigToken, []byte(strings.Repeat("t", 10<<10)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"config is /dev/zero", []string{"--config", "/dev/zero"}, "not a regular file"},
		{"config is a FIFO", []string{"--config", fifo}, "not a regular file"},
		{"config is a directory", []string{"--config", dir}, "not a regular file"},
		{"config too large", []string{"--config", big}, "larger than"},
		{"token is a FIFO", []string{"--ingest-addr", "127.0.0.1:0", "--ingest-token-file", "a=" + fifo}, "not a regular file"},
		{"token too large", []string{"--ingest-addr", "127.0.0.1:0", "--ingest-token-file", "a=" + bigToken}, "larger than"},
		{"API token is /dev/zero", []string{"-u", "ws://a/ws", "--api-token-file", "/dev/zero"}, "not a regular file"},
		{"NATS creds are a directory", []string{"-u", "ws://a/ws", "--bus", "jetstream", "--nats-creds", dir}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := parse(tc.args, io.Discard); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("parse = %v, want an error saying %q", err, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("parse blocked")
			}
		})
	}
}

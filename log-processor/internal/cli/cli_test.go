package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
)

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no sources"},
		{[]string{"--urls", ""}, "no sources"},
		{[]string{"--urls", "http://localhost:8080/ws/logs"}, `"http://localhost:8080/ws/logs" is not a ws:// or wss:// URL`},
		{[]string{"--urls", "localhost:8080"}, "is not a ws:// or wss:// URL"},
		{[]string{"--urls", "ws://"}, `"ws://" is not a ws:// or wss:// URL`},
		{[]string{"-u", "ws://a/ws,ws://a/ws"}, "listed twice"},
		{[]string{"-u", "x=ws://a/ws,ws://a/ws"}, "listed twice"},
		{[]string{"-u", "ws://a/ws", "--workers", "0"}, "--workers must be greater than zero"},
		{[]string{"-u", "ws://a/ws", "--workers", "many"}, `invalid argument "many" for "--workers"`},
		{[]string{"-u", "ws://a/ws", "--queue-size", "-1"}, "--queue-size must be greater than zero"},
		{[]string{"-u", "ws://a/ws", "--submit-timeout", "10"}, `invalid argument "10" for "--submit-timeout"`},
		{[]string{"-u", "ws://a/ws", "--submit-timeout", "0s"}, "--submit-timeout must be greater than zero"},
		{[]string{"-u", "ws://a/ws", "--ping-interval", "30s", "--pong-wait", "10s"}, "--pong-wait (10s) must be longer than --ping-interval (30s)"},
		{[]string{"-u", "ws://a/ws", "--idle-timeout", "-1s"}, "--idle-timeout must not be negative"},
		{[]string{"-u", "ws://a/ws", "--log-level", "loud"}, `invalid --log-level "loud"`},
		{[]string{"-u", "ws://a/ws", "--log-format", "xml"}, `invalid --log-format "xml"`},
		{[]string{"-u", "ws://a/ws", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"-u", "ws://a/ws", "--storage", "mysql"}, `--storage "mysql": want memory, sqlite or postgres`},
		{[]string{"-u", "ws://a/ws", "--storage", "sqlite"}, "--storage sqlite needs --dsn (a file path such as logs.db)"},
		{[]string{"-u", "ws://a/ws", "--storage", "postgres"}, "--storage postgres needs --dsn"},
		{[]string{"-u", "ws://a/ws", "--dsn", "logs.db"}, "--dsn is for --storage sqlite or postgres; it does nothing with --storage memory"},
		{[]string{"-u", "ws://a/ws", "--retention", "72h"}, "--retention is for --storage sqlite or postgres"},
		{[]string{"-u", "ws://a/ws", "--batch-size", "10"}, "--batch-size is for --storage sqlite or postgres"},
		{[]string{"-u", "ws://a/ws", "--flush-interval", "1s"}, "--flush-interval is for --storage sqlite or postgres"},
		{[]string{"-u", "ws://a/ws", "--storage", "sqlite", "--dsn", "x.db", "--memory-max-entries", "5"}, "--memory-max-entries is for --storage memory"},
		{[]string{"-u", "ws://a/ws", "--storage", "sqlite", "--dsn", "x.db", "--instance", "p1"}, "--instance names this processor for --storage postgres (recorded with every row) or --bus jetstream"},
		{[]string{"-u", "ws://a/ws", "--instance", "p1"}, "it does nothing with --storage memory"},
		{[]string{"--url", "ws://a/ws"}, "unknown flag: --url (did you mean --urls?)"},
		{[]string{"-u", "ws://a/ws", "--queue_size", "5"}, "(did you mean --queue-size?)"},
		{[]string{"-u", "ws://a/ws", "--wrokers", "5"}, "(did you mean --workers?)"},
		{[]string{"-u", "ws://a/ws", "--default-level", "loud"}, `invalid argument "loud" for "--default-level"`},
		{[]string{"-u", "ws://a/ws", "--ingest-max-inflight-bytes", "0"}, "--ingest-max-inflight-bytes must be greater than zero"},
		{[]string{"-u", "ws://a/ws", "--tail-client-bytes", "0"}, "--tail-client-bytes must be greater than zero"},
		{[]string{"-u", ",,"}, "no sources"},
		{[]string{"-u", "ws://user:secret@a/ws,ws://user:secret@a/ws"}, `"ws://REDACTED@a/ws" is listed twice`},
		{[]string{"-u", "ws://a/ws", "--storage", "postgres", "--dsn", "postgres://x/y", "--instance", " "}, "--instance must not be empty"},
		{[]string{"-u", "ws://a/ws", "--storage", "sqlite", "--dsn", "x.db", "--batch-size", "0"}, "--batch-size must be greater than zero"},
		{[]string{"-u", "ws://a/ws", "--storage", "sqlite", "--dsn", "x.db", "--flush-interval", "0s"}, "--flush-interval must be greater than zero"},
		{[]string{"-u", "ws://a/ws", "--memory-max-entries", "-5"}, "--memory-max-entries must be greater than zero"},
		{[]string{"-u", "ws://a/ws", "--storage", "sqlite", "--dsn", "x.db", "--retention", "-1h"}, "--retention must not be negative"},
		{[]string{"-u", "ws://a/ws", "--queue-max-bytes", "lots"}, `invalid argument "lots" for "--queue-max-bytes"`},
		{[]string{"-u", "ws://a/ws", "--queue-max-bytes", "0"}, "--queue-max-bytes must be greater than zero"},
		{[]string{"-u", "ws://a/ws", "--api-token", "a", "--api-token-file", "f"}, "not both"},
		{[]string{"-u", "ws://a/ws", "--api-token-file", "/no/such/file"}, "--api-token-file"},
		{[]string{"-u", "ws://a/ws", "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := Run(context.Background(), tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
			if code := ExitCode(err); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"--help"}, &out, io.Discard); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, flag := range []string{"--urls", "-u", "--http-addr", "-a", "--workers", "--queue-size", "--submit-timeout",
		"--shutdown-timeout", "--connect-timeout", "--ping-interval", "--pong-wait", "--max-backoff", "--max-message-size"} {
		if !strings.Contains(out.String(), flag) {
			t.Errorf("usage lacks %s:\n%s", flag, out.String())
		}
	}
}

// TestStorageUnreachable: a database that cannot be opened stops the
// processor at start with the reason, and exit status 1.
func TestStorageUnreachable(t *testing.T) {
	dir := t.TempDir() // a directory is no SQLite file
	err := Run(context.Background(), []string{"-u", "ws://127.0.0.1:1/ws/logs", "-a", "127.0.0.1:0", "--storage", "sqlite", "--dsn", dir}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "open storage") || ExitCode(err) != 1 {
		t.Fatalf("Run with an unusable --dsn = %v (exit %d), want an open-storage error, exit 1", err, ExitCode(err))
	}
}

func TestPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Run(context.Background(), []string{"-u", "ws://127.0.0.1:1/ws/logs", "-a", ln.Addr().String()}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen for API") || ExitCode(err) != 1 {
		t.Fatalf("Run on a busy port = %v (exit %d), want a listen error, exit 1", err, ExitCode(err))
	}
}

// TestStopsWithSourceDown: a source that never comes up does not keep the
// processor from serving or from stopping cleanly.
func TestStopsWithSourceDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "ws://" + ln.Addr().String() + "/ws/logs"
	ln.Close() // nothing listens there now
	p := startProcessor(t, "--urls", dead)
	var ready struct {
		Status  string `json:"status"`
		Sources []struct {
			State     string `json:"state"`
			LastError string `json:"last_error"`
		} `json:"sources"`
	}
	poll.Until(t, 10*time.Second, "the failed dial to show in /readyz", func() bool {
		code := getJSON(t, p.api+"/readyz", &ready)
		return code == 503 && ready.Status == "down" && ready.Sources[0].LastError != ""
	})
	if err := p.stop(t); err != nil {
		t.Fatalf("run = %v", err)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := Run(t.Context(), []string{"--version"}, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "log-processor ") ||
		!strings.Contains(out.String(), "revision") {
		t.Fatalf("--version: %q, %v", out.String(), err)
	}
}

// TestNamedSourcesMayShareAURL: two named sources may read one URL (two
// subscriptions), on the command line as in the config file.
func TestNamedSourcesMayShareAURL(t *testing.T) {
	cfg, err := parse([]string{"-u", "x=ws://a/ws,y=ws://a/ws"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.dialed) != 2 || cfg.dialed[0].Name != "x" || cfg.dialed[1].Name != "y" || cfg.dialed[1].URL != "ws://a/ws" {
		t.Errorf("dialed %+v", cfg.dialed)
	}
}

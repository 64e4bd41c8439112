package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--interval-ms", "-1"}, "--interval-ms must be 0 to 3600000, got -1"},
		{[]string{"-i", "soon"}, `invalid argument "soon" for "-i, --interval-ms"`},
		{[]string{"--max-conns", "0"}, "--max-conns must be greater than zero"},
		{[]string{"--log-level", "loud"}, `invalid --log-level "loud"`},
		{[]string{"--bogus"}, "unknown flag: --bogus"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--allowed-origins", ""}, "--allowed-origins: an empty entry"},
		{[]string{"--allowed-origins", "example.com,,"}, "--allowed-origins: an empty entry"},
		{[]string{"--allowed-origins", "exa mple.com"}, `"exa mple.com" is not a host or host:port`},
		{[]string{"--allowed-origins", "https://example.com"}, `"https://example.com" is not a host or host:port`},
		{[]string{"--allowed-origins", "example.com:99999"}, `"example.com:99999"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := Run(context.Background(), tc.args, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
			if ExitCode(err) != 2 {
				t.Errorf("exit code %d, want 2", ExitCode(err))
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"-h"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"--url", "-u", "--interval-ms", "-i", "--max-conns", "--allowed-origins",
		"interval_ms", "flood", "count", "service", "level_weights", "debug"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("usage lacks %q", s)
		}
	}
}

// TestRunAndStop: serves on a loopback port, closes its clients with a
// normal close frame when the context ends, and returns nil.
func TestRunAndStop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-u", "127.0.0.1:0", "-i", "5"}, io.Discard, io.Discard, func(a net.Addr) { addrc <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr.String()+"/ws/logs", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); err != nil { // the handshake
		t.Fatal(err)
	}
	cancel()
	for {
		if _, _, err = c.ReadMessage(); err != nil {
			break
		}
	}
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("client saw %v, want a normal close", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

// TestSilentClientCutOff: a client that connects and sends nothing is
// disconnected by the server's header timeout.
func TestSilentClientCutOff(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-u", "127.0.0.1:0"}, io.Discard, io.Discard, func(a net.Addr) { addrc <- a })
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v", err)
		}
	}()
	c, err := net.Dial("tcp", (<-addrc).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("server sent data to a silent client")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("server kept a silent connection open for 30s")
	}
}

// TestHealthMetricsAndVersion: /healthz and /metrics beside /ws/logs, and
// --version.
func TestHealthMetricsAndVersion(t *testing.T) {
	var out bytes.Buffer
	if err := Run(t.Context(), []string{"--version"}, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "mock-log-generator ") {
		t.Fatalf("--version: %q, %v", out.String(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-u", "127.0.0.1:0"}, io.Discard, io.Discard, func(a net.Addr) { addrc <- a })
	}()
	defer func() { cancel(); <-done }()
	base := "http://" + (<-addrc).String()
	get := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(b)
	}
	if got := get("/healthz"); got != "ok\n" {
		t.Fatalf("/healthz = %q", got)
	}
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/logs?count=3&interval_ms=1&malformed_pct=100&seed=4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 4 { // the handshake and three frames
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	m := get("/metrics")
	for _, want := range []string{"mockgen_clients_connected 1", "mockgen_frames_sent_total 3", "mockgen_build_info{", "go_goroutines "} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, m)
		}
	}
	var faults int
	for line := range strings.SplitSeq(m, "\n") {
		if strings.HasPrefix(line, "mockgen_faults_injected_total{") && !strings.HasSuffix(line, " 0") {
			n, _ := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
			faults += n
		}
	}
	if faults != 3 {
		t.Errorf("faults injected: %d, want 3 (malformed_pct=100)", faults)
	}
}

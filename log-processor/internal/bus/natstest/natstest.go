// Package natstest runs a real nats-server with JetStream on 127.0.0.1 for
// tests. The binary is $LOGPROC_NATS_SERVER, nats-server on the PATH, or
// $(go env GOPATH)/bin/nats-server (what `go install
// github.com/nats-io/nats-server/v2@v2.15.2` writes). Without one the test
// is skipped, unless LOGPROC_REQUIRE_NATS=1 (as CI sets), when it fails.
package natstest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a nats-server process. Stop, Start and Kill may be called in
// any order from the test's goroutine; the test's cleanup kills it.
type Server struct {
	t    testing.TB
	bin  string
	dir  string // the JetStream store, kept across restarts
	port int    // fixed after the first start, so that clients reconnect
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the nats-server to run, skipping (or failing, when it is
// required) the test without one.
func Binary(t testing.TB) string {
	t.Helper()
	if b := os.Getenv("LOGPROC_NATS_SERVER"); b != "" {
		return b
	}
	if b, err := exec.LookPath("nats-server"); err == nil {
		return b
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		b := filepath.Join(strings.TrimSpace(string(out)), "bin", "nats-server")
		if _, err := os.Stat(b); err == nil {
			return b
		}
	}
	if os.Getenv("LOGPROC_REQUIRE_NATS") == "1" {
		t.Fatal("no nats-server: go install github.com/nats-io/nats-server/v2@v2.15.2")
	}
	t.Skip("no nats-server on this machine (go install github.com/nats-io/nats-server/v2@v2.15.2)")
	return ""
}

// Start runs a new server with JetStream on a free port of 127.0.0.1, with
// any further nats-server arguments (--user, --pass, say).
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), dir: t.TempDir(), args: args}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// URL is the server's client URL.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Start starts the server again (after Stop or Kill), on the same port and
// with the same store.
func (s *Server) Start() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("natstest: already running")
	}
	portsDir := s.t.TempDir()
	port := "-1" // any free port, the first time
	if s.port != 0 {
		port = strconv.Itoa(s.port)
	}
	cmd := exec.Command(s.bin, append([]string{"-a", "127.0.0.1", "-p", port, "-js", "-sd", s.dir, "--ports_file_dir", portsDir}, s.args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("natstest: start %s: %v", s.bin, err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(s.done) }()
	// The ports file appears once the server listens.
	file := filepath.Join(portsDir, fmt.Sprintf("%s_%d.ports", filepath.Base(s.bin), cmd.Process.Pid))
	deadline := time.Now().Add(20 * time.Second)
	for {
		if b, err := os.ReadFile(file); err == nil {
			var ports struct{ Nats []string }
			if json.Unmarshal(b, &ports) == nil && len(ports.Nats) > 0 {
				u := ports.Nats[0]
				p, err := strconv.Atoi(u[strings.LastIndexByte(u, ':')+1:])
				if err == nil {
					s.port = p
					return
				}
			}
		}
		select {
		case <-s.done:
			s.cmd = nil
			s.t.Fatalf("natstest: nats-server exited at start:\n%s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			s.t.Fatalf("natstest: nats-server did not listen within 20s:\n%s", out.String())
		}
	}
}

// Stop shuts the server down cleanly (SIGINT) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Kill kills the server at once.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

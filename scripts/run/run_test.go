package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var genBin, procBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "run-test")
	if err != nil {
		panic(err)
	}
	exe := ""
	if runtime.GOOS == "windows" {
		exe = ".exe"
	}
	genBin, procBin = filepath.Join(dir, "gen"+exe), filepath.Join(dir, "proc"+exe)
	for bin, pkg := range map[string]string{genBin: "../../mock-log-generator/cmd", procBin: "../../log-processor/cmd"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			panic(string(out))
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buffer is an io.Writer safe for concurrent use.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestFailsWhenAProgramCannotStart: a busy generator port or a bad
// interval ends make run with a non-zero status and the reason, and no
// banner.
func TestFailsWhenAProgramCannotStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"generator port in use", []string{"--gen-addr", busy.Addr().String()}, "address already in use"},
		{"bad interval", []string{"--gen-addr", "127.0.0.1:0", "--interval", "-5"}, "--interval-ms"},
		{"API port in use", []string{"--gen-addr", "127.0.0.1:0", "--api-addr", busy.Addr().String()}, "address already in use"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs buffer
			args := append([]string{"--generator", genBin, "--processor", procBin, "--api-addr", "127.0.0.1:0"}, tc.args...)
			code, err := run(context.Background(), args, &out, &errs, nil)
			if code == 0 || err == nil {
				t.Fatalf("run = %d, %v; want a failure", code, err)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out.String())
			}
			if strings.Contains(errs.String(), "Try: curl") {
				t.Errorf("banner printed although a program failed:\n%s", errs.String())
			}
		})
	}
}

// TestRunAndStop: both programs start, their lines are prefixed, the
// banner names the real addresses, and a signal stops both cleanly.
func TestRunAndStop(t *testing.T) {
	var out, errs buffer
	sigs := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() {
		code, err := run(context.Background(), []string{"--generator", genBin, "--processor", procBin,
			"--gen-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--interval", "5"}, &out, &errs, sigs)
		if err != nil {
			t.Error(err)
		}
		done <- code
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !hasLine(out.String(), "processor| ", "msg=summary") {
		if time.Now().After(deadline) {
			t.Fatalf("no summary line within 60 s:\n%s\n%s", out.String(), errs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(errs.String(), "dashboard:  http://127.0.0.1:") || !strings.Contains(errs.String(), "curl http://127.0.0.1:") {
		t.Errorf("banner = %q", errs.String())
	}
	sigs <- os.Interrupt
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit status %d after a clean stop\n%s", code, out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("run did not stop")
	}
	for _, want := range [][2]string{{"processor| ", `msg="drain report"`}, {"processor| ", "lost=0"}, {"generator| ", "msg=stopped"}} {
		if !hasLine(out.String(), want[0], want[1]) {
			t.Errorf("no line starting %q with %q:\n%s", want[0], want[1], out.String())
		}
	}
}

// hasLine reports whether a line of out starts with prefix and holds text.
func hasLine(out, prefix, text string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, text) {
			return true
		}
	}
	return false
}

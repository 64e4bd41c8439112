package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// generatorBin is the mock-log-generator binary, built once by TestMain.
// The processor cannot import the generator's internal packages, so the
// end-to-end tests run the real generator as a process.
var generatorBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "logproc-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	generatorBin = filepath.Join(dir, "mock-log-generator"+exeSuffix())
	build := exec.Command("go", "build", "-o", generatorBin, "github.com/logpipeline/log-processing-service/mock-log-generator/cmd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build generator:", err)
		return 1
	}
	return m.Run()
}

func exeSuffix() string {
	if runtime.GOOS == "windows" {
		return ".exe"
	}
	return ""
}

// syncBuffer is an io.Writer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// generator is a running mock-log-generator process.
type generator struct {
	cmd  *exec.Cmd
	addr string // host:port it listens on
	done chan error
}

// startGenerator runs the generator on a free loopback port. The test's
// cleanup stops it with SIGINT and checks that it exited 0.
func startGenerator(t *testing.T, args ...string) *generator {
	t.Helper()
	cmd := exec.Command(generatorBin, append([]string{"--url", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &generator{cmd: cmd, done: make(chan error, 1)}
	addrc := make(chan string, 1)
	go func() {
		// Read the log to its end, so the process never blocks on a
		// full pipe; the first line with an address says where it is.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Addr != "" {
				select {
				case addrc <- line.Addr:
				default:
				}
			}
		}
		g.done <- cmd.Wait()
	}()
	t.Cleanup(func() { g.stop(t) })
	select {
	case g.addr = <-addrc:
	case err := <-g.done:
		t.Fatalf("generator exited before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("generator did not report its address")
	}
	return g
}

func (g *generator) stop(t *testing.T) {
	t.Helper()
	if g.cmd.ProcessState != nil {
		return
	}
	if runtime.GOOS == "windows" {
		_ = g.cmd.Process.Kill()
	} else {
		_ = g.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case err := <-g.done:
		if err != nil && runtime.GOOS != "windows" {
			t.Errorf("generator exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
		t.Error("generator did not stop within 10s of SIGINT")
	}
}

func (g *generator) url(query string) string {
	return "ws://" + g.addr + "/ws/logs?" + query
}

// processor is log-processor running in-process via run.
type processor struct {
	api    string // base URL of the HTTP API
	cancel context.CancelFunc
	done   chan error
	stderr *syncBuffer
}

func startProcessor(t *testing.T, args ...string) *processor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &processor{cancel: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
	addrc := make(chan net.Addr, 1)
	args = append([]string{"--http-addr", "127.0.0.1:0", "--log-format", "json"}, args...)
	go func() {
		p.done <- run(ctx, args, io.Discard, p.stderr, func(a net.Addr) { addrc <- a })
	}()
	select {
	case a := <-addrc:
		p.api = "http://" + a.String()
	case err := <-p.done:
		cancel()
		t.Fatalf("processor exited at start: %v\n%s", err, p.stderr)
	}
	t.Cleanup(func() {
		if p.cancel != nil {
			p.cancel()
			<-p.done
		}
	})
	return p
}

// stop cancels the processor and returns what run returned.
func (p *processor) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("processor did not stop within 15s\n%s", p.stderr)
		return nil
	}
}

// logLines returns the processor's JSON log lines whose msg is msg.
func (p *processor) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(p.stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return resp.StatusCode
}

// waitFor polls cond every 10ms until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

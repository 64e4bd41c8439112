// Package e2e runs the real programs for end-to-end tests: it builds the
// binaries once per test run and starts them as processes on loopback ports
// chosen by the system. Only tests import it.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// Import paths of the two commands.
const (
	GeneratorPkg = "github.com/logpipeline/log-processing-service/mock-log-generator/cmd"
	ProcessorPkg = "github.com/logpipeline/log-processing-service/log-processor/cmd"
)

// Build compiles pkg into dir and returns the binary's path. It is meant for
// TestMain, where there is no *testing.T.
func Build(dir, pkg, name string, race bool) (string, error) {
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	bin := filepath.Join(dir, name)
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// Proc is a running program whose stderr carries JSON log lines.
type Proc struct {
	Cmd  *exec.Cmd
	Addr string // host:port from the first log line with an "addr" attribute

	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	done  chan struct{} // closed when the process has exited
	err   error         // from Wait, set before done is closed
}

// Start runs bin with args (which should include --log-format json and a
// :0 listen address), waits until it logs its address, and registers a
// cleanup that stops it with SIGINT (SIGKILL after 10 s) if it still runs.
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go func() {
		// Read the log to its end, so the process never blocks on a full pipe.
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			var m map[string]any
			ok := json.Unmarshal(sc.Bytes(), &m) == nil
			p.mu.Lock()
			p.raw.Write(sc.Bytes())
			p.raw.WriteByte('\n')
			if ok {
				p.lines = append(p.lines, m)
			}
			p.mu.Unlock()
			if a, _ := m["addr"].(string); a != "" {
				select {
				case addrc <- a:
				default:
				}
			}
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.Stop(10 * time.Second); err != nil && !p.exitedBySignal() {
			t.Logf("%s: %v", filepath.Base(bin), err)
		}
	})
	select {
	case p.Addr = <-addrc:
	case <-p.done:
		t.Fatalf("%s exited before listening: %v\n%s", filepath.Base(bin), p.err, p.Log())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not report its address\n%s", filepath.Base(bin), p.Log())
	}
	return p
}

// Stop sends SIGINT (a kill on Windows) and waits up to timeout for the
// process to exit, killing it after that. It returns the exit error.
func (p *Proc) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	if runtime.GOOS == "windows" {
		_ = p.Cmd.Process.Kill()
	} else {
		_ = p.Cmd.Process.Signal(os.Interrupt)
	}
	return p.Wait(timeout)
}

// Kill ends the process at once, as kill -9 would, and waits for it.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Wait waits up to timeout for the process to exit by itself, killing it
// after that, and returns the exit error.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not exit within %v; killed", timeout)
	}
}

func (p *Proc) exitedBySignal() bool {
	return p.Cmd.ProcessState != nil && !p.Cmd.ProcessState.Exited()
}

// Lines returns the JSON log lines logged so far whose msg is msg.
func (p *Proc) Lines(msg string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, m := range p.lines {
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// Log returns everything the process wrote to stderr so far.
func (p *Proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// WSURL returns the generator's WebSocket URL with the query q.
func (p *Proc) WSURL(q string) string {
	if q != "" && !strings.HasPrefix(q, "?") {
		q = "?" + q
	}
	return "ws://" + p.Addr + "/ws/logs" + q
}

// WaitFor polls cond every 10 ms until it holds, failing the test after
// timeout. It stands in for no synchronisation: it waits for an outcome
// that the test then asserts on.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Proxy forwards TCP connections from a loopback port to a target, and can
// cut every connection and refuse new ones, as a server outage or a network
// partition would look to a client.
type Proxy struct {
	Addr   string // where clients connect
	target string
	ln     net.Listener

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy starts a proxy to target; the test's cleanup stops it.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.SetDown(true)
		p.wg.Wait()
	})
	return p
}

// SetDown cuts every connection and refuses new ones (true), or lets them
// through again (false).
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.serve(c) })
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		up.Close()
		return
	}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, up)
		p.mu.Unlock()
		up.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); up.Close(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); c.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// Package proc runs this repository's programs as child processes, for the
// load test and the end-to-end tests: it reads their JSON log lines, learns
// their listen address from them, and stops them.
package proc

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Process is a running program of this repository. Its stderr must carry
// JSON log lines (--log-format json); the first line with an "addr"
// attribute says where it listens.
type Process struct {
	Cmd  *exec.Cmd
	Addr string

	mu    sync.Mutex
	lines []map[string]any
	raw   strings.Builder
	done  chan struct{} // closed when the process has exited
	err   error         // from Wait; set before done is closed
}

// Start runs bin with args and waits up to 20 s for it to report its
// listen address.
func Start(bin string, args ...string) (*Process, error) {
	p, addrc, err := start(bin, args)
	if err != nil {
		return nil, err
	}
	select {
	case p.Addr = <-addrc:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening: %v\n%s", bin, p.err, p.Log())
	case <-time.After(20 * time.Second):
		p.Kill()
		return nil, fmt.Errorf("%s did not report its address\n%s", bin, p.Log())
	}
}

// start runs bin and keeps its log; addrc gets the first address it logs.
func start(bin string, args []string) (*Process, <-chan string, error) {
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	addrc := make(chan string, 1)
	go p.readLog(stderr, addrc)
	return p, addrc, nil
}

// StartQuiet runs bin with args without waiting for it to log an address,
// for programs that do not (nats-server). Addr stays empty.
func StartQuiet(bin string, args ...string) (*Process, error) {
	p, _, err := start(bin, args)
	return p, err
}

// readLog keeps every line, so the process never blocks on a full pipe.
func (p *Process) readLog(r io.Reader, addrc chan<- string) {
	sc := bufio.NewScanner(r)
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
	p.err = p.Cmd.Wait()
	close(p.done)
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.Cmd.Process.Pid }

// Stop sends an interrupt (a kill on Windows) and waits up to timeout for
// the process to exit, killing it after that. It returns the exit error.
func (p *Process) Stop(timeout time.Duration) error {
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

// Kill ends the process at once and waits for it.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit by itself, killing it
// after that, and returns the exit error.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not exit within %v; killed", timeout)
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Lines returns the JSON log lines logged so far whose msg is msg.
func (p *Process) Lines(msg string) []map[string]any {
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
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// WSURL returns the generator's WebSocket URL at Addr with the query q.
func (p *Process) WSURL(q string) string {
	if q != "" && !strings.HasPrefix(q, "?") {
		q = "?" + q
	}
	return "ws://" + p.Addr + "/ws/logs" + q
}

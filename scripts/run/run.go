package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"time"

	"github.com/spf13/pflag"
)

// startTimeout bounds how long a program may take to listen.
const startTimeout = 60 * time.Second

// child is one running program whose log lines are copied to out with a
// prefix, and scanned for its listen address.
type child struct {
	name string
	cmd  *exec.Cmd
	addr chan string   // the first addr= in its log; buffered 1
	done chan struct{} // closed once it has exited and its output is copied
	err  error         // Wait's result, set before done is closed
}

// addrRe finds the listen address in a text log line.
var addrRe = regexp.MustCompile(`\baddr=(\S+)`)

func start(name, bin string, args []string, out io.Writer, mu *sync.Mutex) (*child, error) {
	c := &child{name: name, cmd: exec.Command(bin, args...), addr: make(chan string, 1), done: make(chan struct{})}
	detach(c.cmd)
	pr, pw := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			fmt.Fprintf(out, "%-9s| %s\n", name, line)
			mu.Unlock()
			if m := addrRe.FindStringSubmatch(line); m != nil {
				select {
				case c.addr <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		c.err = c.cmd.Wait()
		pw.Close()
		<-copied
		close(c.done)
	}()
	return c, nil
}

// status is the child's exit status: 0, its code, or 1 if it has none.
func (c *child) status() int {
	var ee *exec.ExitError
	switch {
	case c.err == nil:
		return 0
	case errors.As(c.err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	}
	return 1
}

// waitListening returns the child's listen address once it logs one.
func (c *child) waitListening() (string, error) {
	select {
	case a := <-c.addr:
		return a, nil
	case <-c.done:
		return "", fmt.Errorf("%s exited before it was listening (status %d); its log is above", c.name, c.status())
	case <-time.After(startTimeout):
		return "", fmt.Errorf("%s did not start listening within %v", c.name, startTimeout)
	}
}

// stop asks the child to stop (an interrupt; on Windows, where there is
// none to send, a kill) and waits for it.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	interrupt(c.cmd)
	<-c.done
}

// run is the command; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) (int, error) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	genBin := fs.String("generator", "bin/mock-log-generator", "mock-log-generator binary")
	procBin := fs.String("processor", "bin/log-processor", "log-processor binary")
	genAddr := fs.String("gen-addr", "127.0.0.1:8080", "the generator's listen address")
	apiAddr := fs.String("api-addr", "127.0.0.1:9090", "the processor's API address (loopback: only this machine can read the logs)")
	interval := fs.String("interval", "250", "the generator's --interval-ms")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	var mu sync.Mutex // serialises the two programs' lines
	gen, err := start("generator", *genBin, []string{"--url", *genAddr, "--interval-ms", *interval}, stdout, &mu)
	if err != nil {
		return 1, err
	}
	addr, err := gen.waitListening()
	if err != nil {
		gen.stop()
		return max(gen.status(), 1), err
	}
	proc, err := start("processor", *procBin, []string{"--urls", "ws://" + dialable(addr) + "/ws/logs", "--http-addr", *apiAddr}, stdout, &mu)
	if err != nil {
		gen.stop()
		return 1, err
	}
	api, err := proc.waitListening()
	if err != nil {
		gen.stop()
		return max(proc.status(), 1), err
	}
	mu.Lock()
	d := dialable(api)
	fmt.Fprintf(stderr, "\nmake run: the generator is on %s; the processor's API on %s.\n"+
		"  dashboard:  http://%s/\n"+
		"  counters:   curl http://%s/stats\n"+
		"  the tail:   curl -N \"http://%s/logs/tail?level=ERROR\"\n"+
		"  Ctrl+C stops both.\n\n", addr, api, d, d, d)
	mu.Unlock()

	select {
	case <-proc.done:
		gen.stop()
		return exitedEarly(proc)
	case <-gen.done:
		proc.stop()
		return exitedEarly(gen)
	case <-sigs:
	case <-ctx.Done():
	}
	// Stop the processor first: it closes its sources and drains. A second
	// signal is passed on to it, abandoning its drain.
	forward(proc.cmd)
	for waiting := true; waiting; {
		select {
		case <-proc.done:
			waiting = false
		case <-sigs:
			forward(proc.cmd)
		}
	}
	forward(gen.cmd)
	<-gen.done
	return proc.status(), nil
}

// exitedEarly reports a program that stopped while the other still ran.
func exitedEarly(c *child) (int, error) {
	return max(c.status(), 1), fmt.Errorf("%s exited on its own (status %d); stopped the other", c.name, c.status())
}

// dialable turns a listen address into one to connect to: an unspecified
// host becomes localhost.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

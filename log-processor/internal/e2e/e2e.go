// Package e2e helps the end-to-end tests: it builds the real binaries once
// per test run, starts them as processes on loopback ports chosen by the
// system, and stands a cuttable TCP proxy in front of a server. Only tests
// import it.
package e2e

import (
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/proc"
	"github.com/logpipeline/log-processing-service/log-processor/internal/tcpproxy"
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

// Proc is a running program; see proc.Process.
type Proc = proc.Process

// Start runs bin with args (which should include --log-format json and a
// :0 listen address), waits until it logs its address, and registers a
// cleanup that stops it with SIGINT (SIGKILL after 10 s) if it still runs.
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	p, err := proc.Start(bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.Exited() {
			return
		}
		if err := p.Stop(10 * time.Second); err != nil {
			t.Logf("%s: %v", filepath.Base(bin), err)
		}
	})
	return p
}

// Proxy is a cuttable TCP proxy; see tcpproxy.
type Proxy = tcpproxy.Proxy

// NewProxy starts a proxy to target; the test's cleanup stops it.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := tcpproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// NewDSNProxy stands a proxy in front of the server of the URL-form
// connection string dsn and returns the string that goes through it.
func NewDSNProxy(t testing.TB, dsn string) (string, *Proxy) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, u.Host)
	u.Host = p.Addr
	return u.String(), p
}

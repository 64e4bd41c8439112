package pgtest

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// root is the repository root, where the scripts live.
var root = filepath.Join("..", "..", "..", "..", "..")

func needServerBinaries(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the cluster script is for POSIX shells")
	}
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
		if _, err := exec.LookPath("initdb"); err != nil {
			if os.Getenv("LOGPROC_REQUIRE_POSTGRES") == "1" {
				t.Fatal("no PostgreSQL server binaries")
			}
			t.Skip("no PostgreSQL server binaries (initdb) on this machine")
		}
	}
}

func clusterDirs(t *testing.T) map[string]bool {
	t.Helper()
	m, _ := filepath.Glob("/tmp/logproc-pg.*")
	out := map[string]bool{}
	for _, d := range m {
		out[d] = true
	}
	return out
}

// TestClusterSkipsBusyPort: with its port taken, the script starts on the
// next free one, and stop removes everything.
func TestClusterSkipsBusyPort(t *testing.T) {
	needServerBinaries(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "pg-test-cluster.sh"), "start")
	cmd.Env = append(os.Environ(), "PGTEST_PORT="+strconv.Itoa(busy))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	var dir, dsn string
	for line := range strings.SplitSeq(string(out), "\n") {
		if _, v, ok := strings.Cut(line, "PGTEST_DIR='"); ok {
			dir, _, _ = strings.Cut(v, "'")
		}
		if _, v, ok := strings.Cut(line, "LOGPROC_TEST_POSTGRES_DSN='"); ok {
			dsn, _, _ = strings.Cut(v, "'")
		}
	}
	if dir == "" || dsn == "" {
		t.Fatalf("no PGTEST_DIR or DSN in %q", out)
	}
	defer exec.Command("bash", filepath.Join(root, "scripts", "pg-test-cluster.sh"), "stop", dir).Run()
	if strings.Contains(dsn, ":"+strconv.Itoa(busy)+"/") {
		t.Errorf("DSN %s uses the busy port", dsn)
	}
	if out, err := exec.Command("bash", filepath.Join(root, "scripts", "pg-test-cluster.sh"), "stop", dir).CombinedOutput(); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after stop", dir)
	}
}

// TestClusterFailureStopsCI: when the cluster cannot start, the script says
// why, leaves nothing behind, and .ci/run stops there without running the
// tests. (An unusable port stands for every failure: each path out of the
// script goes through the same fail.)
func TestClusterFailureStopsCI(t *testing.T) {
	needServerBinaries(t)
	before := clusterDirs(t)
	cmd := exec.Command("bash", filepath.Join(root, ".ci", "run"))
	cmd.Env = append(os.Environ(), "PGTEST_PORT=not-a-port")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf(".ci/run succeeded with an unusable port:\n%s", out)
	}
	if !strings.Contains(string(out), "pg-test-cluster: PGTEST_PORT=not-a-port is not a port number") {
		t.Errorf("no reason in the output:\n%s", out)
	}
	if strings.Contains(string(out), "go vet") || strings.Contains(string(out), "unbound variable") {
		t.Errorf(".ci/run carried on after the cluster failed:\n%s", out)
	}
	for d := range clusterDirs(t) {
		if !before[d] {
			t.Errorf("left behind %s", d)
		}
	}
}

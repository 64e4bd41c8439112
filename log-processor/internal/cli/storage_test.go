package cli

import (
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	_ "modernc.org/sqlite"

	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres/pgtest"
)

// record mirrors one /logs item.
type record struct {
	Timestamp int64  `json:"timestamp"`
	Level     string `json:"level"`
	Service   string `json:"service"`
	Message   string `json:"message"`
	Source    string `json:"source"`
	Instance  string `json:"instance"`
}

func getLogs(t *testing.T, api, query string) []record {
	t.Helper()
	var rs []record
	if code := getJSON(t, api+"/logs?"+query, &rs); code != http.StatusOK {
		t.Fatalf("/logs?%s: status %d", query, code)
	}
	return rs
}

// countRows counts the rows of the logs table in the backend's database,
// after checking an SQLite file's integrity.
func countRows(t *testing.T, backend, dsn string) int64 {
	t.Helper()
	if backend == "sqlite" {
		if ok := dbStrings(t, backend, dsn, "PRAGMA integrity_check"); len(ok) != 1 || ok[0] != "ok" {
			t.Fatalf("integrity_check: %q", ok)
		}
	}
	n, err := strconv.ParseInt(dbStrings(t, backend, dsn, "SELECT CAST(count(*) AS TEXT) FROM logs")[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStorageEndToEnd: per backend, two generators with count set; after a
// graceful shutdown the database holds exactly what was submitted, and
// /logs returned the newest entries with the right filters.
func TestStorageEndToEnd(t *testing.T) {
	for _, backend := range []string{"memory", "sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var dsn []string
			switch backend {
			case "sqlite":
				dsn = []string{"--dsn", filepath.Join(t.TempDir(), "logs.db"), "--flush-interval", "20ms"}
			case "postgres":
				dsn = []string{"--dsn", pgtest.DSN(t), "--instance", "e2e", "--flush-interval", "20ms"}
			}
			const nA, nB = 2000, 1000
			genA, genB := startGenerator(t), startGenerator(t)
			urlA := genA.WSURL("flood&count=2000&service=alpha")
			urlB := genB.WSURL("flood&count=1000&service=beta&level=WARN")
			p := startProcessor(t, append([]string{"--urls", urlA + "," + urlB, "--storage", backend}, dsn...)...)

			var s stats
			poll.Until(t, 60*time.Second, "every entry stored", func() bool {
				s = stats1(t, p)
				return s.Received == nA+nB+2 && s.Stored == s.Submitted
			})
			if s.Submitted != nA+nB || s.Storage.Backend != backend || s.Storage.State != "ok" {
				t.Fatalf("stats = %+v", s)
			}
			if tot := s.Storage.Totals; tot == nil || tot.Total != nA+nB || tot.ByService["beta"] != nB {
				t.Errorf("storage totals = %+v, want %d entries, %d of beta", tot, nA+nB, nB)
			}

			beta := getLogs(t, p.api, "service=beta&limit=5")
			if len(beta) != 5 {
				t.Fatalf("/logs?service=beta&limit=5 gave %d", len(beta))
			}
			for _, r := range beta {
				if r.Service != "beta" || r.Level != "WARN" || r.Source != urlB {
					t.Errorf("beta record %+v", r)
				}
			}
			newest := getLogs(t, p.api, "")
			if len(newest) != 100 || !slices.IsSortedFunc(newest, func(a, b record) int { return int(b.Timestamp - a.Timestamp) }) {
				t.Errorf("/logs gave %d records, want the newest 100, newest first", len(newest))
			}
			errs := getLogs(t, p.api, "service=alpha&level=error&limit=1000")
			if len(errs) == 0 || uint64(len(errs)) >= nA {
				t.Errorf("%d ERROR entries of alpha, want some but not all", len(errs))
			}
			for _, r := range errs {
				if r.Service != "alpha" || r.Level != "ERROR" {
					t.Fatalf("filtered record %+v", r)
				}
			}
			future := time.Now().Add(time.Hour).Format(time.RFC3339)
			if rs := getLogs(t, p.api, "since="+url.QueryEscape(future)); len(rs) != 0 {
				t.Errorf("%d entries from the future", len(rs))
			}

			if err := p.stop(t); err != nil {
				t.Fatal(err)
			}
			r := p.logLines(t, "drain report")[0]
			if r["stored"] != float64(nA+nB) || r["lost"] != float64(0) {
				t.Errorf("drain report %v", r)
			}
			if backend != "memory" {
				if n := countRows(t, backend, dsn[1]); n != nA+nB {
					t.Errorf("%d rows in the database, want %d", n, nA+nB)
				}
			}
		})
	}
}

// TestTwoProcessorsSharePostgres: processors reading different generators
// write into one database; the rows add up and each sees the other's.
func TestTwoProcessorsSharePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	genA, genB := startGenerator(t), startGenerator(t)
	pa := startProcessor(t, "--urls", genA.WSURL("flood&count=1500&service=alpha"), "--storage", "postgres", "--dsn", dsn, "--instance", "proc-a", "--flush-interval", "20ms")
	pb := startProcessor(t, "--urls", genB.WSURL("flood&count=2500&service=beta"), "--storage", "postgres", "--dsn", dsn, "--instance", "proc-b", "--flush-interval", "20ms")
	for _, p := range []*processor{pa, pb} {
		poll.Until(t, 60*time.Second, "all stored", func() bool {
			s := stats1(t, p)
			return s.Received == s.Ignored+s.Submitted && s.Submitted > 0 && s.Stored == s.Submitted && s.Ignored == 1
		})
	}
	for _, c := range []struct {
		p                 *processor
		service, instance string
	}{{pa, "beta", "proc-b"}, {pb, "alpha", "proc-a"}} {
		rs := getLogs(t, c.p.api, "service="+c.service+"&limit=10")
		if len(rs) != 10 || rs[0].Instance != c.instance {
			t.Errorf("%s's /logs?service=%s: %d rows, first %+v", c.instance, c.service, len(rs), rs)
		}
		s := stats1(t, c.p)
		if tot := s.Storage.Totals; tot == nil || tot.Total != 4000 {
			t.Errorf("storage totals seen by one processor = %+v, want both's 4000", tot)
		}
	}
	for _, p := range []*processor{pa, pb} {
		if err := p.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	if n := countRows(t, "postgres", dsn); n != 4000 {
		t.Errorf("%d rows, want 4000", n)
	}
}

// TestSQLiteKill9: kill -9 the real processor binary during ingest into
// SQLite; the file opens, passes integrity_check, and holds every entry
// that /stats reported stored before the kill.
func TestSQLiteKill9(t *testing.T) {
	gen := startGenerator(t)
	path := filepath.Join(t.TempDir(), "logs.db")
	proc := e2e.Start(t, processorBin, "--urls", gen.WSURL("flood"), "--http-addr", "127.0.0.1:0",
		"--log-format", "json", "--storage", "sqlite", "--dsn", path)
	var s stats
	poll.Until(t, 60*time.Second, "ingest to be under way", func() bool {
		s = stats{}
		getJSON(t, "http://"+proc.Addr+"/stats", &s)
		return s.Stored >= 20000
	})
	proc.Kill()
	n := countRows(t, "sqlite", path) // checks integrity too
	if n < int64(s.Stored) {
		t.Fatalf("%d rows after kill -9, but %d were reported stored", n, s.Stored)
	}
	t.Logf("reported stored %d before the kill; %d rows in the file", s.Stored, n)
}

// TestPostgresOutage: the database goes away mid-ingest and comes back.
// Meanwhile storage reports failing, /readyz says degraded, drops are
// counted as storage_unavailable; afterwards writing resumes by itself, and
// nothing was reported stored that the database does not hold.
func TestPostgresOutage(t *testing.T) {
	dsn := pgtest.DSN(t)
	proxied, proxy := e2e.NewDSNProxy(t, dsn)
	gen := startGenerator(t)
	p := startProcessor(t, "--urls", gen.WSURL("interval_ms=1"), "--storage", "postgres", "--dsn", proxied,
		"--flush-interval", "20ms", "--batch-size", "100", "--queue-size", "500", "--submit-timeout", "1ms")

	var s stats
	poll.Until(t, 30*time.Second, "ingest", func() bool { s = stats1(t, p); return s.Stored > 300 })
	proxy.SetDown(true)
	poll.Until(t, 60*time.Second, "drops for storage_unavailable", func() bool {
		s = stats1(t, p)
		return s.Storage.State == "failing" && s.DropReasons["storage_unavailable"] > 0
	})
	var rd struct {
		Status string `json:"status"`
	}
	if code := getJSON(t, p.api+"/readyz", &rd); code != http.StatusServiceUnavailable || rd.Status != "degraded" {
		t.Errorf("/readyz during the outage = %d %q, want 503 degraded", code, rd.Status)
	}
	storedDuring := s.Stored
	proxy.SetDown(false)
	poll.Until(t, 60*time.Second, "writing to resume", func() bool {
		s = stats1(t, p)
		return s.Storage.State == "ok" && s.Stored > storedDuring+300
	})
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
	r := p.logLines(t, "drain report")[0]
	stored := uint64(r["stored"].(float64))
	if r["lost"] != float64(0) || r["accepted"] != r["stored"] {
		t.Errorf("drain report %v", r)
	}
	// A batch whose COMMIT succeeded but whose answer was cut off is
	// written again: at least once, never reported without being there.
	rows := countRows(t, "postgres", dsn)
	if rows < int64(stored) {
		t.Errorf("%d rows, but %d reported stored", rows, stored)
	}
	if rows > int64(stored) {
		t.Logf("%d rows for %d stored: a batch was written twice across the outage", rows, stored)
	}
}

// TestSecondSignalStillReports: with PostgreSQL unreachable the drain after
// SIGTERM cannot finish; a second SIGTERM abandons it, and the processor
// still logs the drain report with how many accepted entries were lost.
func TestSecondSignalStillReports(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM cannot be sent on Windows")
	}
	proxied, proxy := e2e.NewDSNProxy(t, pgtest.DSN(t))
	gen := startGenerator(t)
	proc := e2e.Start(t, processorBin, "--urls", gen.WSURL("interval_ms=1"), "--http-addr", "127.0.0.1:0",
		"--log-format", "json", "--storage", "postgres", "--dsn", proxied, "--flush-interval", "20ms",
		"--batch-size", "100", "--shutdown-timeout", "10m")
	api := "http://" + proc.Addr
	var s stats
	poll.Until(t, 30*time.Second, "ingest", func() bool { getJSON(t, api+"/stats", &s); return s.Stored > 100 })
	proxy.SetDown(true)
	poll.Until(t, 60*time.Second, "accepted entries waiting for storage", func() bool {
		getJSON(t, api+"/stats", &s)
		return s.Storage.State == "failing" && s.Submitted > s.Stored+50
	})
	if err := proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "the drain to start", func() bool { return len(proc.Lines("shutting down: closing sources")) == 1 })
	if err := proc.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(30 * time.Second); err == nil {
		t.Error("exit status 0 after an abandoned drain, want 1")
	}
	reports := proc.Lines("drain report")
	if len(reports) != 1 {
		t.Fatalf("%d drain reports after the second signal\n%s", len(reports), proc.Log())
	}
	r := reports[0]
	if lost := r["lost"].(float64); lost <= 0 || lost != r["accepted"].(float64)-r["stored"].(float64)-r["rejected_by_storage"].(float64) {
		t.Errorf("drain report %v: want the lost entries counted", r)
	}
	if len(proc.Lines("second signal: abandoning the drain")) != 1 {
		t.Errorf("no line saying the drain was abandoned\n%s", proc.Log())
	}
}

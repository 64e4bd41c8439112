package loadtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/proc"
)

// natsServer is a nats-server with JetStream on a free loopback port, with
// a fresh store, so that no row inherits another's backlog.
type natsServer struct {
	p   *proc.Process
	url string
	dir string
}

func startNATS(ctx context.Context, bin string) (*natsServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "logproc-bench-nats")
	if err != nil {
		return nil, err
	}
	p, err := proc.StartQuiet(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Kill()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("nats-server did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &natsServer{p: p, url: "nats://" + addr, dir: dir}, nil
}

func (s *natsServer) stop() {
	_ = s.p.Stop(10 * time.Second)
	os.RemoveAll(s.dir)
}

// busRows measures entries through JetStream end to end (read, publish,
// fetch, store, acknowledge): one entry per stream message, then batched,
// with one and two processors sharing the stream, into memory and (with a
// DSN) PostgreSQL. dialed, the in-process pool's rate, is the ceiling.
func (cfg SuiteConfig) busRows(ctx context.Context, urls func(int) []string, dialed float64) ([]row, error) {
	type scenario struct {
		name  string
		procs int
		extra []string
	}
	scenarios := []scenario{
		// At its best here: many messages in flight, and fetched many at a
		// time (64 and 256 beat 8 and 8, 256 and 8, and 16 and 512).
		{"JetStream, 1 entry per message, memory, 1 processor", 1, []string{"--bus-batch", "1", "--bus-max-pending", "64", "--bus-fetch", "256", "--bus-compress=false"}},
		{"JetStream, batched (500 per message), uncompressed, memory, 1 processor", 1, []string{"--bus-compress=false"}},
		{"JetStream, batched (500 per message, S2), memory, 1 processor", 1, nil},
		{"JetStream, batched, memory, 2 processors", 2, nil},
	}
	if cfg.PostgresDSN != "" {
		pg := []string{"--storage", "postgres", "--dsn", cfg.PostgresDSN}
		scenarios = append(scenarios,
			scenario{"JetStream, batched, postgres, 1 processor", 1, pg},
			scenario{"JetStream, batched, postgres, 2 processors", 2, pg})
	}
	var rows []row
	for _, sc := range scenarios {
		fmt.Fprintf(cfg.Out, "# %s\n", sc.name)
		r, err := cfg.busRow(ctx, urls(sc.procs), sc.procs, sc.extra)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", sc.name, err)
		}
		r.name, r.ceiling = sc.name+r.name, dialed
		rows = append(rows, r)
	}
	return rows, nil
}

// busRow runs procs processors, each reading its own flood, against a new
// nats-server, and sums what they received and stored.
func (cfg SuiteConfig) busRow(ctx context.Context, urls []string, procs int, extra []string) (row, error) {
	ns, err := startNATS(ctx, cfg.NATSServer)
	if err != nil {
		return row{}, err
	}
	defer ns.stop()
	var ps []*proc.Process
	defer func() {
		for _, p := range ps {
			p.Stop(30 * time.Second)
		}
	}()
	for i := range procs {
		args := append([]string{"--urls", urls[i], "--http-addr", "127.0.0.1:0", "--log-format", "json",
			"--bus", "jetstream", "--nats-url", ns.url, "--instance", "bench-" + strconv.Itoa(i)}, extra...)
		p, err := proc.Start(cfg.ProcessorBin, args...)
		if err != nil {
			return row{}, fmt.Errorf("start processor: %w", err)
		}
		ps = append(ps, p)
	}
	n0, err := ReadProc(ns.p.Pid())
	if err != nil {
		n0 = Proc{}
	}
	results := make([]Result, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { results[i], errs[i] = Watch(ctx, "http://"+p.Addr, p.Pid(), cfg.Warmup, cfg.Duration) })
	}
	wg.Wait()
	n1, _ := ReadProc(ns.p.Pid())
	var sum Result
	var cpu float64
	for i, r := range results {
		if errs[i] != nil {
			return row{}, fmt.Errorf("measure processor: %w\n%s", errs[i], tail(ps[i].Log(), 20))
		}
		sum.Duration = max(sum.Duration, r.Duration)
		sum.Rate += r.Rate
		sum.Stored += r.Stored
		sum.Messages += r.Messages
		sum.StoredRows += r.StoredRows
		sum.Dropped += r.Dropped
		sum.ParseErr += r.ParseErr
		sum.PeakRSS = max(sum.PeakRSS, r.PeakRSS)
		cpu += r.CPUPerM * float64(r.Messages) / 1e6
	}
	// Per million entries read, as the other rows: where the database is
	// slower than the sources, the stream holds the difference.
	if sum.Messages > 0 {
		sum.CPUPerM = cpu / float64(sum.Messages) * 1e6
	}
	note := ""
	if n0.CPU > 0 && sum.Messages > 0 {
		note = fmt.Sprintf(" (nats-server %.2f CPU-s per M)", (n1.CPU-n0.CPU).Seconds()/float64(sum.Messages)*1e6)
	}
	return row{name: note, rate: sum.Rate, stored: sum.Stored, res: sum}, nil
}

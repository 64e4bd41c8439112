package loadtest

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/proc"
)

// SuiteConfig describes a full benchmark run on this machine.
type SuiteConfig struct {
	GeneratorBin string        // mock-log-generator binary
	ProcessorBin string        // log-processor binary
	Warmup       time.Duration // before each measured window
	Duration     time.Duration // each measured window
	Soak         time.Duration // the memory soak's length; 0 = none
	Conns        []int         // connection counts to run (e.g. 1 and 4)
	WorkDir      string        // for the SQLite file
	PostgresDSN  string        // if set, also measure PostgreSQL
	NATSServer   string        // nats-server binary; if set, also measure the JetStream bus
	// StatsServices streams a million services through each backend and
	// times /stats.
	StatsServices bool
	Out           io.Writer // where the table and progress go
}

// row is one line of the result table.
type row struct {
	name    string
	rate    float64 // msgs/s received
	stored  float64 // rows/s stored, for database rows
	ceiling float64
	res     Result
	cpuRef  float64 // the ceiling client's CPU-s per M msgs, to compare with
}

// RunSuite runs the generator on a loopback port and measures, against
// it: the read-and-discard ceiling, the processor with memory storage, and
// with SQLite (and PostgreSQL if configured). It prints one table.
func RunSuite(ctx context.Context, cfg SuiteConfig) error {
	gen, err := proc.Start(cfg.GeneratorBin, "--url", "127.0.0.1:0", "--log-format", "json")
	if err != nil {
		return fmt.Errorf("start generator: %w", err)
	}
	defer gen.Stop(10 * time.Second)
	urls := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, gen.WSURL(fmt.Sprintf("flood&seed=%d", i+1)))
		}
		return out
	}
	progress := func(format string, a ...any) { fmt.Fprintf(cfg.Out, "# "+format+"\n", a...) }

	progress("flood server: pre-encoded frames, %d per write, 1 connection: the ceiling client, then the processor", DefaultPerWrite)
	rows, err := cfg.floodRows(ctx)
	if err != nil {
		return err
	}
	ceilings := map[int]float64{}
	for _, n := range cfg.Conns {
		progress("ceiling: read-and-discard client, %d connection(s)", n)
		c, err := Ceiling(ctx, urls(n), false, cfg.Warmup, cfg.Duration)
		if err != nil {
			return fmt.Errorf("ceiling: %w", err)
		}
		ceilings[n] = c
		rows = append(rows, row{name: fmt.Sprintf("ceiling (ReadMessage and discard), %d conn", n), rate: c, ceiling: c})
	}
	for _, n := range cfg.Conns {
		progress("generator capacity: streaming discard client, %d connection(s)", n)
		c, err := Ceiling(ctx, urls(n), true, cfg.Warmup, cfg.Duration)
		if err != nil {
			return fmt.Errorf("generator capacity: %w", err)
		}
		rows = append(rows, row{name: fmt.Sprintf("generator capacity (NextReader to io.Discard), %d conn", n), rate: c})
	}
	flooded := map[int]float64{}
	for _, n := range cfg.Conns {
		progress("processor, memory storage, %d connection(s)", n)
		res, err := cfg.runProcessor(ctx, urls(n), cfg.Duration)
		if err != nil {
			return err
		}
		flooded[n] = res.Rate
		rows = append(rows, row{name: fmt.Sprintf("processor, memory, %d conn", n), rate: res.Rate, ceiling: ceilings[n], res: res})
	}
	if slices.Contains(cfg.Conns, 1) {
		progress("processor, memory storage, 1 connection, with the dashboard open in headless Chromium")
		r, ok, err := cfg.dashboardRow(ctx, urls(1), flooded[1])
		if err != nil {
			return err
		}
		if ok {
			rows = append(rows, r)
		} else {
			progress("no Chromium installed: no dashboard row")
		}
	}
	for _, overWS := range []bool{false, true} {
		progress("processor, memory storage, pushed by the generator (over WebSocket: %t)", overWS)
		r, err := cfg.pushRow(ctx, overWS, flooded[1])
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	pr, err := cfg.protocolRows(ctx)
	if err != nil {
		return err
	}
	rows = append(rows, pr...)
	// Below capacity, with default flags, nothing may be dropped.
	if cfg.NATSServer != "" {
		br, err := cfg.busRows(ctx, urls, flooded[1])
		if err != nil {
			return err
		}
		rows = append(rows, br...)
	} else {
		progress("no nats-server (--nats-server): no JetStream rows")
	}
	n := cfg.Conns[len(cfg.Conns)-1]
	perConn := max(1, int(flooded[n]*0.8)/n)
	var paced []string
	for i := range n {
		paced = append(paced, gen.WSURL(fmt.Sprintf("rate=%d&seed=%d", perConn, i+1)))
	}
	progress("processor, memory storage, %d connection(s) paced at %d msgs/s each (80%% of its flood rate)", n, perConn)
	res, err := cfg.runProcessor(ctx, paced, cfg.Duration)
	if err != nil {
		return err
	}
	rows = append(rows, row{name: fmt.Sprintf("processor, memory, %d conn paced at 80%%", n), rate: res.Rate, ceiling: ceilings[n], res: res})
	dbs := []struct{ name, dsn string }{{"sqlite", filepath.Join(cfg.WorkDir, "bench.db")}}
	if cfg.PostgresDSN != "" {
		dbs = append(dbs, struct{ name, dsn string }{"postgres", cfg.PostgresDSN})
	}
	for _, db := range dbs {
		progress("%s: raw batch inserts", db.name)
		raw, err := RawInsert(ctx, db.name, db.dsn+rawSuffix(db.name), cfg.Duration)
		if err != nil {
			return fmt.Errorf("%s raw insert: %w", db.name, err)
		}
		rows = append(rows, row{name: fmt.Sprintf("%s raw inserts, batch %d", db.name, rawBatch), rate: raw, stored: raw})
		progress("processor, %s storage, 1 connection", db.name)
		res, err := cfg.runProcessor(ctx, urls(1), cfg.Duration, "--storage", db.name, "--dsn", db.dsn)
		if err != nil {
			return err
		}
		rows = append(rows, row{name: fmt.Sprintf("processor, %s, 1 conn (stored/raw)", db.name), rate: res.Rate, stored: res.Stored, ceiling: raw, res: res})
	}
	progress("hostile source: near-limit frames into memory storage")
	hr, err := cfg.hostileRow(ctx, gen, "")
	if err != nil {
		return err
	}
	rows = append(rows, hr)
	if cfg.PostgresDSN != "" {
		progress("hostile source: near-limit frames into a failing PostgreSQL")
		hr, err := cfg.hostileRow(ctx, gen, cfg.PostgresDSN)
		if err != nil {
			return err
		}
		rows = append(rows, hr)
	}
	var statsLines []string
	if cfg.StatsServices {
		stores := [][]string{{"memory"}, {"sqlite", "--storage", "sqlite", "--dsn", filepath.Join(cfg.WorkDir, "stats.db")}}
		if cfg.PostgresDSN != "" {
			stores = append(stores, []string{"postgres", "--storage", "postgres", "--dsn", cfg.PostgresDSN})
		}
		for _, st := range stores {
			progress("/stats with a million services: %s", st[0])
			line, err := cfg.statsRow(ctx, gen, st[0], st[1:]...)
			if err != nil {
				return err
			}
			statsLines = append(statsLines, line)
		}
	}
	var soak *Result
	if cfg.Soak > 0 {
		progress("memory soak: processor, memory storage, 1 connection, %v", cfg.Soak)
		res, err := cfg.runProcessor(ctx, urls(1), cfg.Soak)
		if err != nil {
			return err
		}
		soak = &res
		rows = append(rows, row{name: fmt.Sprintf("soak %v, memory, 1 conn", cfg.Soak), rate: res.Rate, ceiling: ceilings[1], res: res})
	}
	progress("what durability costs: --ack stored against --ack queued, per storage")
	ack, err := cfg.ackRows(ctx)
	if err != nil {
		return err
	}
	printTable(cfg.Out, rows, soak)
	for _, l := range statsLines {
		fmt.Fprintln(cfg.Out, l)
	}
	fmt.Fprintln(cfg.Out)
	printAckTable(cfg.Out, ack)
	return nil
}

// runProcessor starts the processor on urls with extra flags, measures it,
// stops it, and checks that it exited cleanly.
func (cfg SuiteConfig) runProcessor(ctx context.Context, urls []string, d time.Duration, extra ...string) (Result, error) {
	args := append([]string{"--urls", strings.Join(urls, ","), "--http-addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
	p, err := proc.Start(cfg.ProcessorBin, args...)
	if err != nil {
		return Result{}, fmt.Errorf("start processor: %w", err)
	}
	res, werr := Watch(ctx, "http://"+p.Addr, p.Pid(), cfg.Warmup, d)
	if err := p.Stop(30 * time.Second); err != nil {
		return res, fmt.Errorf("processor exit: %v\n%s", err, tail(p.Log(), 20))
	}
	if werr != nil {
		return res, fmt.Errorf("measure processor: %w", werr)
	}
	return res, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func printTable(w io.Writer, rows []row, soak *Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmsgs/s\tvs ceiling\tstored rows/s\tCPU-s per M msgs\tvs ceiling client's CPU\tpeak RSS MiB\tdropped\tparse errors\t")
	for _, r := range rows {
		ratio, stored, cpu, rss := "-", "-", "-", "-"
		if r.ceiling > 0 && r.res.Duration > 0 {
			v := r.rate
			if r.stored > 0 {
				v = r.stored
			}
			ratio = fmt.Sprintf("%.0f%%", 100*v/r.ceiling)
		}
		if r.stored > 0 {
			stored = fmt.Sprintf("%.0f", r.stored)
		}
		if r.res.CPUPerM > 0 {
			cpu = fmt.Sprintf("%.2f", r.res.CPUPerM)
		}
		if r.res.PeakRSS > 0 {
			rss = fmt.Sprintf("%.1f", float64(r.res.PeakRSS)/(1<<20))
		}
		cpuRatio := "-"
		if r.cpuRef > 0 && r.res.CPUPerM > 0 {
			cpuRatio = fmt.Sprintf("%.2fx", r.res.CPUPerM/r.cpuRef)
		}
		drops, perrs := "-", "-"
		if r.res.Duration > 0 {
			drops, perrs = fmt.Sprint(r.res.Dropped), fmt.Sprint(r.res.ParseErr)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.name, r.rate, ratio, stored, cpu, cpuRatio, rss, drops, perrs)
	}
	tw.Flush()
	if soak != nil && len(soak.RSSAt) >= 20 {
		// RSS moves with every garbage collection; compare ranges, not points.
		early, late := soak.RSSAt[9:19], soak.RSSAt[len(soak.RSSAt)-10:]
		fmt.Fprintf(w, "soak RSS: %s MiB over seconds 10-19, %s MiB over the last 10 s (of %d); peak %.1f MiB\n",
			mibRange(early), mibRange(late), len(soak.RSSAt), float64(soak.PeakRSS)/(1<<20))
	}
}

// mibRange formats the smallest and largest of samples in MiB.
func mibRange(samples []int64) string {
	lo, hi := slices.Min(samples), slices.Max(samples)
	return fmt.Sprintf("%.1f-%.1f", float64(lo)/(1<<20), float64(hi)/(1<<20))
}

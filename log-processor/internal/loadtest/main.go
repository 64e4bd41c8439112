package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

const usage = `loadtest measures how fast a log pipeline moves messages.

Usage:
  loadtest ceiling --url ws://host:8080/ws/logs?flood [--url ...] [flags]
      Read and discard a WebSocket flood from every URL at once; print msgs/s.
      This is the most any consumer can take from that source.

  loadtest watch --api http://host:9090 [--pid N] [flags]
      Sample a running processor's /stats over a window; print msgs/s, drops
      and parse errors, and with --pid (Linux, same machine) its CPU-seconds
      per million messages and peak RSS.

  loadtest flood --processor bin/log-processor [flags]
      Start a flood server (pre-encoded generator-shaped frames, 64 per write,
      one connection) and measure the read-and-discard client, then the
      processor (memory storage), each with its CPU-seconds per million
      messages: the row to compare builds with.

  loadtest protocols --processor bin/log-processor [flags]
      Measure the processor (memory storage) taking each ingest protocol
      from one client sending the same request of 500 entries in a loop:
      POST /ingest NDJSON, OTLP/HTTP (protobuf, JSON), Elasticsearch _bulk,
      Loki push (protobuf with Snappy, JSON); each compared with NDJSON.

  loadtest ack --processor bin/log-processor [--postgres-dsn DSN] [flags]
      What durability costs: per storage (SQLite, PostgreSQL, the embedded
      bus), clients keeping 2 and then 8 POST /ingest requests of 500
      entries in flight, with --ack queued and --ack stored: entries per
      second and the requests' p50 and p99 latency.

  loadtest search [--entries 10000000] [--postgres-dsn DSN] [flags]
      Fill SQLite (and PostgreSQL) with a day of entries over 50 services,
      then without --search-index and with it: time a rare term's newest
      100 and a day's log volume through the LogQL engine, the ingest rate
      alone and while those queries run, and the table's and indexes' sizes.

  loadtest flood-server [--addr 127.0.0.1:0] [--per-write 64]
      Serve that flood at ws://ADDR/ws/logs until stopped.

  loadtest suite --generator bin/mock-log-generator --processor bin/log-processor [flags]
      Run the whole benchmark on this machine (what make bench does): a
      generator on a loopback port, the ceiling with 1 and 4 connections, the
      processor with memory storage, SQLite (and PostgreSQL with
      --postgres-dsn), a memory soak; print one table.

Only the addresses given are contacted.
`

// UsageError is a bad command line; exit status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

// ExitCode maps Main's error to an exit status.
func ExitCode(err error) int {
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// Main runs the loadtest command with args (without the program name).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &UsageError{errors.New("no command given")}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return nil
	}
	cmd, args := args[0], args[1:]
	fs := pflag.NewFlagSet("loadtest "+cmd, pflag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.SortFlags = false
	warmup := fs.Duration("warmup", 2*time.Second, "time before each measured window")
	duration := fs.Duration("duration", 10*time.Second, "length of each measured window")
	var run func() error
	switch cmd {
	case "ceiling":
		urls := fs.StringSlice("url", nil, "WebSocket URL(s) to read from (required)")
		fast := fs.Bool("fast", false, "stream messages into io.Discard instead of reading each into a new slice: measures the source, not a typical reader")
		run = func() error {
			if len(*urls) == 0 {
				return &UsageError{errors.New("ceiling: --url is required")}
			}
			r, err := Ceiling(ctx, *urls, *fast, *warmup, *duration)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "ceiling: %.0f msgs/s over %d connection(s)\n", r, len(*urls))
			return nil
		}
	case "watch":
		api := fs.String("api", "", "base URL of the processor's HTTP API (required)")
		pid := fs.Int("pid", 0, "the processor's process id, for CPU and memory (Linux, same machine)")
		run = func() error {
			if *api == "" {
				return &UsageError{errors.New("watch: --api is required")}
			}
			r, err := Watch(ctx, *api, *pid, *warmup, *duration)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "received %.0f msgs/s, stored %.0f rows/s over %v; dropped %d, parse errors %d\n",
				r.Rate, r.Stored, r.Duration.Round(time.Millisecond), r.Dropped, r.ParseErr)
			if *pid != 0 {
				fmt.Fprintf(stdout, "processor CPU %.2f s per million messages, peak RSS %.1f MiB\n", r.CPUPerM, float64(r.PeakRSS)/(1<<20))
			}
			return nil
		}
	case "flood-server":
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		perWrite := fs.Int("per-write", DefaultPerWrite, "frames per write system call")
		run = func() error {
			ln, err := net.Listen("tcp", *addr)
			if err != nil {
				return err
			}
			return ServeFlood(ctx, ln, *perWrite, slog.New(slog.NewJSONHandler(stderr, nil)))
		}
	case "flood":
		cfg := SuiteConfig{Out: stdout}
		fs.StringVar(&cfg.ProcessorBin, "processor", "bin/log-processor", "log-processor binary")
		run = func() error {
			cfg.Warmup, cfg.Duration = *warmup, *duration
			rows, err := cfg.floodRows(ctx)
			if err != nil {
				return err
			}
			printTable(stdout, rows, nil)
			return nil
		}
	case "protocols":
		cfg := SuiteConfig{Out: stdout}
		fs.StringVar(&cfg.ProcessorBin, "processor", "bin/log-processor", "log-processor binary")
		run = func() error {
			cfg.Warmup, cfg.Duration = *warmup, *duration
			rows, err := cfg.protocolRows(ctx)
			if err != nil {
				return err
			}
			printTable(stdout, rows, nil)
			return nil
		}
	case "ack":
		cfg := SuiteConfig{Out: stdout}
		fs.StringVar(&cfg.ProcessorBin, "processor", "bin/log-processor", "log-processor binary")
		fs.StringVar(&cfg.PostgresDSN, "postgres-dsn", "", "also measure PostgreSQL at this database (its logs table gets rows)")
		run = func() error {
			return inWorkDir(&cfg, *warmup, *duration, func() error {
				rows, err := cfg.ackRows(ctx)
				if err != nil {
					return err
				}
				printAckTable(stdout, rows)
				return nil
			})
		}
	case "search":
		cfg := SearchConfig{Out: stdout}
		fs.IntVar(&cfg.Entries, "entries", 10_000_000, "rows loaded: a day of timestamps up to now")
		fs.IntVar(&cfg.Services, "services", 50, "services they are spread over")
		fs.StringVar(&cfg.PostgresDSN, "postgres-dsn", "", "also measure PostgreSQL at this database (its logs table is emptied and filled)")
		run = func() error {
			if cfg.Entries < 1000 || cfg.Services < 1 {
				return &UsageError{errors.New("search: --entries must be 1000 or more and --services positive")}
			}
			dir, err := os.MkdirTemp("", "loadtest-search")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			cfg.Dir, cfg.Duration = dir, *duration
			return RunSearch(ctx, cfg)
		}
	case "suite":
		cfg := SuiteConfig{Out: stdout}
		fs.StringVar(&cfg.GeneratorBin, "generator", "bin/mock-log-generator", "mock-log-generator binary")
		fs.StringVar(&cfg.ProcessorBin, "processor", "bin/log-processor", "log-processor binary")
		fs.DurationVar(&cfg.Soak, "soak", 60*time.Second, "length of the memory soak (0 = skip)")
		fs.IntSliceVar(&cfg.Conns, "conns", []int{1, 4}, "connection counts to measure")
		fs.StringVar(&cfg.NATSServer, "nats-server", "", "nats-server binary: also measure the JetStream bus (a fresh server per row, on loopback)")
		fs.StringVar(&cfg.PostgresDSN, "postgres-dsn", "", "also measure PostgreSQL at this database (its logs table gets rows)")
		fs.BoolVar(&cfg.StatsServices, "stats-services", true, "stream a million services through each backend and time /stats")
		run = func() error {
			return inWorkDir(&cfg, *warmup, *duration, func() error { return RunSuite(ctx, cfg) })
		}
	default:
		return &UsageError{fmt.Errorf("unknown command %q (want ceiling, watch, flood, flood-server, protocols, ack, search or suite; see --help)", cmd)}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return &UsageError{err}
	}
	if fs.NArg() > 0 {
		return &UsageError{fmt.Errorf("unexpected argument %q", strings.Join(fs.Args(), " "))}
	}
	if *duration <= 0 || *warmup < 0 {
		return &UsageError{errors.New("--duration must be positive and --warmup not negative")}
	}
	return run()
}

// inWorkDir runs f with cfg's work directory a new temporary one, removed
// after, and its windows set.
func inWorkDir(cfg *SuiteConfig, warmup, duration time.Duration, f func() error) error {
	dir, err := os.MkdirTemp("", "loadtest")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.WorkDir, cfg.Warmup, cfg.Duration = dir, warmup, duration
	return f()
}

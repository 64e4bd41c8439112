package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/proc"
)

// ackSetup is one storage (and queue) the durability rows measure.
type ackSetup struct {
	name string
	args func(dir string) []string
}

// ackRow is one durability measurement: entries per second taken, and
// the requests' latency.
type ackRow struct {
	name     string
	rate     float64 // entries answered 200 per second
	vs       float64 // the same setup's --ack queued rate
	p50, p99 time.Duration
	requests int
}

// ackSetups are the storages the durability rows run against.
func (cfg SuiteConfig) ackSetups() []ackSetup {
	setups := []ackSetup{
		{"sqlite", func(dir string) []string {
			return []string{"--storage", "sqlite", "--dsn", filepath.Join(dir, "ack.db")}
		}},
	}
	if cfg.PostgresDSN != "" {
		setups = append(setups, ackSetup{"postgres", func(string) []string {
			return []string{"--storage", "postgres", "--dsn", cfg.PostgresDSN}
		}})
	}
	embedded := func(dir string) []string {
		return []string{"--storage", "sqlite", "--dsn", filepath.Join(dir, "ack.db"), "--bus", "embedded", "--data-dir", filepath.Join(dir, "data")}
	}
	setups = append(setups, ackSetup{"embedded bus + sqlite", embedded},
		// What syncing every write costs: once a second instead.
		ackSetup{"embedded bus (sync 1s) + sqlite", func(dir string) []string {
			return append(embedded(dir), "--bus-sync-interval", "1s")
		}})
	return setups
}

// ackRows measures what durability costs: per storage, clients keeping 2
// and then 8 requests of perRequest entries in flight over HTTP, with
// --ack queued and with --ack stored, each compared with queued.
func (cfg SuiteConfig) ackRows(ctx context.Context) ([]ackRow, error) {
	body := protocolBodies(time.Now())[0] // POST /ingest, NDJSON
	var rows []ackRow
	for _, s := range cfg.ackSetups() {
		for _, inflight := range []int{2, 8} {
			var queued float64
			for _, ack := range []string{"queued", "stored"} {
				fmt.Fprintf(cfg.Out, "# processor, %s, --ack %s, %d requests of %d entries in flight\n", s.name, ack, inflight, perRequest)
				r, err := cfg.ackRun(ctx, s, ack, inflight, body)
				if err != nil {
					return nil, fmt.Errorf("%s --ack %s: %w", s.name, ack, err)
				}
				if ack == "queued" {
					queued = r.rate
				}
				r.vs = queued
				rows = append(rows, r)
			}
		}
	}
	return rows, nil
}

// ackRun starts a processor on a fresh directory and measures it while
// inflight clients post body in a loop.
func (cfg SuiteConfig) ackRun(ctx context.Context, s ackSetup, ack string, inflight int, body protocolBody) (ackRow, error) {
	dir, err := os.MkdirTemp(cfg.WorkDir, "ack")
	if err != nil {
		return ackRow{}, err
	}
	defer os.RemoveAll(dir)
	args := append([]string{"--ingest-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "json", "--ack", ack}, s.args(dir)...)
	p, err := proc.Start(cfg.ProcessorBin, args...)
	if err != nil {
		return ackRow{}, fmt.Errorf("start processor: %w", err)
	}
	defer p.Stop(30 * time.Second)
	addr, err := ingestAddr(p)
	if err != nil {
		return ackRow{}, err
	}
	url := "http://" + addr + body.path
	var (
		mu        sync.Mutex
		latencies []time.Duration
		entries   int
		sendErr   error
	)
	window := make(chan struct{}) // closed when the measured window starts
	cctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for range inflight {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
			defer client.CloseIdleConnections()
			for cctx.Err() == nil {
				start := time.Now()
				code, err := post(cctx, client, url, body)
				if cctx.Err() != nil {
					return
				}
				if err == nil && code >= 300 && code != http.StatusServiceUnavailable && code != http.StatusTooManyRequests {
					err = fmt.Errorf("%s: status %d", url, code)
				}
				if err != nil {
					mu.Lock()
					sendErr = err
					mu.Unlock()
					return
				}
				select {
				case <-window:
				default:
					continue
				}
				if code == http.StatusOK {
					mu.Lock()
					latencies = append(latencies, time.Since(start))
					entries += perRequest
					mu.Unlock()
				}
			}
		})
	}
	t := time.NewTimer(cfg.Warmup)
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	close(window)
	began := time.Now()
	wg.Wait()
	elapsed := time.Since(began)
	if sendErr != nil {
		return ackRow{}, sendErr
	}
	if len(latencies) == 0 {
		return ackRow{}, fmt.Errorf("no request answered in the window\n%s", tail(p.Log(), 20))
	}
	slices.Sort(latencies)
	q := func(f float64) time.Duration { return latencies[int(f*float64(len(latencies)-1))] }
	return ackRow{name: fmt.Sprintf("%s, %d in flight, --ack %s", s.name, inflight, ack),
		rate: float64(entries) / elapsed.Seconds(), p50: q(0.5), p99: q(0.99), requests: len(latencies)}, nil
}

// post sends body once and returns the status.
func post(ctx context.Context, client *http.Client, url string, body protocolBody) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body.body))
	if err != nil {
		return 0, err
	}
	for k, v := range body.header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// printAckTable writes the durability rows.
func printAckTable(w io.Writer, rows []ackRow) {
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pushed over HTTP, 500 entries a request\tentries/s\tvs --ack queued\tp50 ms\tp99 ms\trequests\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f%%\t%.1f\t%.1f\t%d\t\n", r.name, r.rate, 100*r.rate/r.vs,
			float64(r.p50.Microseconds())/1000, float64(r.p99.Microseconds())/1000, r.requests)
	}
	_ = tw.Flush()
}

package loadtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/proc"
	"github.com/logpipeline/log-processing-service/log-processor/internal/tcpproxy"
)

// hostileQuery makes the generator flood frames just under the processor's
// default 1 MiB frame limit, each a valid entry with a 60,000-byte message
// (near the 64 KiB field bound) and 980,000 bytes of padding around it.
const hostileQuery = "flood&pad=980000&message_bytes=60000"

// hostileRow floods a processor with near-limit frames and reports its
// peak RSS. With dsn set, storage is PostgreSQL behind a proxy that is cut
// once the processor has started: a failing database.
func (cfg SuiteConfig) hostileRow(ctx context.Context, gen *proc.Process, dsn string) (row, error) {
	name := "hostile: 1 MiB frames, 60 KB messages, memory storage"
	var extra []string
	var proxy *tcpproxy.Proxy
	if dsn != "" {
		u, err := url.Parse(dsn)
		if err != nil {
			return row{}, err
		}
		if proxy, err = tcpproxy.New(u.Host); err != nil {
			return row{}, err
		}
		defer proxy.Close()
		u.Host = proxy.Addr
		extra = []string{"--storage", "postgres", "--dsn", u.String()}
		name = "hostile: 1 MiB frames, 60 KB messages, PostgreSQL failing"
	}
	args := append([]string{"--urls", gen.WSURL(hostileQuery), "--http-addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
	p, err := proc.Start(cfg.ProcessorBin, args...)
	if err != nil {
		return row{}, fmt.Errorf("start processor: %w", err)
	}
	if proxy != nil {
		proxy.SetDown(true)
	}
	res, werr := Watch(ctx, "http://"+p.Addr, p.Pid(), cfg.Warmup, cfg.Duration)
	// A failing database cannot be drained: the processor gives up after
	// --shutdown-timeout and exits 1, reporting what it lost.
	if err := p.Stop(30 * time.Second); err != nil && proxy == nil {
		return row{}, fmt.Errorf("processor exit: %v\n%s", err, tail(p.Log(), 20))
	}
	if werr != nil {
		return row{}, fmt.Errorf("measure processor: %w", werr)
	}
	return row{name: name, rate: res.Rate, res: res}, nil
}

// statsRow streams a million distinct service names through a processor
// with the given storage flags, then times /stats.
func (cfg SuiteConfig) statsRow(ctx context.Context, gen *proc.Process, backend string, extra ...string) (string, error) {
	const services = 1_000_000
	args := append([]string{"--urls", gen.WSURL(fmt.Sprintf("flood&services=%d&count=%d", services, services)),
		"--http-addr", "127.0.0.1:0", "--log-format", "json", "--submit-timeout", "10s"}, extra...)
	p, err := proc.Start(cfg.ProcessorBin, args...)
	if err != nil {
		return "", fmt.Errorf("start processor: %w", err)
	}
	defer p.Stop(30 * time.Second)
	api := "http://" + p.Addr
	deadline := time.Now().Add(5 * time.Minute)
	for {
		s, err := ReadStats(ctx, api)
		if err != nil {
			return "", err
		}
		if s.Stored >= services {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: stored %d of %d after 5 minutes", backend, s.Stored, services)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
	var took []time.Duration
	size := 0
	for range 20 {
		start := time.Now()
		resp, err := http.Get(api + "/stats")
		if err != nil {
			return "", err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return "", err
		}
		took = append(took, time.Since(start))
		size = len(b)
		if !strings.Contains(string(b), `"(other)"`) {
			return "", fmt.Errorf("%s: /stats has no (other) bucket", backend)
		}
	}
	slices.Sort(took)
	return fmt.Sprintf("/stats with 1M services, %s: %d bytes, median %v, max %v (20 requests)",
		backend, size, took[len(took)/2].Round(10*time.Microsecond), took[len(took)-1].Round(10*time.Microsecond)), nil
}

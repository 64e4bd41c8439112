package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/proc"
)

// pushRow measures the processor with memory storage receiving pushed
// newline-delimited JSON from the generator (--push-to) over HTTP or
// WebSocket, as fast as the generator sends it; dialed is the dialed
// source's rate, shown as the ceiling for comparison.
func (cfg SuiteConfig) pushRow(ctx context.Context, overWS bool, dialed float64) (row, error) {
	p, err := proc.Start(cfg.ProcessorBin, "--ingest-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--log-format", "json")
	if err != nil {
		return row{}, fmt.Errorf("start processor: %w", err)
	}
	defer p.Stop(30 * time.Second)
	addr, err := ingestAddr(p)
	if err != nil {
		return row{}, err
	}
	target, name := "http://"+addr+"/ingest", "processor, memory, pushed over HTTP (500 lines per POST), vs dialed"
	if overWS {
		target, name = "ws://"+addr+"/ws/ingest", "processor, memory, pushed over WebSocket (500 lines per frame), vs dialed"
	}
	gen, err := proc.Start(cfg.GeneratorBin, "--url", "127.0.0.1:0", "--log-format", "json",
		"--push-to", target, "--push-params", "flood", "--push-batch", "500")
	if err != nil {
		return row{}, fmt.Errorf("start pushing generator: %w", err)
	}
	res, werr := Watch(ctx, "http://"+p.Addr, p.Pid(), cfg.Warmup, cfg.Duration)
	gen.Stop(10 * time.Second)
	if err := p.Stop(30 * time.Second); err != nil {
		return row{}, fmt.Errorf("processor exit: %v\n%s", err, tail(p.Log(), 20))
	}
	if werr != nil {
		return row{}, fmt.Errorf("measure processor: %w", werr)
	}
	return row{name: name, rate: res.Rate, ceiling: dialed, res: res}, nil
}

// ingestAddr waits for the processor's "ingest listening" line and returns
// its address.
func ingestAddr(p *proc.Process) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for line := range strings.SplitSeq(p.Log(), "\n") {
			var m struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "ingest listening" && m.Addr != "" {
				return m.Addr, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "", fmt.Errorf("the processor did not log its ingest address\n%s", tail(p.Log(), 20))
}

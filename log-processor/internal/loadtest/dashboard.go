package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/proc"
)

// chromium returns the path of a Chromium or Chrome, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// dashboardRow measures the processor as the memory row does, with the
// dashboard open in headless Chromium (its tail following); alone is the
// rate without it. ok is false when no Chromium is installed.
func (cfg SuiteConfig) dashboardRow(ctx context.Context, urls []string, alone float64) (r row, ok bool, err error) {
	chrome := chromium()
	if chrome == "" {
		return row{}, false, nil
	}
	p, err := proc.Start(cfg.ProcessorBin, "--urls", strings.Join(urls, ","), "--http-addr", "127.0.0.1:0", "--log-format", "json")
	if err != nil {
		return row{}, false, fmt.Errorf("start processor: %w", err)
	}
	defer p.Stop(30 * time.Second)
	dir, err := os.MkdirTemp("", "logproc-chromium")
	if err != nil {
		return row{}, false, err
	}
	defer os.RemoveAll(dir)
	api := "http://" + p.Addr
	cmd := exec.CommandContext(ctx, chrome, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir="+dir, api+"/")
	if err := cmd.Start(); err != nil {
		return row{}, false, fmt.Errorf("start chromium: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var s struct {
			TailClients int `json:"tail_clients"`
		}
		if resp, err := http.Get(api + "/stats"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&s)
			resp.Body.Close()
		}
		if s.TailClients > 0 {
			break
		}
		if time.Now().After(deadline) {
			return row{}, false, fmt.Errorf("the dashboard in chromium did not start following the tail within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	res, err := Watch(ctx, api, p.Pid(), cfg.Warmup, cfg.Duration)
	if err != nil {
		return row{}, false, fmt.Errorf("measure processor: %w", err)
	}
	return row{name: "processor, memory, 1 conn, dashboard open in headless Chromium, vs without", rate: res.Rate, ceiling: alone, res: res}, true, nil
}

package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium returns the path of a Chromium or Chrome, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestDashboardInBrowser opens the dashboard in headless Chromium against
// a generator and a processor, waits until the chart, the counters and the
// tail show data that agrees with /stats, saves a screenshot, and fails on
// any JavaScript error. It skips when no Chromium is installed, unless
// LOGPROC_REQUIRE_BROWSER is set (CI sets it). LOGPROC_SCREENSHOT names
// where the screenshot goes (the README's is taken so).
func TestDashboardInBrowser(t *testing.T) {
	chrome := chromium()
	if chrome == "" {
		if os.Getenv("LOGPROC_REQUIRE_BROWSER") != "" {
			t.Fatal("no Chromium found, and LOGPROC_REQUIRE_BROWSER is set")
		}
		t.Skip("no Chromium found: install Debian's chromium package to run the dashboard test")
	}
	gen := startGenerator(t)
	p := startProcessor(t, "--urls", "shop="+gen.WSURL("rate=300&seed=1")+
		",billing="+gen.WSURL("rate=120&seed=2&malformed_pct=3"), "--ingest-addr", "127.0.0.1:0")
	ingestLines(t, p.ingest, []string{logLine("ERROR", "web-shop", "checkout failed in the browser")})

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	// Every message of the page's console, gathered as it comes.
	var mu sync.Mutex
	var jsErrors []string
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				mu.Lock()
				jsErrors = append(jsErrors, m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(p.api+"/"), chromedp.WaitVisible("#chart")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	points := 5 // seconds of chart; the README's screenshot waits for more (LOGPROC_SCREENSHOT_POINTS)
	if n, err := strconv.Atoi(os.Getenv("LOGPROC_SCREENSHOT_POINTS")); err == nil && n > points {
		points = n
	}
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`Number(document.getElementById("chart").dataset.points) >= `+strconv.Itoa(points)+` &&
		Number(document.getElementById("k-received").dataset.value) > 0 &&
		document.querySelectorAll("#tail li").length >= 5 &&
		document.querySelectorAll("#sources tbody tr").length === 3`, chromedp.WithPollingTimeout(time.Duration(points+60)*time.Second)))
	if err != nil {
		t.Fatalf("the dashboard did not show live data: %v\n%s", err, p.stderr)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("k-received").dataset.value`))
	if err != nil {
		t.Fatal(err)
	}
	connected, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#sources tbody .pill.connected").length`))
	if err != nil {
		t.Fatal(err)
	}
	var s stats
	getJSON(t, p.api+"/stats", &s)
	n, _ := strconv.ParseUint(shown, 10, 64)
	if n == 0 || n > s.Received {
		t.Errorf("the page shows %d received, /stats says %d (taken after)", n, s.Received)
	}
	if connected != 2 {
		t.Errorf("%d sources shown connected, want the 2 dialed ones", connected)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("LOGPROC_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "dashboard.png")
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
	mu.Lock()
	defer mu.Unlock()
	if len(jsErrors) > 0 {
		t.Fatalf("JavaScript errors on the dashboard: %q", jsErrors)
	}
}

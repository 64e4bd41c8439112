package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/logpipeline/log-processing-service/log-processor/internal/bus/natstest"
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
	chrome := needChromium(t)
	gen := startGenerator(t)
	p := startProcessor(t, "--urls", "shop="+gen.WSURL("rate=300&seed=1")+
		",billing="+gen.WSURL("rate=120&seed=2&malformed_pct=3"), "--ingest-addr", "127.0.0.1:0")
	ingestLines(t, p.ingest, []string{logLine("ERROR", "web-shop", "checkout failed in the browser")})
	ctx, jsErrors := openDashboard(t, chrome, p.api)
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
	if errs := jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors on the dashboard: %q", errs)
	}
}

// needChromium returns Chromium's path, or skips the test without one
// (fails it when LOGPROC_REQUIRE_BROWSER is set).
func needChromium(t *testing.T) string {
	t.Helper()
	chrome := chromium()
	if chrome == "" {
		if os.Getenv("LOGPROC_REQUIRE_BROWSER") != "" {
			t.Fatal("no Chromium found, and LOGPROC_REQUIRE_BROWSER is set")
		}
		t.Skip("no Chromium found: install Debian's chromium package to run the dashboard test")
	}
	return chrome
}

// openDashboard opens api's dashboard in headless Chromium; jsErrors
// returns the console errors and exceptions seen so far. The browser
// closes when the test ends.
func openDashboard(t *testing.T, chrome, api string) (ctx context.Context, jsErrors func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel = chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancel)
	// Every message of the page's console, gathered as it comes.
	var mu sync.Mutex
	var errs []string
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			// A 503 from /readyz is the page reading a state it shows
			// (a source not connected yet), though Chromium logs it.
			notReady := strings.HasSuffix(m.URL, "/readyz") && strings.Contains(m.String(), "status of 503")
			if (m.Type == chromedp.ConsoleError || m.IsException()) && !notReady {
				mu.Lock()
				errs = append(errs, m.String()+" "+m.URL)
				mu.Unlock()
			}
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(api+"/"), chromedp.WaitVisible("#chart")); err != nil {
		t.Fatalf("open the dashboard: %v", err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(errs)
	}
}

// TestDashboardOnTheBus: with JetStream and a cluster, the dashboard shows
// the bus, the cluster, and which processor reads each source.
func TestDashboardOnTheBus(t *testing.T) {
	chrome := needChromium(t)
	srv := natstest.Start(t)
	gen := startGenerator(t)
	urls := "a=" + gen.WSURL("rate=100&seed=1") + ",b=" + gen.WSURL("rate=100&seed=2")
	var procs []*processor
	for _, inst := range []string{"p1", "p2"} {
		procs = append(procs, startProcessor(t, "--urls", urls, "--bus", "jetstream", "--nats-url", srv.URL(),
			"--cluster", "fleet", "--lease-ttl", "3s", "--instance", inst))
	}
	ctx, jsErrors := openDashboard(t, chrome, procs[1].api)
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`!document.getElementById("busline").hidden &&
		document.getElementById("busdetail").textContent.includes("cluster fleet: 2 members") &&
		document.querySelectorAll("#sources tbody .pill.connected").length === 1 &&
		[...document.querySelectorAll("#sources tbody .pill")].some((e) => e.textContent.startsWith("read by p1-"))`,
		chromedp.WithPollingTimeout(60*time.Second)))
	if err != nil {
		line, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("header").textContent`))
		t.Fatalf("the dashboard did not show the bus and the cluster: %v\nheader: %s", err, line)
	}
	if errs := jsErrors(); len(errs) > 0 {
		t.Fatalf("JavaScript errors on the dashboard: %q", errs)
	}
}

// TestDashboardSearch: the dashboard's search box runs a LogQL query
// through the Loki API: the newest matches with the search term marked,
// the log volume by level as bars, a click on a bar narrowing the range,
// and a query outside the subset answered with its error, not a crash.
func TestDashboardSearch(t *testing.T) {
	chrome := needChromium(t)
	p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--storage", "sqlite", "--dsn", filepath.Join(t.TempDir(), "logs.db"))
	var lines []string
	for i := range 30 {
		lv, msg := "INFO", "order placed"
		if i%3 == 0 {
			lv, msg = "ERROR", "checkout failed: card <declined>"
		}
		lines = append(lines, logLine(lv, "web-shop", msg))
	}
	ingestLines(t, p.ingest, lines)
	ctx, jsErrors := openDashboard(t, chrome, p.api)
	run := func(query string) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
			document.getElementById("q").value = `+strconv.Quote(query)+`;
			document.getElementById("results").innerHTML = "";
			document.getElementById("search-form").requestSubmit();
			return true })()`))
		if err != nil {
			t.Fatal(err)
		}
	}
	run(`{service="web-shop"} |= "checkout failed"`)
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelectorAll("#results li").length === 10 &&
		document.querySelectorAll("#results li mark").length === 10 &&
		Number(document.getElementById("volume").dataset.bars) >= 1`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("results").innerHTML + document.getElementById("search-error").textContent`))
		t.Fatalf("the search did not show the 10 matches marked and the volume: %v\n%s", err, html)
	}
	first, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#results li").innerHTML`))
	if err != nil || !strings.Contains(first, "<mark>checkout failed</mark>: card &lt;declined&gt;") || !strings.Contains(first, "ERROR") {
		t.Errorf("first result %q: want the match marked and the rest escaped (%v)", first, err)
	}
	// A click on the last bar (the newest) narrows the range to it.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const c = document.getElementById("volume"), r = c.getBoundingClientRect();
		const b = volume.bars.reduce((a, b) => (b.t > a.t ? b : a));
		c.dispatchEvent(new MouseEvent("click", { clientX: r.left + (b.x0 + b.x1) / 2, clientY: r.top + 60, bubbles: true }));
		return true })()`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("search-state").textContent.includes("narrowed to") &&
		document.querySelectorAll("#results li mark").length >= 1`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("search-state").textContent`))
		t.Errorf("a click on a bar did not narrow the range: %v (%s)", err, state)
	}
	run(`{service="web-shop"} | line_format "x"`)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!document.getElementById("search-error").hidden &&
		document.getElementById("search-error").textContent.includes("line_format")`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Errorf("a query outside the subset did not show its error: %v", err)
	}
	// The browser logs the refused queries' 400s itself (the logs and the
	// volume): expected, not the page's errors.
	errs := slices.DeleteFunc(jsErrors(), func(e string) bool {
		return strings.Contains(e, "status of 400") && strings.Contains(e, "/loki/api/v1/query_range?") && strings.Contains(e, "line_format")
	})
	if len(errs) > 0 {
		t.Fatalf("JavaScript errors on the dashboard: %q", errs)
	}
}

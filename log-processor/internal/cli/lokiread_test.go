package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres/pgtest"
)

// TestGrafanaLokiDataSource makes the calls Grafana's Loki data source
// makes (read from its source: the health check's instant query, the
// detected-labels probe, labels and values for the query builder, a logs
// query, the log-volume query, series, the query-stats estimate) against a
// processor on each backend, with the API token sent as Grafana's Basic
// auth sends it, and checks the answers' shapes and contents.
func TestGrafanaLokiDataSource(t *testing.T) {
	for _, backend := range []string{"memory", "sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			args := []string{"--ingest-addr", "127.0.0.1:0", "--storage", backend, "--api-token", "grafana-secret", "--query-align-step"}
			switch backend {
			case "sqlite":
				args = append(args, "--dsn", filepath.Join(t.TempDir(), "logs.db"), "--search-index")
			case "postgres":
				args = append(args, "--dsn", pgtest.DSN(t), "--search-index")
			}
			p := startProcessor(t, args...)
			now := time.Now()
			var body strings.Builder
			var stamps []int64
			for i := range 40 {
				level, svc := "INFO", "grafana-checkout"
				if i%4 == 0 {
					level = "ERROR"
				}
				if i%2 == 1 {
					svc = "grafana-search"
				}
				msg := fmt.Sprintf("request %d served", i)
				if i%5 == 0 {
					msg = fmt.Sprintf("upstream timeout on request %d", i)
				}
				stamps = append(stamps, now.Add(-time.Duration(40-i)*5*time.Second).UnixMilli()) // over the last 200 s
				fmt.Fprintf(&body, `{"timestamp":%d,"level":%q,"service":%q,"message":%q,"user_id":"u-%d"}`+"\n",
					stamps[i], level, svc, msg, i%3)
			}
			// counted is how many entries a range metric query from start
			// to end sees when its steps' windows tile the range: those
			// after the first window's start and up to the last step, both
			// moved back to a multiple of the step (--query-align-step).
			counted := func(start, end time.Time, step time.Duration) int {
				s, e := start.UnixMilli(), end.UnixMilli()
				s, e = s-s%step.Milliseconds(), e-e%step.Milliseconds()
				n := 0
				for _, ts := range stamps {
					if ts > s-step.Milliseconds() && ts <= e {
						n++
					}
				}
				return n
			}
			resp, err := http.Post("http://"+p.ingest+"/ingest", "application/x-ndjson", strings.NewReader(body.String()))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("POST /ingest: %d", resp.StatusCode)
			}

			call := func(path string, q url.Values, v any) int {
				t.Helper()
				req, _ := http.NewRequest("GET", p.api+"/loki/api/v1/"+path+"?"+q.Encode(), nil)
				req.SetBasicAuth("grafana", "grafana-secret")
				req.Header.Set("X-Query-Tags", "Source=grafana")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if v != nil && resp.StatusCode == http.StatusOK {
					if err := json.Unmarshal(b, v); err != nil {
						t.Fatalf("%s: %v: %s", path, err, b)
					}
				}
				return resp.StatusCode
			}
			ns := func(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }
			rng := url.Values{"start": {ns(now.Add(-time.Hour))}, "end": {ns(now)}}
			with := func(kv ...string) url.Values {
				v := url.Values{"start": rng["start"], "end": rng["end"]}
				for i := 0; i+1 < len(kv); i += 2 {
					v.Set(kv[i], kv[i+1])
				}
				return v
			}

			// Save & test: vector(1)+vector(1) from 1s to 4s, instant.
			var health struct {
				Status string
				Data   struct {
					ResultType string
					Result     []struct{ Value [2]any }
				}
			}
			if code := call("query", url.Values{"query": {"vector(1)+vector(1)"}, "time": {"4000000000"}}, &health); code != 200 ||
				health.Data.ResultType != "vector" || len(health.Data.Result) != 1 || health.Data.Result[0].Value[1] != "2" {
				t.Fatalf("health check: %d %+v", code, health)
			}
			req, _ := http.NewRequest("GET", p.api+"/loki/api/v1/labels", nil)
			if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("without the token: %v %v, want 401", resp.Status, err)
			} else {
				resp.Body.Close()
			}

			var detected map[string]any
			if code := call("detected_labels", rng, &detected); code != 200 || fmt.Sprint(detected) != "map[detectedLabels:[]]" {
				t.Errorf("detected_labels: %d %v", code, detected)
			}
			var labels struct{ Data []string }
			if code := call("labels", rng, &labels); code != 200 || strings.Join(labels.Data, ",") != "level,service,source" {
				t.Errorf("labels: %d %v", code, labels)
			}
			if code := call("label/service/values", rng, &labels); code != 200 || strings.Join(labels.Data, ",") != "grafana-checkout,grafana-search" {
				t.Errorf("service values: %d %v", code, labels)
			}

			// Explore's logs query.
			var streams struct {
				Data struct {
					ResultType string
					Result     []struct {
						Stream map[string]string
						Values [][2]string
					}
				}
			}
			q := `{service="grafana-checkout"} |= "timeout" | json | user_id=~"u-[01]"`
			if code := call("query_range", with("query", q, "limit", "1000", "direction", "backward", "step", "1000ms"), &streams); code != 200 ||
				streams.Data.ResultType != "streams" {
				t.Fatalf("logs query: %d", code)
			}
			got := 0
			for _, s := range streams.Data.Result {
				for _, v := range s.Values {
					got++
					var e struct {
						Message string
						Service string
					}
					if json.Unmarshal([]byte(v[1]), &e) != nil || !strings.Contains(e.Message, "timeout") || e.Service != "grafana-checkout" || s.Stream["user_id"] == "u-2" {
						t.Errorf("logs query: %v in %v", v, s.Stream)
					}
				}
			}
			want := 0 // checkout (even i), timeout (i%5 == 0), u-0 or u-1 (i%3 < 2)
			for i := 0; i < 40; i += 10 {
				if i%3 < 2 {
					want++
				}
			}
			if got != want {
				t.Errorf("logs query: %d entries, want %d", got, want)
			}

			// Explore's log volume, 10s steps over the last minute, and 1m
			// steps over the last five (counted by minute in SQL stores).
			var volume struct {
				Data struct {
					ResultType string
					Result     []struct {
						Metric map[string]string
						Values [][2]any
					}
				}
			}
			for _, step := range []time.Duration{10 * time.Second, time.Minute} {
				start := now.Add(-5 * step)
				vq := fmt.Sprintf(`sum by (level, detected_level) (count_over_time({service=~"grafana-.+"} | drop __error__[%s]))`, step)
				if code := call("query_range", url.Values{"query": {vq}, "start": {ns(start)}, "end": {ns(now)}, "step": {fmt.Sprint(step.Milliseconds()) + "ms"}}, &volume); code != 200 ||
					volume.Data.ResultType != "matrix" || len(volume.Data.Result) > 2 {
					t.Fatalf("log volume by %s: %d %+v", step, code, volume)
				}
				total := 0
				for _, s := range volume.Data.Result {
					for _, v := range s.Values {
						if sec, _ := v[0].(float64); int64(sec)%int64(step.Seconds()) != 0 {
							t.Errorf("log volume by %s: a point at %v, not on a multiple of the step", step, v[0])
						}
						n, _ := strconv.Atoi(v[1].(string))
						total += n
					}
				}
				if want := counted(start, now, step); total != want || want == 0 { // the steps' windows tile the range: each entry counted once
					t.Errorf("log volume by %s adds up to %d, want %d", step, total, want)
				}
			}

			var series struct{ Data []map[string]string }
			if code := call("series", with("match[]", `{level="ERROR"}`), &series); code != 200 || len(series.Data) != 1 || series.Data[0]["service"] != "grafana-checkout" {
				t.Errorf("series: %d %v", code, series)
			}
			var stats map[string]int
			if code := call("index/stats", with("query", `{service="grafana-search"}`), &stats); code != 200 || len(stats) != 4 {
				t.Errorf("index/stats: %d %v", code, stats)
			}
			if code := call("query_range", with("query", `{service="x"} | unpack`), nil); code != 400 {
				t.Errorf("outside the subset: %d, want 400", code)
			}
			if err := p.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

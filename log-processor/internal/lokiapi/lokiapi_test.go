package lokiapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/log-processor/internal/logql"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/memory"
	"github.com/logpipeline/log-processing-service/log-processor/internal/tail"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// server serves the API over a memory store holding entries, one a
// second up to now, alternating checkout INFO and search ERROR.
func server(t *testing.T, n int) (*httptest.Server, *tail.Hub, *memory.Store, time.Time) {
	t.Helper()
	return serverWith(t, n, Config{})
}

// serverWith is server with cfg.
func serverWith(t *testing.T, n int, cfg Config) (*httptest.Server, *tail.Hub, *memory.Store, time.Time) {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	store := memory.New(memory.Config{})
	var es []models.LogEntry
	for i := range n {
		e := models.LogEntry{Timestamp: now.Add(-time.Duration(n-i) * time.Second).UnixMilli(), Level: "INFO", Service: "checkout",
			Message: fmt.Sprintf("order %d placed", i), Source: "push:t", Attrs: `{"user_id":"u-1"}`}
		if i%2 == 1 {
			e.Level, e.Service, e.Message = "ERROR", "search", fmt.Sprintf("search %d timeout", i)
		}
		es = append(es, e)
	}
	if err := store.Save(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	hub := tail.NewHub(tail.Config{MaxClients: 2})
	done := make(chan struct{})
	cfg.Done = done
	a := New(store, logql.Limits{}, hub, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	mux := http.NewServeMux()
	for path, h := range map[string]http.HandlerFunc{
		PathQueryRange: a.QueryRange, PathQuery: a.Query, PathLabels: a.Labels, PathLabelValues: a.LabelValues,
		PathSeries: a.Series, PathTail: a.Tail, "/loki/api/v1/index/stats": a.IndexStats, "/loki/api/v1/index/volume": a.Volume,
		"/loki/api/v1/detected_labels": a.DetectedLabels,
	} {
		mux.HandleFunc(path, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { close(done); srv.Close() })
	return srv, hub, store, now
}

func get(t *testing.T, srv *httptest.Server, path string, q url.Values) (int, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func ns(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

func TestQueryRange(t *testing.T) {
	srv, _, _, now := server(t, 20)
	hour := func(q string, extra ...string) url.Values {
		v := url.Values{"query": {q}, "start": {ns(now.Add(-time.Hour))}, "end": {ns(now)}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	code, body := get(t, srv, PathQueryRange, hour(`{service="search"} |= "timeout"`, "limit", "3", "direction", "backward"))
	var streams struct {
		Status string
		Data   struct {
			ResultType string
			Result     []struct {
				Stream map[string]string
				Values [][2]string
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &streams); code != 200 || err != nil {
		t.Fatalf("%d %s: %v", code, body, err)
	}
	r := streams.Data.Result
	if streams.Status != "success" || streams.Data.ResultType != "streams" || len(r) != 1 || len(r[0].Values) != 3 ||
		r[0].Stream["service"] != "search" || r[0].Stream["level"] != "ERROR" {
		t.Fatalf("streams = %s", body)
	}
	if r[0].Values[0][0] != ns(now.Add(-time.Second)) || !strings.Contains(r[0].Values[0][1], `"message":"search 19 timeout"`) {
		t.Errorf("newest value = %v, want entry 19 at now-1s as its JSON", r[0].Values[0])
	}

	code, body = get(t, srv, PathQueryRange, hour(`sum by (level) (count_over_time({service=~".+"}[10s]))`, "step", "10000ms"))
	var matrix struct {
		Data struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Values [][2]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &matrix); code != 200 || err != nil || matrix.Data.ResultType != "matrix" || len(matrix.Data.Result) != 2 {
		t.Fatalf("%d %s: %v", code, body, err)
	}
	// (now-10s, now] holds entries 11 to 19: five ERRORs, four INFOs.
	for _, s := range matrix.Data.Result {
		want := map[string]string{"ERROR": "5", "INFO": "4"}[s.Metric["level"]]
		last := s.Values[len(s.Values)-1]
		if sec, ok := last[0].(float64); !ok || int64(sec) != now.Unix() || last[1] != want || len(s.Metric) != 1 {
			t.Errorf("%v: last point %v, want [%d, %q]", s.Metric, last, now.Unix(), want)
		}
	}

	// Grafana's health check.
	code, body = get(t, srv, PathQuery, url.Values{"query": {"vector(1)+vector(1)"}, "time": {"4000000000"}})
	if code != 200 || body != `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[4000000000,"2"]}]}}`+"\n" {
		t.Errorf("health check = %d %s", code, body)
	}

	for _, tc := range []struct {
		path string
		q    url.Values
		want string
	}{
		{PathQueryRange, hour(`{service="a"} | line_format "x"`), `parse error at line 1, col 17: "line_format" is not supported`},
		{PathQueryRange, url.Values{}, "query is required"},
		{PathQueryRange, hour(`{service="a"}`, "limit", "0"), "invalid limit"},
		{PathQueryRange, hour(`{service="a"}`, "limit", "5001"), "limit 5001 is more than the 5000 lines"},
		{PathQueryRange, hour(`{service="a"}`, "direction", "up"), "invalid direction"},
		{PathQueryRange, hour(`count_over_time({service="a"}[1m])`, "step", "0.1"), "at most 11000 points per series"},
		{PathQueryRange, hour(`{service="a"}`, "start", "yesterday"), "invalid start"},
		{PathQuery, url.Values{"query": {`{service="a"}`}}, "log queries are answered by /loki/api/v1/query_range"},
	} {
		if code, body := get(t, srv, tc.path, tc.q); code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s?%s = %d %q, want 400 containing %q", tc.path, tc.q.Encode(), code, body, tc.want)
		}
	}
}

// TestAlignWithStep: with AlignWithStep, a range metric query's points
// fall on whole multiples of its step, each counting its own minute;
// without it, they fall where the start puts them.
func TestAlignWithStep(t *testing.T) {
	for _, align := range []bool{false, true} {
		srv, _, _, now := serverWith(t, 900, Config{AlignWithStep: align})             // one a second, fifteen minutes
		start := now.Add(-8 * time.Minute).Truncate(time.Minute).Add(-7 * time.Second) // never on a whole minute
		code, body := get(t, srv, PathQueryRange, url.Values{"query": {`sum(count_over_time({service=~".+"}[1m]))`},
			"start": {ns(start)}, "end": {ns(now.Add(-3 * time.Second))}, "step": {"60"}})
		var matrix struct {
			Data struct{ Result []struct{ Values [][2]any } }
		}
		if err := json.Unmarshal([]byte(body), &matrix); code != 200 || err != nil || len(matrix.Data.Result) != 1 {
			t.Fatalf("align %t: %d %s: %v", align, code, body, err)
		}
		first := start.Unix()
		if align {
			first -= first % 60
		}
		for i, v := range matrix.Data.Result[0].Values {
			if sec, _ := v[0].(float64); int64(sec) != first+60*int64(i) || v[1] != "60" {
				t.Errorf("align %t: point %d = %v, want [%d, \"60\"]", align, i, v, first+60*int64(i))
			}
		}
	}
}

func TestMetadata(t *testing.T) {
	srv, _, _, now := server(t, 20)
	rng := url.Values{"start": {ns(now.Add(-time.Hour))}, "end": {ns(now)}}
	for _, tc := range []struct {
		path string
		q    url.Values
		want string
	}{
		{PathLabels, rng, `{"data":["level","service","source"],"status":"success"}`},
		{"/loki/api/v1/label/service/values", rng, `{"data":["checkout","search"],"status":"success"}`},
		{"/loki/api/v1/label/level/values", url.Values{"query": {`{service="search"}`}}, `{"data":["ERROR"],"status":"success"}`},
		{"/loki/api/v1/label/nope/values", rng, `{"data":[],"status":"success"}`},
		{PathSeries, url.Values{"match[]": {`{service="checkout"}`, `{level="ERROR"}`}}, `{"data":[{"level":"ERROR","service":"search","source":"push:t"},{"level":"INFO","service":"checkout","source":"push:t"}],"status":"success"}`},
		{"/loki/api/v1/index/stats", url.Values{"query": {`{service="a"}`}}, `{"bytes":0,"chunks":0,"entries":0,"streams":0}`},
		{"/loki/api/v1/index/volume", nil, `{"data":{"result":[],"resultType":"vector"},"status":"success"}`},
		{"/loki/api/v1/detected_labels", nil, `{"detectedLabels":[]}`},
	} {
		if code, body := get(t, srv, tc.path, tc.q); code != 200 || strings.TrimSpace(body) != tc.want {
			t.Errorf("%s?%s = %d %s, want %s", tc.path, tc.q.Encode(), code, body, tc.want)
		}
	}
	if code, body := get(t, srv, PathSeries, url.Values{"match[]": {`count_over_time({service="a"}[1m])`}}); code != 400 {
		t.Errorf("series of a metric query = %d %s, want 400", code, body)
	}
}

// TestTail: the tail sends what was stored since start, then each new
// entry passing its query, and ends when the server shuts down.
func TestTail(t *testing.T) {
	srv, hub, _, now := server(t, 4)
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + PathTail + "?" + url.Values{
		"query": {`{service="search"} |= "timeout"`}, "start": {ns(now.Add(-time.Minute))}}.Encode()
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial: %v %v", err, resp)
	}
	defer conn.Close()
	read := func() []string {
		t.Helper()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var frame struct {
			Streams []struct {
				Stream map[string]string
				Values [][2]string
			}
		}
		if err := conn.ReadJSON(&frame); err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, s := range frame.Streams {
			for _, v := range s.Values {
				var e models.LogEntry
				if err := json.Unmarshal([]byte(v[1]), &e); err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, e.Message)
			}
		}
		return msgs
	}
	if got := read(); len(got) != 2 || got[0] != "search 1 timeout" || got[1] != "search 3 timeout" {
		t.Fatalf("backlog = %v, want entries 1 and 3, oldest first", got)
	}
	if n := hub.Clients(); n != 1 { // subscribed before the upgrade was answered
		t.Fatalf("%d clients follow the hub", n)
	}
	hub.Publish([]models.LogEntry{
		{Timestamp: now.UnixMilli(), Level: "ERROR", Service: "search", Message: "new timeout"},
		{Timestamp: now.UnixMilli(), Level: "ERROR", Service: "search", Message: "new but fine"},
		{Timestamp: now.UnixMilli(), Level: "INFO", Service: "checkout", Message: "checkout timeout"},
	})
	if got := read(); len(got) != 1 || got[0] != "new timeout" {
		t.Errorf("followed = %v, want the one new entry passing the query", got)
	}
}

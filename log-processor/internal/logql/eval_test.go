package logql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/memory"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// t0 is the pinned "now" of these tests.
var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// sample returns 60 entries, one a minute, the first at t0-59m30s and
// the last at t0-30s: search when i%4 is 1, else checkout; every third an
// ERROR; every fifth with "timeout" in its message, the others logfmt
// with a status; attributes with a user and a nested region.
func sample() []models.LogEntry {
	var es []models.LogEntry
	for i := range 60 {
		level, svc := "INFO", "checkout"
		if i%3 == 0 {
			level = "ERROR"
		}
		if i%4 == 1 {
			svc = "search"
		}
		msg := fmt.Sprintf("status=%d path=/p%d msg=\"request %d done\"", 200+100*(i%4), i%5, i)
		if i%5 == 0 {
			msg = fmt.Sprintf("upstream timeout after %dms", i)
		}
		es = append(es, models.LogEntry{
			Timestamp: t0.Add(-time.Hour + time.Duration(i)*time.Minute + 30*time.Second).UnixMilli(), Level: level, Service: svc, Message: msg,
			Source: "push:test", ReceivedAt: t0.UnixMilli(),
			Attrs: models.Attrs(fmt.Sprintf(`{"user.id":"u-%d","geo":{"region":"eu-%d"},"level":"x"}`, i%4, i%2)),
		})
	}
	return es
}

// count is how many sample entries in (end-rng, end] pass keep, and
// their message bytes.
func count(keep func(i int, e models.LogEntry) bool, end time.Time, rng time.Duration) (n, bytes int) {
	for i, e := range sample() {
		if e.Timestamp > end.Add(-rng).UnixMilli() && e.Timestamp <= end.UnixMilli() && keep(i, e) {
			n++
			bytes += len(e.Message)
		}
	}
	return n, bytes
}

func engine(t *testing.T) *Engine {
	t.Helper()
	s := memory.New(memory.Config{})
	if err := s.Save(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	return NewEngine(s, Limits{MaxSeries: 20})
}

func logs(t *testing.T, en *Engine, q string, p Params) []Stream {
	t.Helper()
	e, err := Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	lq, ok := e.(*LogQuery)
	if !ok {
		t.Fatalf("%s is no log query", q)
	}
	out, err := en.Logs(context.Background(), lq, p)
	if err != nil {
		t.Fatalf("Logs(%s): %v", q, err)
	}
	return out
}

func TestLogs(t *testing.T) {
	en := engine(t)
	hour := Params{Start: t0.Add(-time.Hour), End: t0, Limit: 1000}
	timeout := func(i int) bool { return i%5 == 0 }
	tests := []struct {
		query string
		keep  func(i int, e models.LogEntry) bool
	}{
		{`{service="checkout"}`, func(i int, e models.LogEntry) bool { return e.Service == "checkout" }},
		{`{service=~"check.*|search", level="ERROR"}`, func(i int, e models.LogEntry) bool { return e.Level == "ERROR" }},
		{`{service="checkout"} |= "timeout"`, func(i int, e models.LogEntry) bool { return e.Service == "checkout" && timeout(i) }},
		{`{service=~".+"} != "timeout" |~ "status=(4|5)00"`, func(i int, e models.LogEntry) bool { return !timeout(i) && i%4 >= 2 }},
		{`{service=~".+"} |~ "(?i)TIMEOUT"`, func(i int, e models.LogEntry) bool { return timeout(i) }},
		{`{service=~".+"} |= "TIMEOUT"`, func(i int, e models.LogEntry) bool { return false }},
		{`{user_id="u-1"}`, func(i int, e models.LogEntry) bool { return i%4 == 1 }},
		{`{service="checkout", geo_region="eu-1"}`, func(i int, e models.LogEntry) bool { return e.Service == "checkout" && i%2 == 1 }},
		{`{service=~".+"} | level_extracted="x"`, func(i int, e models.LogEntry) bool { return true }},
		{`{level=~"ERROR|WARN", service!~"s.*"}`, func(i int, e models.LogEntry) bool { return e.Level == "ERROR" && e.Service != "search" }},
		{`{service=~".+"} | logfmt | status >= 400, path!="/p1"`, func(i int, e models.LogEntry) bool { return !timeout(i) && i%4 >= 2 && i%5 != 1 }},
		{`{service=~".+"} | json | user_id=~"u-[02]"`, func(i int, e models.LogEntry) bool { return i%4 == 0 || i%4 == 2 }},
		{`{service="nope"}`, func(i int, e models.LogEntry) bool { return false }},
	}
	for _, tc := range tests {
		got := logs(t, en, tc.query, hour)
		n := 0
		for _, s := range got {
			n += len(s.Entries)
		}
		if want, _ := count(tc.keep, t0, time.Hour); n != want || want == 0 && len(got) != 0 {
			t.Errorf("%s: %d entries in %d streams; want %d", tc.query, n, len(got), want)
		}
	}

	// After a parser, every label names the stream, attributes too.
	for _, s := range logs(t, en, `{service=~".+"} | logfmt | status >= 400, path!="/p1"`, hour) {
		if s.Labels["status"] < "400" || s.Labels["path"] == "/p1" || s.Labels["user_id"] == "" || s.Labels["msg"] == "" || s.Labels["service"] == "" {
			t.Errorf("stream %v: want logfmt's labels, the attributes and the fields", s.Labels)
		}
	}
	for _, s := range logs(t, en, `{service="search"} | json | drop user_id, geo_region, source`, hour) {
		if _, ok := s.Labels["user_id"]; ok || s.Labels["source"] != "" || s.Labels["level_extracted"] != "x" {
			t.Errorf("stream %v: want the attributes but those dropped", s.Labels)
		}
	}
	// Without a parser, a stream is its service, level and source.
	if got := logs(t, en, `{service=~".+"}`, hour); len(got) != 4 {
		t.Errorf("%d streams, want 4 (two services by two levels)", len(got))
	}

	// Newest first by default, oldest first forward; the limit holds.
	back := logs(t, en, `{service="checkout", level="INFO"}`, Params{Start: t0.Add(-time.Hour), End: t0, Limit: 3})
	fwd := logs(t, en, `{service="checkout", level="INFO"}`, Params{Start: t0.Add(-time.Hour), End: t0, Limit: 3, Forward: true})
	if len(back) != 1 || len(back[0].Entries) != 3 || !back[0].Entries[0].Time.Equal(t0.Add(-30*time.Second)) || !back[0].Entries[1].Time.Equal(t0.Add(-90*time.Second)) {
		t.Errorf("backward: %+v", back) // i = 59, 58, ...
	}
	if len(fwd) != 1 || len(fwd[0].Entries) != 3 || !fwd[0].Entries[0].Time.Equal(t0.Add(-57*time.Minute-30*time.Second)) {
		t.Errorf("forward: %+v", fwd) // i = 2, 4, ...
	}
	if l := back[0].Entries[0].Line; !strings.HasPrefix(l, `{"timestamp":`) || !strings.Contains(l, `"message":"status=`) {
		t.Errorf("line = %s, want the entry as a JSON object", l)
	}
	if want := map[string]string{"service": "checkout", "level": "INFO", "source": "push:test"}; Key(back[0].Labels) != Key(want) {
		t.Errorf("stream labels %v, want %v", back[0].Labels, want)
	}

	// The range bounds are inclusive.
	if got := logs(t, en, `{service=~".+"}`, Params{Start: t0.Add(-150 * time.Second), End: t0.Add(-90 * time.Second), Limit: 100}); len(got) != 2 {
		t.Errorf("from i = 57 to i = 58: %+v", got)
	}

	if _, err := en.Logs(context.Background(), &LogQuery{Selector: []Matcher{{Name: "service", Op: Eq, Value: "a"}}}, Params{End: t0, Limit: 5001}); !errors.Is(err, ErrLimit) {
		t.Errorf("limit past MaxLines: %v, want ErrLimit", err)
	}
}

func metric(t *testing.T, en *Engine, q string, p Params) []Series {
	t.Helper()
	e, err := Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	out, err := en.Metric(context.Background(), e, p)
	if err != nil {
		t.Fatalf("Metric(%s): %v", q, err)
	}
	return out
}

// values returns each series' values by the label l, in step order.
func values(ss []Series, l string) map[string][]float64 {
	out := map[string][]float64{}
	for _, s := range ss {
		for _, p := range s.Points {
			out[s.Labels[l]] = append(out[s.Labels[l]], p.V)
		}
	}
	return out
}

func TestMetric(t *testing.T) {
	en := engine(t)
	// Steps of 10 minutes over the hour: 7 steps, t0-60m ... t0; the step
	// at t0-60m sees (t0-70m, t0-60m], where there is nothing.
	p := Params{Start: t0.Add(-time.Hour), End: t0, Step: 10 * time.Minute}
	all := func(int, models.LogEntry) bool { return true }
	level := func(l string) func(int, models.LogEntry) bool {
		return func(_ int, e models.LogEntry) bool { return e.Level == l }
	}

	// Grafana's log volume query.
	byLevel := metric(t, en, `sum by (level, detected_level) (count_over_time({service=~".+"} | drop __error__[10m]))`, p)
	for _, s := range byLevel {
		if len(s.Labels) != 1 || len(s.Points) != 6 || !s.Points[0].T.Equal(t0.Add(-50*time.Minute)) {
			t.Fatalf("log volume series %+v, want one label and 6 steps from t0-50m", s)
		}
		for _, pt := range s.Points {
			if want, _ := count(level(s.Labels["level"]), pt.T, 10*time.Minute); pt.V != float64(want) {
				t.Errorf("%s at %s = %v, want %d", s.Labels["level"], pt.T, pt.V, want)
			}
		}
	}
	if len(byLevel) != 2 {
		t.Errorf("log volume: %d series, want ERROR and INFO", len(byLevel))
	}
	total := metric(t, en, `sum(count_over_time({service=~".+"}[10m]))`, p)
	if len(total) != 1 || len(total[0].Points) != 6 || total[0].Points[5].V != 10 || !total[0].Points[5].T.Equal(t0) || len(total[0].Labels) != 0 {
		t.Errorf("sum of counts = %+v", total)
	}
	rate := metric(t, en, `sum(rate({service=~".+"}[10m]))`, p)
	if rate[0].Points[5].V != 10.0/600 {
		t.Errorf("rate = %v, want %v", rate[0].Points[5].V, 10.0/600)
	}
	// A range longer than the step: each entry counts in two steps.
	for _, pt := range metric(t, en, `sum(count_over_time({service="checkout"}[20m]))`, p)[0].Points {
		want, _ := count(func(_ int, e models.LogEntry) bool { return e.Service == "checkout" }, pt.T, 20*time.Minute)
		if pt.V != float64(want) {
			t.Errorf("20m window at %s = %v, want %d", pt.T, pt.V, want)
		}
	}
	bytes := metric(t, en, `sum(bytes_over_time({service="checkout"} |= "timeout" [1h]))`, Params{End: t0})
	_, want := count(func(i int, e models.LogEntry) bool { return e.Service == "checkout" && i%5 == 0 }, t0, time.Hour)
	if len(bytes) != 1 || bytes[0].Points[0].V != float64(want) {
		t.Errorf("bytes over the hour = %+v, want %d", bytes, want)
	}
	top := metric(t, en, `topk(1, sum by (service) (count_over_time({level="ERROR"}[1h])))`, Params{End: t0})
	if len(top) != 1 || top[0].Labels["service"] != "checkout" || top[0].Points[0].V != 15 {
		t.Errorf("topk = %+v, want checkout's 15 errors", top)
	}
	bottom := metric(t, en, `bottomk(1, sum by (service) (count_over_time({level="ERROR"}[1h])))`, Params{End: t0})
	if len(bottom) != 1 || bottom[0].Labels["service"] != "search" || bottom[0].Points[0].V != 5 {
		t.Errorf("bottomk = %+v, want search's 5 errors", bottom)
	}
	counts := metric(t, en, `count(count_over_time({service=~".+"}[1h]))`, Params{End: t0})
	if len(counts) != 1 || counts[0].Points[0].V != 4 {
		t.Errorf("count of series = %+v, want 4 (two services by two levels)", counts)
	}
	minmax := metric(t, en, `max(count_over_time({service=~".+"}[1h])) - min(count_over_time({service=~".+"}[1h]))`, Params{End: t0})
	if len(minmax) != 1 || minmax[0].Points[0].V != 30-5 {
		t.Errorf("max-min = %+v, want 30 (checkout INFO) - 5 (search ERROR)", minmax)
	}
	avg := metric(t, en, `avg(count_over_time({service=~".+"}[1h])) * 4 - 60`, Params{End: t0})
	if len(avg) != 1 || avg[0].Points[0].V != 0 {
		t.Errorf("avg*4-60 = %+v, want 0", avg)
	}
	errs, _ := count(level("ERROR"), t0, time.Hour)
	n, _ := count(all, t0, time.Hour)
	ratio := metric(t, en, `sum(count_over_time({level="ERROR"}[1h])) / sum(count_over_time({service=~".+"}[1h]))`, Params{End: t0})
	if len(ratio) != 1 || ratio[0].Points[0].V != float64(errs)/float64(n) {
		t.Errorf("ratio = %+v, want %d/%d", ratio, errs, n)
	}
	// Paired by labels: search has no u-0, so no ratio.
	byService := metric(t, en, `sum by (service) (count_over_time({service=~".+"}[1h])) / sum by (service) (count_over_time({user_id="u-0"}[1h]))`, Params{End: t0})
	if got := values(byService, "service"); fmt.Sprint(got) != "map[checkout:[3]]" {
		t.Errorf("by service, paired by labels = %v", got)
	}
	health := metric(t, en, `vector(1)+vector(1)`, Params{Start: time.Unix(1, 0), End: time.Unix(4, 0)})
	if len(health) != 1 || len(health[0].Points) != 1 || health[0].Points[0].V != 2 || !health[0].Points[0].T.Equal(time.Unix(4, 0)) {
		t.Errorf("vector(1)+vector(1) = %+v, want 2 at the end", health)
	}
	if got := metric(t, en, `count_over_time({service="nope"}[1h])`, p); len(got) != 0 {
		t.Errorf("nothing matches: %+v", got)
	}

	for _, q := range []string{
		`count_over_time({service=~".+"} | logfmt [1h])`, // a series per entry: past MaxSeries
	} {
		e, _ := Parse(q)
		if _, err := en.Metric(context.Background(), e, p); !errors.Is(err, ErrLimit) {
			t.Errorf("%s: %v, want ErrLimit", q, err)
		}
	}
	e, _ := Parse(`count_over_time({service="a"}[1m])`)
	if _, err := en.Metric(context.Background(), e, Params{Start: t0.Add(-24 * time.Hour), End: t0, Step: time.Second}); !errors.Is(err, ErrLimit) {
		t.Errorf("86,401 steps: %v, want ErrLimit", err)
	}
}

// TestBucketsAskWhatIsNeeded: the store is asked to count source and
// component apart only where the query needs them: not for a sum by level
// (Grafana's log volume), but for a count of series, a selector on source,
// or a bare range function; bytes only for bytes_*.
func TestBucketsAskWhatIsNeeded(t *testing.T) {
	c := &counting{Store: memory.New(memory.Config{})}
	en := NewEngine(c, Limits{})
	for _, tc := range []struct {
		query                    string
		source, component, bytes bool
	}{
		{`sum by (level, detected_level) (count_over_time({service="a"} | drop __error__ [1m]))`, false, false, false},
		{`sum by (level) (sum by (level, source) (rate({service="a"}[1m])))`, false, false, false},
		{`sum by (source) (bytes_over_time({service="a"}[1m]))`, true, false, true},
		{`sum by (level) (count_over_time({service="a", component="db"}[1m]))`, false, true, false},
		{`count by (level) (count_over_time({service="a"}[1m]))`, true, true, false},
		{`count_over_time({service="a"}[1m])`, true, true, false},
		{`sum(count_over_time({service="a"}[1m]))`, false, false, false},
		{`sum without (level) (count_over_time({service="a"}[1m]))`, true, true, false},
		{`sum by (level) (count_over_time({service="a"}[1m])) / sum by (level) (count_over_time({service="b"}[1m]))`, false, false, false},
		{`sum by (level) (count_over_time({service="a"}[1m]) / count_over_time({service="b"}[1m]))`, true, true, false},
	} {
		e, err := Parse(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := en.Metric(context.Background(), e, Params{End: t0}); err != nil {
			t.Fatal(err)
		}
		if a := c.asked; a.Source != tc.source || a.Component != tc.component || a.Bytes != tc.bytes {
			t.Errorf("%s: asked %+v, want source %t, component %t, bytes %t", tc.query, a, tc.source, tc.component, tc.bytes)
		}
	}
}

// TestScanStops: a log query stops reading at its limit.
func TestScanStops(t *testing.T) {
	c := &counting{Store: memory.New(memory.Config{})}
	if err := c.Save(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	en := NewEngine(c, Limits{})
	e, _ := Parse(`{service=~".+"}`)
	if _, err := en.Logs(context.Background(), e.(*LogQuery), Params{Start: t0.Add(-time.Hour), End: t0, Limit: 5}); err != nil {
		t.Fatal(err)
	}
	if c.n != 5 {
		t.Errorf("read %d entries for a limit of 5", c.n)
	}
}

// counting counts a memory store's scans, the entries they read and its
// bucket counts.
type counting struct {
	*memory.Store
	n, scans, buckets int
	asked             storage.BucketQuery // the last Buckets call's
}

func (c *counting) Scan(ctx context.Context, f storage.Filter, fn func(*storage.Record) bool) error {
	c.scans++
	return c.Store.Scan(ctx, f, func(r *storage.Record) bool { c.n++; return fn(r) })
}

func (c *counting) Buckets(ctx context.Context, f storage.Filter, q storage.BucketQuery, fn func(storage.Bucket) bool) error {
	c.buckets++
	c.asked = q
	return c.Store.Buckets(ctx, f, q, fn)
}

// TestBucketsAgreeWithScan: a metric query the store can count itself
// (by stream and step) answers what reading every entry answers: the
// same query with a filter that passes everything (|~ ".*"), which the
// store cannot apply, reads the entries.
func TestBucketsAgreeWithScan(t *testing.T) {
	c := &counting{Store: memory.New(memory.Config{})}
	if err := c.Save(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	en := NewEngine(c, Limits{})
	ranges := []Params{
		{Start: t0.Add(-time.Hour), End: t0, Step: 10 * time.Minute},
		{Start: t0.Add(-47 * time.Minute), End: t0.Add(-3 * time.Minute), Step: 7 * time.Minute},
		{End: t0},
	}
	for _, q := range []string{
		`sum by (level) (count_over_time({service=~".+"} [10m]))`,
		`count_over_time({service="checkout", level!="INFO"} |= "timeout" [15m])`,
		`sum(rate({source="push:test"} | drop level [20m]))`,
		`bytes_over_time({level="ERROR"} [3m])`,
		`sum by (service) (bytes_rate({service=~"s.*"} [1h]))`,
	} {
		for _, p := range ranges {
			scanned := strings.Replace(q, " [", ` |~ ".*" [`, 1)
			c.scans, c.buckets = 0, 0
			got := metric(t, en, q, p)
			if c.buckets != 1 || c.scans != 0 {
				t.Errorf("%s: %d bucket counts, %d scans; want the store to count", q, c.buckets, c.scans)
			}
			want := metric(t, en, scanned, p)
			if c.scans != 1 {
				t.Errorf("%s: %d scans, want 1", scanned, c.scans)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s over %+v:\n counted %v\n read    %v", q, p, got, want)
			}
		}
	}
}

package logql

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var parseTests = []struct {
	query string
	want  string // the parsed query's String, or the error's text (with its position)
	err   bool
}{
	{`{service="checkout"}`, `{service="checkout"}`, false},
	{`{service="checkout", level=~"WARN|ERROR", user_id="u-1007"}`, `{service="checkout", level=~"WARN|ERROR", user_id="u-1007"}`, false},
	{`{service!="a",service=~"b.*"} |= "timeout" != "retry" |~ "(?i)dead(line)?" !~ ` + "`x\\d`", `{service!="a", service=~"b.*"} |= "timeout" != "retry" |~ "(?i)dead(line)?" !~ "x\\d"`, false},
	{`{service="a"} | json | status >= 500, method="GET" and user!~"bot.*"`, `{service="a"} | json | method="GET", user!~"bot.*", status >= 500`, false},
	{`{service="a"} | logfmt | duration > 1.5`, `{service="a"} | logfmt | duration > 1.5`, false},
	{`count_over_time({service="a"}[5m])`, `count_over_time({service="a"} [5m0s])`, false},
	{`rate({service="a"} |= "x" [30s])`, `rate({service="a"} |= "x" [30s])`, false},
	{`bytes_over_time({service="a"}[1h30m])`, `bytes_over_time({service="a"} [1h30m0s])`, false},
	{`count_over_time({service="a"}[5m] |= "x")`, `count_over_time({service="a"} |= "x" [5m0s])`, false},
	{`sum by (level) (count_over_time({service=~".+"}[1m]))`, `sum by (level) (count_over_time({service=~".+"} [1m0s]))`, false},
	{`sum(count_over_time({service="a"}[1m])) without (source)`, `sum without (source) (count_over_time({service="a"} [1m0s]))`, false},
	{`topk(3, sum by (service) (rate({level="ERROR"}[5m])))`, `topk (3, sum by (service) (rate({level="ERROR"} [5m0s])))`, false},
	{`vector(1)+vector(1)`, `(vector(1) + vector(1))`, false},
	{`sum(rate({service="a"}[1m])) / sum(rate({service=~".+"}[1m])) * 100`, `((sum (rate({service="a"} [1m0s])) / sum (rate({service=~".+"} [1m0s]))) * 100)`, false},
	{`-1 + 2 * 3`, `(-1 + (2 * 3))`, false},
	{"{service=\"a\"} # a comment\n|= \"x\"", `{service="a"} |= "x"`, false},
	{`count_over_time({service="a"}[1d])`, `count_over_time({service="a"} [24h0m0s])`, false},
	{`sum by (level, detected_level) (count_over_time({service="a"} | drop __error__[1m]))`, `sum by (level, detected_level) (count_over_time({service="a"} | drop __error__ [1m0s]))`, false},
	{`{service="a"} | json | drop __error__, __error_details__ | __error__=""`, `{service="a"} | json | drop __error__, __error_details__ | __error__=""`, false},
	{`{service="a"} | drop __error__="x"`, `parse error at line 1, col 31: drop with a condition`, true},
	{`{service="a"} | drop`, `parse error at line 1, col 17: "drop" is not supported after |`, true},

	{``, `parse error at line 1, col 1: unexpected end of query, want a stream selector {...} or a metric query`, true},
	{`{}`, `parse error at line 1, col 1: a stream selector needs at least one matcher`, true},
	{`{service=~".*"}`, `parse error at line 1, col 1: a stream selector needs at least one matcher`, true},
	{`{service="a"`, `parse error at line 1, col 13: unexpected end of query, want "}"`, true},
	{`{service=a}`, `parse error at line 1, col 10: unexpected "a", want a quoted string`, true},
	{`{service>"a"}`, `parse error at line 1, col 9: unexpected ">" after service, want = != =~ or !~`, true},
	{`{service=~"("}`, `parse error at line 1, col 11: invalid regular expression "("`, true},
	{`{service="a"} |~ "["`, `parse error at line 1, col 18: invalid regular expression "["`, true},
	{`{service="a"} | line_format "{{.x}}"`, `parse error at line 1, col 17: "line_format" is not supported after |`, true},
	{`{service="a"} | json foo="bar"`, `parse error at line 1, col 22: json takes no parameters here`, true},
	{`{service="a"} | a="x" or b="y"`, `parse error at line 1, col 23: "or" between label filters is not supported`, true},
	{`{service="a"} | latency > 10s`, `parse error at line 1, col 27: durations and byte sizes in label filters are not supported`, true},
	{`{service="a"}[5m]`, `parse error at line 1, col 17: a range belongs inside a function`, true},
	{`count_over_time({service="a"})`, `parse error at line 1, col 30: count_over_time needs a range`, true},
	{`sum_over_time({service="a"} | unwrap x [5m])`, `parse error at line 1, col 1: "sum_over_time" is not supported`, true},
	{`sum({service="a"})`, `parse error at line 1, col 18: sum takes a metric query`, true},
	{`topk(x, count_over_time({service="a"}[1m]))`, `parse error at line 1, col 6: topk takes a positive whole number first`, true},
	{`{service="a"} + 1`, `parse error at line 1, col 15: "+" needs numbers or metric queries on both sides`, true},
	{`{service="a"} |= "x" {`, `parse error at line 1, col 22: unexpected "{" after the query`, true},
	{`{service="a\"}`, `parse error at line 1, col 10: unterminated string`, true},
	{`{service="a"} @`, `parse error at line 1, col 15: unexpected character '@'`, true},
	{"{service=\"a\"}\n| foo", `parse error at line 2, col 3: "foo" is not supported after |`, true},
	{`count_over_time({service="a"}[0s])`, `parse error at line 1, col 31: unexpected "0s", want a positive duration`, true},
	{strings.Repeat("(", 40) + "1" + strings.Repeat(")", 40), `nested deeper than 32`, true},
}

func TestParse(t *testing.T) {
	for _, tc := range parseTests {
		e, err := Parse(tc.query)
		switch {
		case tc.err:
			var pe *Error
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) = %v, %v; want the error %q", tc.query, e, err, tc.want)
			}
		case err != nil:
			t.Errorf("Parse(%q): %v", tc.query, err)
		case e.String() != tc.want:
			t.Errorf("Parse(%q) = %s, want %s", tc.query, e, tc.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"5m", 5 * time.Minute}, {"1h30m", 90 * time.Minute}, {"250ms", 250 * time.Millisecond},
		{"1d", 24 * time.Hour}, {"1w", 7 * 24 * time.Hour}, {"15", 15 * time.Second}, {"0.5", 500 * time.Millisecond},
	}
	for _, tc := range tests {
		if d, err := ParseDuration(tc.in); err != nil || d != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, d, err, tc.want)
		}
	}
	for _, bad := range []string{"", "m", "5x", "5m3", "1.2.3s"} {
		if d, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, d)
		}
	}
}

// FuzzParse: no query crashes the parser or takes it out of its bounds,
// and a query it takes prints as one it takes again, meaning the same.
func FuzzParse(f *testing.F) {
	for _, tc := range parseTests {
		f.Add(tc.query)
	}
	f.Fuzz(func(t *testing.T, q string) {
		e, err := Parse(q)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Col < 1 {
				t.Fatalf("Parse(%q): %v is no positioned *Error", q, err)
			}
			return
		}
		again, err := Parse(e.String())
		if err != nil || again.String() != e.String() {
			t.Fatalf("Parse(%q) = %s, which parses as %v, %v", q, e, again, err)
		}
	})
}

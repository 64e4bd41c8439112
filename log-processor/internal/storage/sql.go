package storage

import (
	"cmp"
	"slices"
	"strings"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Columns are the columns of the logs table that hold a LogEntry, in the
// order of Values, for the SQL backends.
var Columns = []string{"ts", "level", "service", "message", "component", "trace_id", "span_id", "parent_id", "source", "received_at"}

// Values returns e's values in the order of Columns, appended to dst.
func Values(dst []any, e *models.LogEntry) []any {
	return append(dst, e.Timestamp, e.Level, e.Service, e.Message, e.Component,
		e.TraceID, e.SpanID, e.ParentID, e.Source, e.ReceivedAt)
}

// ScanTargets returns pointers to e's fields in the order of Columns.
func ScanTargets(e *models.LogEntry) []any {
	return []any{&e.Timestamp, &e.Level, &e.Service, &e.Message, &e.Component,
		&e.TraceID, &e.SpanID, &e.ParentID, &e.Source, &e.ReceivedAt}
}

// Dialect is what differs between the SQL backends in a query.
type Dialect struct {
	// Placeholder returns the n-th (1-based) parameter placeholder.
	Placeholder func(n int) string
	// Contains is a condition true when message contains the parameter
	// given as %s, case-sensitively and literally.
	Contains string
}

// SelectSQL builds the query for f, newest first, with its arguments.
func (d Dialect) SelectSQL(columns []string, f Filter) (string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "%s", d.Placeholder(len(args))))
	}
	if f.Service != "" {
		add("service = %s", f.Service)
	}
	if f.Level != "" {
		add("level = %s", f.Level)
	}
	if f.Since != 0 {
		add("ts >= %s", f.Since)
	}
	if f.Until != 0 {
		add("ts <= %s", f.Until)
	}
	if f.Contains != "" {
		add(d.Contains, f.Contains)
	}
	q := "SELECT " + strings.Join(columns, ", ") + " FROM logs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.EffectiveLimit())
	return q + " ORDER BY ts DESC, id DESC LIMIT " + d.Placeholder(len(args)), args
}

// KeyCount is the number of entries of one service at one level.
type KeyCount struct {
	Service, Level string
	N              int64
}

// CountByKey totals batch by service and level, sorted by service then
// level, so that writers sharing a counts table lock its rows in one order.
func CountByKey(batch []models.LogEntry) []KeyCount {
	type key struct{ service, level string }
	counts := make(map[key]int64, 16)
	for i := range batch {
		counts[key{batch[i].Service, batch[i].Level}]++
	}
	out := make([]KeyCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, KeyCount{Service: k.service, Level: k.level, N: n})
	}
	slices.SortFunc(out, func(a, b KeyCount) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Level, b.Level))
	})
	return out
}

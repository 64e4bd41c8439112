package storage

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Columns are the columns of the logs table that hold a LogEntry, in the
// order of Values, for the SQL backends.
var Columns = []string{"ts", "level", "service", "message", "component", "trace_id", "span_id", "parent_id", "source", "received_at", "attrs"}

// Values returns e's values in the order of Columns, appended to dst.
// Attributes are NULL when there are none.
func Values(dst []any, e *models.LogEntry) []any {
	var attrs any
	if e.Attrs != "" {
		attrs = string(e.Attrs)
	}
	return append(dst, e.Timestamp, e.Level, e.Service, e.Message, e.Component,
		e.TraceID, e.SpanID, e.ParentID, e.Source, e.ReceivedAt, attrs)
}

// ScanTargets returns pointers to e's fields in the order of Columns.
func ScanTargets(e *models.LogEntry) []any {
	return []any{&e.Timestamp, &e.Level, &e.Service, &e.Message, &e.Component,
		&e.TraceID, &e.SpanID, &e.ParentID, &e.Source, &e.ReceivedAt, attrsTarget{&e.Attrs}}
}

// attrsTarget scans a nullable JSON column into an entry's Attrs.
type attrsTarget struct{ a *models.Attrs }

func (t attrsTarget) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t.a = ""
	case string:
		*t.a = models.Attrs(v)
	case []byte:
		*t.a = models.Attrs(v)
	default:
		return fmt.Errorf("attrs: unexpected %T", src)
	}
	return nil
}

// Dialect is what differs between the SQL backends in a query.
type Dialect struct {
	// Placeholder returns the n-th (1-based) parameter placeholder.
	Placeholder func(n int) string
	// Contains returns a condition true when message contains v,
	// case-sensitively and literally, taking its parameters with arg
	// (which returns each one's placeholder): where the backend has a
	// search index, one that uses it.
	Contains func(v string, arg func(any) string) string
	// Attr is a condition true when the attribute named by the parameter
	// given as %k has, as text, the value of the parameter given as %v.
	Attr string
	// AttrKey turns an attribute's name into the parameter Attr takes.
	AttrKey func(name string) any
	// Bytes is the expression of message's length in bytes.
	Bytes string
}

// BucketsSQL builds the query counting the entries passing f by stream
// and by step: see Store.Buckets. It reads the columns it is asked for
// only, and always as many: service, level, source, component, bucket,
// count, bytes (those not asked for as constants).
func (d Dialect) BucketsSQL(f Filter, bq BucketQuery) (string, []any) {
	return d.bucketsSQL(logsTable, f, bq)
}

// table is where a query reads entries or their counts: its name, its
// time column, and the expressions of a group's count and bytes.
type table struct{ name, ts, count, bytes string }

var (
	logsTable   = table{name: "logs", ts: "ts", count: "count(*)"} // bytes: the Dialect's
	minuteTable = table{name: "minute_counts", ts: "minute", count: "sum(n)", bytes: "sum(bytes)"}
)

func (d Dialect) bucketsSQL(t table, f Filter, bq BucketQuery) (string, []any) {
	q, args := d.whereIn(t, []string{"service"}, f)
	args = append(args, bq.Origin, bq.Step)
	o, s := d.Placeholder(len(args)-1), d.Placeholder(len(args))
	cols, group := []string{"service", "level"}, "service, level"
	for _, c := range []struct {
		name string
		on   bool
	}{{"source", bq.Source}, {"component", bq.Component}} {
		if c.on {
			cols = append(cols, c.name)
			group += ", " + c.name
		} else {
			cols = append(cols, "''")
		}
	}
	bytes := "0"
	if bq.Bytes {
		bytes = t.bytes
		if bytes == "" {
			bytes = "sum(" + d.Bytes + ")"
		}
	}
	q = strings.Replace(q, "SELECT service",
		"SELECT "+strings.Join(cols, ", ")+", ("+t.ts+" - "+o+" + "+s+" - 1) / "+s+" AS bucket, "+t.count+", "+bytes, 1)
	// The bucket first: SQLite's sorter orders the groups a quarter faster
	// by the number than by the names.
	return q + " GROUP BY bucket, " + group, args
}

// ScanBuckets reads BucketsSQL's rows.
func ScanBuckets(rows Rows, fn func(Bucket) bool) error {
	for rows.Next() {
		var b Bucket
		if err := rows.Scan(&b.Service, &b.Level, &b.Source, &b.Component, &b.Index, &b.Count, &b.Bytes); err != nil {
			return fmt.Errorf("buckets: %w", err)
		}
		if !fn(b) {
			return nil
		}
	}
	return rows.Err()
}

// SelectSQL builds the query for f, newest first, with its arguments.
func (d Dialect) SelectSQL(columns []string, f Filter) (string, []any) {
	q, args := d.where(columns, f)
	args = append(args, f.EffectiveLimit())
	return q + " ORDER BY ts DESC, id DESC LIMIT " + d.Placeholder(len(args)), args
}

// ScanSQL builds the query of every entry passing f (Limit aside), newest
// first or, with f.Oldest, oldest first, with its arguments.
func (d Dialect) ScanSQL(columns []string, f Filter) (string, []any) {
	q, args := d.where(columns, f)
	if f.Oldest {
		return q + " ORDER BY ts, id", args
	}
	return q + " ORDER BY ts DESC, id DESC", args
}

// where builds the SELECT of columns with f's conditions.
func (d Dialect) where(columns []string, f Filter) (string, []any) {
	return d.whereIn(logsTable, columns, f)
}

// whereIn builds the SELECT of columns from t with f's conditions.
func (d Dialect) whereIn(t table, columns []string, f Filter) (string, []any) {
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
		add(t.ts+" >= %s", f.Since)
	}
	if f.Until != 0 {
		add(t.ts+" <= %s", f.Until)
	}
	if f.Contains != "" {
		where = append(where, d.Contains(f.Contains, func(v any) string {
			args = append(args, v)
			return d.Placeholder(len(args))
		}))
	}
	for _, a := range f.Attrs {
		args = append(args, d.AttrKey(a.Key), a.Value)
		cond := strings.ReplaceAll(d.Attr, "%k", d.Placeholder(len(args)-1))
		where = append(where, strings.ReplaceAll(cond, "%v", d.Placeholder(len(args))))
	}
	q := "SELECT " + strings.Join(columns, ", ") + " FROM " + t.name
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return q, args
}

// KeyCount is the number of entries with one key (a service or a level).
type KeyCount struct {
	Key string
	N   int64
}

// CountBy totals batch by the key key returns, sorted by key, so that
// writers sharing a counts table lock its rows in one order.
func CountBy(batch []models.LogEntry, key func(*models.LogEntry) string) []KeyCount {
	counts := make(map[string]int64, 16)
	for i := range batch {
		counts[key(&batch[i])]++
	}
	out := make([]KeyCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, KeyCount{Key: k, N: n})
	}
	slices.SortFunc(out, func(a, b KeyCount) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// ByService and ByLevel are keys for CountBy.
func ByService(e *models.LogEntry) string { return e.Service }
func ByLevel(e *models.LogEntry) string   { return e.Level }

// Counts tables, shared by the SQL backends: entries by service and by
// level since the database was created. TopServicesSQL reads the top
// services through the index on n.
const (
	// LevelCountsSQL reads the known levels only, so that it stays small
	// whatever the table holds (entries are validated before they are
	// stored; this is the second line).
	LevelCountsSQL = "SELECT level, n FROM level_counts WHERE level IN ('DEBUG', 'INFO', 'WARN', 'ERROR')"
	// TopServicesSQL takes the limit as its one parameter, given as %s.
	TopServicesSQL = "SELECT service, n FROM service_counts ORDER BY n DESC LIMIT %s"
)

// BusColumns hold an entry's models.BusID, NULL for an entry that did not
// come over the message bus. A unique index over them (logs_bus, partial:
// only where bus_pos is not NULL) stores a redelivered entry once.
var BusColumns = []string{"bus_epoch", "bus_pos"}

// BusValues returns e's values for BusColumns, appended to dst.
func BusValues(dst []any, e *models.LogEntry) []any {
	if e.Bus.IsZero() {
		return append(dst, nil, nil)
	}
	return append(dst, e.Bus.Epoch, e.Bus.Pos)
}

// BusRange is the positions, Lo to Hi inclusive, of the entries of one
// message of the bus stream of epoch Epoch.
type BusRange struct{ Epoch, Lo, Hi int64 }

// BusRanges returns one range per bus message that has entries in batch.
func BusRanges(batch []models.LogEntry) []BusRange {
	var out []BusRange
	for i := range batch {
		id := batch[i].Bus
		if id.IsZero() {
			continue
		}
		k := len(out) - 1
		if k >= 0 && out[k].Epoch == id.Epoch && out[k].Lo>>16 == id.Pos>>16 {
			out[k].Lo, out[k].Hi = min(out[k].Lo, id.Pos), max(out[k].Hi, id.Pos)
			continue
		}
		out = append(out, BusRange{Epoch: id.Epoch, Lo: id.Pos, Hi: id.Pos})
	}
	return out
}

// maxDedupAttempts bounds WriteOnce's rounds when other writers keep
// storing the same entries meanwhile.
const maxDedupAttempts = 5

// WriteOnce writes batch with write. When write fails because entries of
// the batch are stored already (dup says so of its error; only entries
// that came over the bus can be), it asks stored which of the batch's
// bus entries the database holds, and writes the others; it returns how
// many it skipped. The error of a failed write is returned as write gave
// it, for the backend to classify, except that a duplicate is never
// returned as such: it is not the entry's fault.
func WriteOnce(batch []models.LogEntry, write func([]models.LogEntry) error, dup func(error) bool,
	stored func([]BusRange) (map[models.BusID]bool, error)) (int, error) {
	err := write(batch)
	for attempt := 1; err != nil && dup(err); attempt++ {
		if attempt == maxDedupAttempts {
			return 0, fmt.Errorf("store bus entries: still meeting duplicates after %d attempts: %s", attempt, err)
		}
		have, serr := stored(BusRanges(batch))
		if serr != nil {
			return 0, fmt.Errorf("look up stored bus entries: %w", serr)
		}
		// The batch itself may hold an entry twice (two deliveries saved
		// by two workers into one transaction): the first one stays.
		rest := make([]models.LogEntry, 0, len(batch))
		for i := range batch {
			id := batch[i].Bus
			if id.IsZero() {
				rest = append(rest, batch[i])
			} else if !have[id] {
				have[id] = true
				rest = append(rest, batch[i])
			}
		}
		if len(rest) == 0 {
			return len(batch), nil
		}
		if err = write(rest); err == nil {
			return len(batch) - len(rest), nil
		}
	}
	return 0, err
}

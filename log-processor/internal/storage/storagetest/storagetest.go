// Package storagetest is the conformance suite every storage backend runs:
// one set of behaviours, checked the same way against memory, SQLite and
// PostgreSQL (the idea of testing/slogtest).
package storagetest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Options describe the backend under test.
type Options struct {
	// Open returns a new, empty store. Batching stores should flush often
	// (every few milliseconds) so the suite does not wait long.
	Open func(t *testing.T) storage.Store
	// Reopen, if set, opens the same database again after Close, for
	// backends whose data survives a restart.
	Reopen func(t *testing.T) storage.Store
	// Instance is the instance name the backend records, if any.
	Instance string
	// OpenRetention, if set, returns a new, empty store that applies ret,
	// for backends that delete old entries.
	OpenRetention func(t *testing.T, ret storage.Retention) storage.Store
	// Poison, if set, returns an entry the backend's database refuses for
	// its content (one the parser would never pass), to check that it is
	// set aside without holding up the entries around it.
	Poison func(i int) models.LogEntry
	// Dedup says the backend stores an entry with a given models.BusID
	// once, however often it is saved (a message bus redelivering it).
	Dedup bool
}

// base is a fixed timestamp; entries are spaced a second apart from it.
var base = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).UnixMilli()

// entry i: services svc0..svc2, levels cycle INFO, WARN, ERROR.
func entry(i int) models.LogEntry {
	return models.LogEntry{
		Timestamp:  base + int64(i)*1000,
		Level:      models.Levels[i%3],
		Message:    fmt.Sprintf("message %d with \"quotes\", ünïcode and 100%% of_chars", i),
		Service:    fmt.Sprintf("svc%d", i%3),
		Component:  "comp",
		TraceID:    fmt.Sprintf("%032x", i),
		SpanID:     fmt.Sprintf("%016x", i),
		ParentID:   "",
		Source:     "ws://source-a/ws/logs",
		ReceivedAt: base + int64(i)*1000 + 5,
	}
}

// Run runs every conformance test.
func Run(t *testing.T, o Options) {
	t.Run("SaveQueryRoundTrip", func(t *testing.T) { testRoundTrip(t, o) })
	t.Run("Filters", func(t *testing.T) { testFilters(t, o) })
	t.Run("Limits", func(t *testing.T) { testLimits(t, o) })
	t.Run("Scan", func(t *testing.T) { testScan(t, o) })
	t.Run("Buckets", func(t *testing.T) { testBuckets(t, o) })
	t.Run("Counts", func(t *testing.T) { testCounts(t, o) })
	t.Run("TopServices", func(t *testing.T) { testTopServices(t, o) })
	t.Run("ConcurrentSave", func(t *testing.T) { testConcurrent(t, o) })
	t.Run("CloseFlushes", func(t *testing.T) { testCloseFlushes(t, o) })
	t.Run("LargestAcceptedEntry", func(t *testing.T) { testLargest(t, o) })
	t.Run("AttrFilter", func(t *testing.T) { testAttrFilter(t, o) })
	t.Run("Sync", func(t *testing.T) { testSync(t, o) })
	t.Run("DeadLetters", func(t *testing.T) { testDeadLetters(t, o) })
	if o.Dedup {
		t.Run("RedeliveredStoredOnce", func(t *testing.T) { testRedelivered(t, o) })
	}
	if o.Poison != nil {
		t.Run("PoisonSetAside", func(t *testing.T) { testPoison(t, o) })
	}
	if o.Reopen != nil {
		t.Run("SurvivesRestart", func(t *testing.T) { testReopen(t, o) })
	}
	if o.OpenRetention != nil {
		t.Run("Retention", func(t *testing.T) { testRetention(t, o) })
	}
}

// testRetention: old entries are deleted in small batches until only the
// recent ones are left; the totals still count everything stored.
func testRetention(t *testing.T, o Options) {
	s := o.OpenRetention(t, storage.Retention{Keep: time.Hour, Every: 50 * time.Millisecond, BatchSize: 300})
	defer closeStore(t, s)
	now := time.Now()
	batch := make([]models.LogEntry, 2500)
	for i := range batch {
		ts := now.Add(-2 * time.Hour) // old
		if i%5 == 0 {
			ts = now
		}
		batch[i] = models.LogEntry{Timestamp: ts.UnixMilli() - int64(i), Level: "INFO", Service: "s", Message: "m"}
	}
	save(t, s, batch)
	waitStored(t, s, 2500)
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := len(query(t, s, storage.Filter{Limit: storage.MaxLimit}))
		if n == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d entries left, want the 500 recent ones", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c, err := s.Counts(context.Background(), 0); err != nil || c.Total != 2500 {
		t.Errorf("counts after retention = %+v, %v; want 2500: totals count what was stored", c, err)
	}
	// Counted by minute, what is left: the counts of the minutes deleted
	// go with their entries.
	origin := storage.MinuteOf(now.Add(-3*time.Hour).UnixMilli()) - storage.Minute
	for {
		if n, _ := countedByMinute(t, s, origin); n == 500 {
			break
		}
		if time.Now().After(deadline) {
			n, _ := countedByMinute(t, s, origin)
			t.Fatalf("counted by minute after retention: %d, want 500", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SameEntry reports whether a and b are the same entry, attributes
// compared as JSON values (a database may store them reformatted).
func SameEntry(a, b models.LogEntry) bool {
	aa, ba := a.Attrs, b.Attrs
	a.Attrs, b.Attrs = "", ""
	if a != b {
		return false
	}
	if aa == ba {
		return true
	}
	var av, bv any
	return json.Unmarshal([]byte(aa), &av) == nil && json.Unmarshal([]byte(ba), &bv) == nil && reflect.DeepEqual(av, bv)
}

// testAttrFilter: entries are found by their attributes' values, strings
// and numbers alike.
func testAttrFilter(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	in := entries(10)
	for i := range in {
		in[i].Attrs = models.Attrs(fmt.Sprintf(`{"user_id":"u-%d","status":%d,"http.method":"GET"}`, i%3, 200+i%2))
	}
	in[9].Attrs = ""
	save(t, s, in)
	waitStored(t, s, 10)
	for _, tc := range []struct {
		attrs []storage.AttrFilter
		want  int
	}{
		{[]storage.AttrFilter{{Key: "user_id", Value: "u-1"}}, 3},
		{[]storage.AttrFilter{{Key: "status", Value: "201"}}, 4},
		{[]storage.AttrFilter{{Key: "user_id", Value: "u-1"}, {Key: "status", Value: "201"}}, 2},
		{[]storage.AttrFilter{{Key: "http.method", Value: "GET"}}, 9},
		{[]storage.AttrFilter{{Key: "user_id", Value: "nobody"}}, 0},
		{[]storage.AttrFilter{{Key: "missing", Value: "x"}}, 0},
	} {
		if got := query(t, s, storage.Filter{Attrs: tc.attrs}); len(got) != tc.want {
			t.Errorf("attrs %v: %d records, want %d", tc.attrs, len(got), tc.want)
		}
	}
}

// testLargest: every field at the parser's bound, with characters of every
// UTF-8 width, round-trips.
func testLargest(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	fill := func(n int) string {
		unit := "aé✓😀" // 1+2+3+4 bytes
		out := strings.Repeat(unit, n/len(unit))
		return out + strings.Repeat("z", n-len(out))
	}
	e := entry(0)
	e.Message = fill(parser.DefaultMaxMessageBytes)
	e.Service, e.Component = fill(parser.DefaultMaxNameBytes), fill(parser.DefaultMaxNameBytes)
	e.TraceID, e.SpanID, e.ParentID = fill(parser.DefaultMaxIDBytes), fill(parser.DefaultMaxIDBytes), fill(parser.DefaultMaxIDBytes)
	save(t, s, []models.LogEntry{e})
	waitStored(t, s, 1)
	rs := query(t, s, storage.Filter{Service: e.Service})
	if len(rs) != 1 || !SameEntry(rs[0].LogEntry, e) {
		t.Fatalf("largest entry did not round-trip: got %d records", len(rs))
	}
	if st := s.Status(); st.Rejected != 0 {
		t.Errorf("status = %+v, want nothing rejected", st)
	}
}

// testPoison: a batch holding entries the database refuses stores every
// other entry; the refused ones are counted and kept for inspection.
func testPoison(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	batch := entries(1000)
	bad := []int{0, 417, 999}
	for _, i := range bad {
		batch[i] = o.Poison(i)
	}
	save(t, s, batch)
	waitStored(t, s, uint64(len(batch)-len(bad)))
	deadline := time.Now().Add(20 * time.Second)
	for s.Status().Rejected < uint64(len(bad)) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	st := s.Status()
	if st.Stored != 997 || st.Rejected != 3 || st.Pending != 0 || st.State != storage.StateOK {
		t.Fatalf("status = %+v, want stored 997, rejected 3, nothing pending, state ok", st)
	}
	if n := sum(st.RejectedReasons); n != 3 {
		t.Errorf("rejected reasons %v add up to %d, want 3", st.RejectedReasons, n)
	}
	rej, err := s.ListRejected(context.Background(), storage.RejectedFilter{})
	if err != nil || len(rej) != 3 {
		t.Fatalf("ListRejected = %d dead letters, %v; want 3", len(rej), err)
	}
	for _, r := range rej {
		if r.Reason == "" || r.Error == "" || r.Entry == nil || r.Entry.Message == "" || r.ID == 0 {
			t.Errorf("dead letter without reason, content or id: %+v", r)
		}
	}
	if c, err := s.Counts(context.Background(), 0); err != nil || c.Total != 997 {
		t.Errorf("counts = %+v, %v; want 997: refused entries are not counted as stored", c, err)
	}
	if rs := query(t, s, storage.Filter{Limit: storage.MaxLimit}); len(rs) != 997 {
		t.Errorf("query returned %d rows, want 997", len(rs))
	}
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func save(t *testing.T, s storage.Store, entries []models.LogEntry) {
	t.Helper()
	if err := s.Save(context.Background(), entries); err != nil {
		t.Fatalf("Save: %v", err)
	}
}

// waitStored waits until the store has committed n entries in all.
func waitStored(t *testing.T, s storage.Store, n uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for s.Status().Stored < n {
		if time.Now().After(deadline) {
			t.Fatalf("stored %d of %d entries after 20s: %+v", s.Status().Stored, n, s.Status())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func closeStore(t *testing.T, s storage.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func query(t *testing.T, s storage.Store, f storage.Filter) []storage.Record {
	t.Helper()
	rs, err := s.Query(context.Background(), f)
	if err != nil {
		t.Fatalf("Query(%+v): %v", f, err)
	}
	return rs
}

func entries(n int) []models.LogEntry {
	out := make([]models.LogEntry, n)
	for i := range out {
		out[i] = entry(i)
	}
	return out
}

// testScan: Scan gives every entry passing the filter, however many,
// newest first or oldest first (equal timestamps in arrival order), and
// stops when asked to.
func testScan(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	in := entries(1500)
	in[1499].Timestamp = in[1498].Timestamp // a tie: arrival order decides
	save(t, s, in[700:])
	save(t, s, in[:700])
	waitStored(t, s, 1500)
	scan := func(f storage.Filter, stop int) []models.LogEntry {
		t.Helper()
		var got []models.LogEntry
		err := s.Scan(context.Background(), f, func(r *storage.Record) bool {
			got = append(got, r.LogEntry)
			return len(got) != stop
		})
		if err != nil {
			t.Fatalf("Scan(%+v): %v", f, err)
		}
		return got
	}
	all := scan(storage.Filter{}, -1)
	if len(all) != 1500 {
		t.Fatalf("Scan = %d entries, want all 1500 (no limit)", len(all))
	}
	if all[0].Message != in[1499].Message || all[1].Message != in[1498].Message || all[1499].Message != in[0].Message {
		t.Errorf("newest first: %q, %q ... %q", all[0].Message, all[1].Message, all[1499].Message)
	}
	old := scan(storage.Filter{Oldest: true, Service: "svc1", Since: in[10].Timestamp}, -1)
	if len(old) != 497 || old[0].Message != in[10].Message || old[len(old)-1].Message != in[1498].Message {
		t.Errorf("oldest first, svc1 since entry 10: %d entries, %q ... %q", len(old), old[0].Message, old[len(old)-1].Message)
	}
	if got := scan(storage.Filter{}, 3); len(got) != 3 {
		t.Errorf("Scan stopped after 3: got %d", len(got))
	}
}

// testBuckets: Buckets counts what passes the filter, by stream (source
// and component only when asked for) and by step, as the entries
// themselves say; the messages' bytes are bytes, when asked for.
func testBuckets(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	in := entries(300) // one a second from base
	in[7].Message = "needle in a haystack"
	in[8].Message = "ünïcode needle"
	for i := range in {
		if i%4 == 0 {
			in[i].Source, in[i].Component = "push:other", ""
		}
	}
	save(t, s, in)
	waitStored(t, s, 300)
	origin, step := base+10_500, int64(7000) // buckets (origin+(i-1)*step, origin+i*step]
	all := storage.BucketQuery{Origin: origin, Step: step, Source: true, Component: true, Bytes: true}
	for _, tc := range []struct {
		f  storage.Filter
		bq storage.BucketQuery
	}{
		{storage.Filter{Since: origin + 1}, all},
		{storage.Filter{Since: origin + 1, Until: base + 200_000, Service: "svc2"}, all},
		{storage.Filter{Since: origin + 1, Level: "WARN", Contains: "of_chars"}, all},
		{storage.Filter{Since: base - 5000 + 1, Contains: "needle"}, storage.BucketQuery{Origin: base - 5000, Step: step, Source: true, Component: true, Bytes: true}},
		{storage.Filter{Since: origin + 1, Service: "svc1"}, storage.BucketQuery{Origin: origin, Step: step}},
		{storage.Filter{Since: origin + 1}, storage.BucketQuery{Origin: origin, Step: step, Source: true}},
		// On whole minutes (storage.ByMinute: the SQL stores count by
		// minute), entries on a minute's last millisecond included: base
		// is one, and one a minute after.
		{storage.Filter{Since: base - storage.Minute + 1, Until: base + 4*storage.Minute}, storage.BucketQuery{Origin: base - storage.Minute, Step: 2 * storage.Minute, Bytes: true}},
		{storage.Filter{Since: base + 1, Until: base + 3*storage.Minute, Service: "svc1"}, storage.BucketQuery{Origin: base, Step: storage.Minute, Bytes: true}},
		{storage.Filter{Since: base + storage.Minute + 1, Level: "ERROR"}, storage.BucketQuery{Origin: base + storage.Minute, Step: storage.Minute}},
	} {
		f, bq := tc.f, tc.bq
		wantCounts := map[storage.Bucket][2]int64{}
		for _, e := range in {
			if !f.Match(&e) || e.Timestamp <= bq.Origin {
				continue
			}
			k := storage.Bucket{Service: e.Service, Level: e.Level, Index: storage.BucketIndex(e.Timestamp, bq.Origin, bq.Step)}
			if bq.Source {
				k.Source = e.Source
			}
			if bq.Component {
				k.Component = e.Component
			}
			c := wantCounts[k]
			c[0]++
			if bq.Bytes {
				c[1] += int64(len(e.Message))
			}
			wantCounts[k] = c
		}
		got := map[storage.Bucket][2]int64{}
		err := s.Buckets(context.Background(), f, bq, func(b storage.Bucket) bool {
			k := b
			k.Count, k.Bytes = 0, 0
			if _, dup := got[k]; dup {
				t.Errorf("bucket %+v twice", k)
			}
			got[k] = [2]int64{b.Count, b.Bytes}
			return true
		})
		if err != nil {
			t.Fatalf("Buckets(%+v, %+v): %v", f, bq, err)
		}
		if len(got) != len(wantCounts) || len(got) == 0 {
			t.Errorf("Buckets(%+v, %+v): %d buckets, want %d", f, bq, len(got), len(wantCounts))
		}
		for k, c := range wantCounts {
			if got[k] != c {
				t.Errorf("Buckets(%+v, %+v): bucket %+v = %v, want %v (count, bytes)", f, bq, k, got[k], c)
			}
		}
	}
}

func testRoundTrip(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	in := entries(3)
	in[1].ParentID = "00f067aa0ba902b7"
	in[2].Component, in[2].TraceID, in[2].SpanID = "", "", ""
	in[0].Attrs = `{"user_id":"u-1007","status":200,"ok":true,"nested":{"a":[1,2]},"quote":"say \"hi\" ✓"}`
	save(t, s, in)
	waitStored(t, s, 3)
	got := query(t, s, storage.Filter{})
	if len(got) != 3 {
		t.Fatalf("got %d records, want 3", len(got))
	}
	for i, r := range got {
		want := in[2-i] // newest first
		if !SameEntry(r.LogEntry, want) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, r.LogEntry, want)
		}
		if r.Instance != o.Instance {
			t.Errorf("record %d instance %q, want %q", i, r.Instance, o.Instance)
		}
	}
	if st := s.Status(); st.Stored != 3 || st.State != storage.StateOK || st.Backend == "" {
		t.Errorf("status = %+v", st)
	}
}

func testFilters(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	in := entries(30)
	in[7].Message = "needle in a haystack"
	in[20].Message = "another NEEDLE, upper case"
	in[21].Message = `glob and like: a*b?[c]\d_e% here`
	// Out of timestamp order on arrival: query order is by timestamp.
	save(t, s, in[15:])
	save(t, s, in[:15])
	waitStored(t, s, 30)

	ts := func(i int) int64 { return in[i].Timestamp }
	// Every message but the three replaced above contains "100% of_".
	var literal []int
	for i := 29; i >= 0; i-- {
		if i != 7 && i != 20 && i != 21 {
			literal = append(literal, i)
		}
	}
	tests := []struct {
		name string
		f    storage.Filter
		want []int // indexes into in, newest first
	}{
		{"all", storage.Filter{}, seq(29, 0)},
		{"service", storage.Filter{Service: "svc1"}, []int{28, 25, 22, 19, 16, 13, 10, 7, 4, 1}},
		{"level", storage.Filter{Level: "ERROR"}, []int{29, 26, 23, 20, 17, 14, 11, 8, 5, 2}},
		{"service and level", storage.Filter{Service: "svc0", Level: "INFO"}, []int{27, 24, 21, 18, 15, 12, 9, 6, 3, 0}},
		{"service and level disjoint", storage.Filter{Service: "svc0", Level: "WARN"}, nil},
		{"since", storage.Filter{Since: ts(25)}, seq(29, 25)},
		{"until", storage.Filter{Until: ts(3)}, seq(3, 0)},
		{"since and until", storage.Filter{Since: ts(10), Until: ts(12)}, seq(12, 10)},
		{"contains is case-sensitive", storage.Filter{Contains: "needle"}, []int{7}},
		{"contains with wildcards taken literally", storage.Filter{Contains: "100% of_"}, literal},
		{"contains nothing", storage.Filter{Contains: "%_x"}, nil},
		{"contains with pattern characters", storage.Filter{Contains: `*b?[c]\d_e%`}, []int{21}},
		{"contains two characters", storage.Filter{Contains: "NE"}, []int{20}},
		{"limit", storage.Filter{Limit: 4}, seq(29, 26)},
		{"unknown service", storage.Filter{Service: "nope"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			got := query(t, s, tc.f)
			if len(got) != len(want) {
				t.Fatalf("got %d records, want %d", len(got), len(want))
			}
			for k, i := range want {
				if got[k].Timestamp != in[i].Timestamp || got[k].Message != in[i].Message {
					t.Errorf("record %d = %d %q, want entry %d", k, got[k].Timestamp, got[k].Message, i)
				}
			}
		})
	}
}

// seq returns hi, hi-1, ..., lo.
func seq(hi, lo int) []int {
	var out []int
	for i := hi; i >= lo; i-- {
		out = append(out, i)
	}
	return out
}

func testLimits(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	save(t, s, entries(1200))
	waitStored(t, s, 1200)
	if n := len(query(t, s, storage.Filter{})); n != storage.DefaultLimit {
		t.Errorf("default limit gave %d records, want %d", n, storage.DefaultLimit)
	}
	if n := len(query(t, s, storage.Filter{Limit: 5000})); n != storage.MaxLimit {
		t.Errorf("limit 5000 gave %d records, want the maximum %d", n, storage.MaxLimit)
	}
}

func testCounts(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	save(t, s, entries(30))
	save(t, s, entries(6))
	waitStored(t, s, 36)
	c, err := s.Counts(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != 36 || c.ByLevel["INFO"] != 12 || c.ByLevel["WARN"] != 12 || c.ByLevel["ERROR"] != 12 {
		t.Errorf("counts = %+v", c)
	}
	if c.ByService["svc0"] != 12 || c.ByService["svc1"] != 12 || c.ByService["svc2"] != 12 || len(c.ByService) != 3 {
		t.Errorf("by_service = %v", c.ByService)
	}
}

// testTopServices: with many services, Counts names only the top ones and
// sums the rest under OtherService; the totals still add up.
func testTopServices(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	var batch []models.LogEntry
	for i := range 200 { // service k has k+1 entries: svc199 is the biggest
		for range i + 1 {
			e := entry(len(batch))
			e.Service = fmt.Sprintf("many%03d", i)
			batch = append(batch, e)
		}
	}
	for len(batch) > 0 {
		n := min(len(batch), 1000)
		save(t, s, batch[:n])
		batch = batch[n:]
	}
	const total = 200 * 201 / 2
	waitStored(t, s, total)
	c, err := s.Counts(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"many199": 200, "many198": 199, "many197": 198, "many196": 197, "many195": 196}
	want[storage.OtherService] = total - (200 + 199 + 198 + 197 + 196)
	if c.Total != total || !maps.Equal(c.ByService, want) {
		t.Errorf("counts = total %d, by_service %v; want %d and %v", c.Total, c.ByService, total, want)
	}
}

func testConcurrent(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	const workers, batches, size = 8, 25, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				batch := make([]models.LogEntry, size)
				for i := range batch {
					batch[i] = entry((w*batches+b)*size + i)
				}
				if err := s.Save(context.Background(), batch); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitStored(t, s, workers*batches*size)
	c, err := s.Counts(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != workers*batches*size {
		t.Errorf("total = %d, want %d", c.Total, workers*batches*size)
	}
}

func testCloseFlushes(t *testing.T, o Options) {
	s := o.Open(t)
	save(t, s, entries(7))
	closeStore(t, s) // no wait: Close must write the partial batch
	if st := s.Status(); st.Stored != 7 || st.Pending != 0 {
		t.Errorf("status after Close = %+v, want 7 stored, none pending", st)
	}
	if err := s.Save(context.Background(), entries(1)); err == nil {
		t.Error("Save after Close succeeded")
	}
}

// testDeadLetters: records set aside are listed newest first, with their
// reason, source, service and text, filtered by reason, source and ids and
// paged by id; those forgotten are gone.
func testDeadLetters(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	var rs []storage.Rejected
	for i := range 6 {
		reason, source := "invalid_level", "push:a:http"
		if i%2 == 1 {
			reason = "field_too_long"
		}
		if i >= 4 {
			source = "push:b:otlp"
		}
		rs = append(rs, storage.Rejected{Record: fmt.Sprintf(`{"level":"LOUD","msg":"r%d"}`, i), Reason: reason, Source: source, At: at})
	}
	rs[5].Record, rs[5].Truncated = "bad \ufffd \u00e9", true
	rs[4].Service = "checkout"
	if err := s.SetAside(ctx, rs[:3]); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAside(ctx, rs[3:]); err != nil {
		t.Fatal(err)
	}
	list := func(f storage.RejectedFilter) []storage.Rejected {
		t.Helper()
		got, err := s.ListRejected(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	all := list(storage.RejectedFilter{})
	if len(all) != 6 {
		t.Fatalf("ListRejected = %d, want 6", len(all))
	}
	if all[0].Record != "bad \ufffd \u00e9" || !all[0].Truncated || all[0].Source != "push:b:otlp" || !all[0].At.Equal(at) {
		t.Errorf("newest = %+v, want the last set aside, its text, truncated, with its source and time", all[0])
	}
	if all[5].Record != `{"level":"LOUD","msg":"r0"}` || all[5].Reason != "invalid_level" || all[5].Entry != nil {
		t.Errorf("oldest = %+v", all[5])
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Fatalf("ids not newest first: %d then %d", all[i-1].ID, all[i].ID)
		}
	}
	if got := list(storage.RejectedFilter{Reason: "field_too_long"}); len(got) != 3 {
		t.Errorf("by reason: %d, want 3", len(got))
	}
	if got := list(storage.RejectedFilter{Source: "push:b:otlp", Reason: "invalid_level"}); len(got) != 1 || got[0].Record != `{"level":"LOUD","msg":"r4"}` || got[0].Service != "checkout" {
		t.Errorf("by source and reason: %+v", got)
	}
	page := list(storage.RejectedFilter{Limit: 2})
	next := list(storage.RejectedFilter{Limit: 2, Before: page[1].ID})
	if len(page) != 2 || len(next) != 2 || next[0].ID != all[2].ID || next[1].ID != all[3].ID {
		t.Errorf("pages %+v then %+v, want the 6 in order", page, next)
	}
	ids := []int64{all[1].ID, all[4].ID, all[0].ID + 1000}
	if got := list(storage.RejectedFilter{IDs: ids}); len(got) != 2 || got[0].ID != all[1].ID || got[1].ID != all[4].ID {
		t.Errorf("by ids %v: %+v, want the two that exist, newest first", ids, got)
	}
	if got := list(storage.RejectedFilter{IDs: ids, Reason: "invalid_level"}); len(got) != 1 || got[0].ID != all[1].ID {
		t.Errorf("by ids and reason: %+v, want %d", got, all[1].ID)
	}
	if n, err := s.ForgetRejected(ctx, ids); err != nil || n != 2 {
		t.Errorf("ForgetRejected(%v) = %d, %v; want the 2 that exist", ids, n, err)
	}
	if n, err := s.ForgetRejected(ctx, nil); err != nil || n != 0 {
		t.Errorf("ForgetRejected(nil) = %d, %v", n, err)
	}
	left := list(storage.RejectedFilter{})
	if len(left) != 4 || left[0].ID != all[0].ID || left[1].ID != all[2].ID {
		t.Errorf("after forgetting %v: %+v", ids, left)
	}
}

func testReopen(t *testing.T, o Options) {
	s := o.Open(t)
	save(t, s, entries(9))
	if err := s.SetAside(context.Background(), []storage.Rejected{{Record: "{", Reason: "invalid_json", At: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s = o.Reopen(t)
	defer closeStore(t, s)
	c, err := s.Counts(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != 9 || c.ByService["svc1"] != 3 {
		t.Errorf("counts after reopening = %+v, want 9 entries", c)
	}
	if n := len(query(t, s, storage.Filter{Level: "WARN"})); n != 3 {
		t.Errorf("%d WARN entries after reopening, want 3", n)
	}
	if rs, err := s.ListRejected(context.Background(), storage.RejectedFilter{}); err != nil || len(rs) != 1 || rs[0].Record != "{" {
		t.Errorf("dead letters after reopening = %+v, %v; want the one set aside", rs, err)
	}
}

// Batch returns n entries shaped like the generator's, with timestamps
// from ts on, one millisecond apart, for benchmarks.
func Batch(n int, ts int64) []models.LogEntry {
	batch := make([]models.LogEntry, n)
	for i := range batch {
		batch[i] = models.LogEntry{
			Timestamp: ts + int64(i), Level: models.Levels[i%3], Service: fmt.Sprintf("service-%d", i%5),
			Message: "request completed successfully", Component: "http",
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", ParentID: "a3ce929d0e0e4736",
			Source: "ws://localhost:8080/ws/logs", ReceivedAt: ts,
		}
	}
	return batch
}

// testSync: once Sync returns, everything saved before it is committed.
func testSync(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	save(t, s, entries(250))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if st := s.Status(); st.Stored != 250 || st.Pending != 0 {
		t.Fatalf("after Sync: %+v, want 250 stored and nothing pending", st)
	}
}

// busBatch returns entries lo..hi-1 carried by bus messages of 100 entries
// each (message k at stream sequence k+1).
func busBatch(lo, hi int) []models.LogEntry {
	out := make([]models.LogEntry, 0, hi-lo)
	for i := lo; i < hi; i++ {
		e := entry(i)
		e.Bus = models.NewBusID(42, uint64(i/100+1), i%100)
		out = append(out, e)
	}
	return out
}

// testRedelivered: entries saved again with the same bus identity, alone,
// mixed with new ones, or by two savers at once, are stored once and
// counted once; entries that did not come over the bus are never deduplicated.
func testRedelivered(t *testing.T, o Options) {
	s := o.Open(t)
	defer closeStore(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	flush := func() {
		t.Helper()
		if err := s.Sync(ctx); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
	save(t, s, busBatch(0, 300))
	flush()
	save(t, s, busBatch(0, 300)) // all of it again
	flush()
	save(t, s, busBatch(250, 400)) // 50 again, 100 new
	flush()
	var wg sync.WaitGroup
	for range 2 { // the same new messages from two writers at once
		wg.Go(func() { _ = s.Save(ctx, busBatch(400, 600)) })
	}
	wg.Wait()
	flush()
	plain := entries(10) // no bus identity: each is its own
	save(t, s, plain)
	save(t, s, plain)
	flush()
	st := s.Status()
	if st.Stored != 620 || st.Duplicates != 550 || st.Pending != 0 {
		t.Fatalf("status = %+v, want 620 stored, 550 duplicates, nothing pending", st)
	}
	if c, err := s.Counts(ctx, 0); err != nil || c.Total != 620 {
		t.Errorf("counts = %+v, %v; want a total of 620: duplicates are not counted", c, err)
	}
	rs := query(t, s, storage.Filter{Limit: storage.MaxLimit})
	if len(rs) != 620 {
		t.Errorf("query returned %d rows, want 620", len(rs))
	}
}

// MinuteMigration checks a migration to schema version 8: entries saved
// over several minutes through the store open returns, the store closed
// and its database taken back to version 7 by downgrade (no minute_counts),
// then opened again (migrated) and more saved, are all counted by minute.
func MinuteMigration(t *testing.T, open func(t *testing.T) storage.Store, downgrade func(t *testing.T)) {
	t.Helper()
	ctx := context.Background()
	base := storage.MinuteOf(time.Now().Add(-time.Hour).UnixMilli())
	old, later := everySecond(500, base), everySecond(100, base+500_000)
	s := open(t)
	save(t, s, old)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	downgrade(t)
	s = open(t)
	defer closeStore(t, s)
	save(t, s, later)
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	n, bytes := countedByMinute(t, s, base-storage.Minute)
	var want int64
	for _, e := range append(old, later...) {
		want += int64(len(e.Message))
	}
	if n != 600 || bytes != want {
		t.Errorf("counted by minute after migration: %d entries, %d bytes; want 600, %d", n, bytes, want)
	}
}

// countedByMinute returns the entries, and their messages' bytes, that
// s's Buckets counts by whole minutes (storage.ByMinute: the SQL stores
// read minute_counts) after the minute ending at from.
func countedByMinute(t *testing.T, s storage.Store, from int64) (n, bytes int64) {
	t.Helper()
	f, bq := storage.Filter{Since: from + 1}, storage.BucketQuery{Origin: from, Step: storage.Minute, Bytes: true}
	if !storage.ByMinute(f, bq) {
		t.Fatalf("from %d: not a query minute_counts answers", from)
	}
	err := s.Buckets(context.Background(), f, bq, func(b storage.Bucket) bool { n, bytes = n+b.Count, bytes+b.Bytes; return true })
	if err != nil {
		t.Fatal(err)
	}
	return n, bytes
}

// everySecond is Batch with its entries a second apart: over minutes, one
// of them on each minute's end when ts is.
func everySecond(n int, ts int64) []models.LogEntry {
	b := Batch(n, ts)
	for i := range b {
		b[i].Timestamp = ts + int64(i)*1000
	}
	return b
}

// Package storage holds what every storage backend shares: the query filter,
// counts and status they report, a tally of entries by level and service,
// and the Batcher that turns the workers' small batches into large
// transactions. Each backend lives in its own sub-package so that using one
// never links another's driver.
package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Query limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Filter selects stored entries for a query. Zero fields do not filter.
type Filter struct {
	Service  string // exact service name
	Level    string // INFO, WARN or ERROR
	Contains string // substring of the message, case-sensitive
	Since    int64  // entries with Timestamp >= Since (Unix ms); 0 = no bound
	Until    int64  // entries with Timestamp <= Until (Unix ms); 0 = no bound
	Limit    int    // most entries returned; 0 = DefaultLimit
	Oldest   bool   // Scan: oldest first (Query returns the newest first)
	// Attrs are conditions on the attributes: each named attribute has the
	// value given, compared as text (a number by its JSON text).
	Attrs []AttrFilter
}

// AttrFilter is one condition on an entry's attributes.
type AttrFilter struct{ Key, Value string }

// MaxAttrFilters bounds the attribute conditions of one query.
const MaxAttrFilters = 4

// Match reports whether e passes f, for backends that filter in Go.
func (f Filter) Match(e *models.LogEntry) bool {
	return (f.Service == "" || e.Service == f.Service) &&
		(f.Level == "" || e.Level == f.Level) &&
		(f.Since == 0 || e.Timestamp >= f.Since) &&
		(f.Until == 0 || e.Timestamp <= f.Until) &&
		(f.Contains == "" || strings.Contains(e.Message, f.Contains)) &&
		(len(f.Attrs) == 0 || matchAttrs(e.Attrs, f.Attrs))
}

// matchAttrs reports whether attrs, a JSON object, has every attribute of
// want with its value (strings as themselves, numbers and booleans by their
// JSON text).
func matchAttrs(attrs models.Attrs, want []AttrFilter) bool {
	if attrs == "" {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(attrs), &m) != nil {
		return false
	}
	for _, w := range want {
		raw, ok := m[w.Key]
		if !ok {
			return false
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			s = string(raw)
		}
		if s != w.Value {
			return false
		}
	}
	return true
}

// EffectiveLimit returns the limit to apply: Limit, or DefaultLimit when it
// is zero, never more than MaxLimit.
func (f Filter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	}
	return f.Limit
}

// Record is one stored entry as a query returns it.
type Record struct {
	models.LogEntry
	// Instance names the processor that stored it, where several share a
	// database (PostgreSQL); empty otherwise.
	Instance string `json:"instance,omitempty"`
}

// OtherService is the service name under which entries are counted once a
// tally has seen its maximum number of distinct services, so that a source
// inventing service names cannot grow memory without bound.
const OtherService = "(other)"

// DefaultMaxServices bounds the services a Tally counts by name.
const DefaultMaxServices = 10000

// DefaultTopServices is how many services Counts names when asked for zero.
const DefaultTopServices = 50

// Counts are totals of entries by level and by service. ByService names
// only the services with the most entries (ties broken by name); the
// entries of every other service are summed under OtherService, so that
// ByService stays small however many services there are.
type Counts struct {
	Total     uint64            `json:"total"`
	ByLevel   map[string]uint64 `json:"by_level"`
	ByService map[string]uint64 `json:"by_service"`
}

// TopServices keeps the top services of all (by count, then name) and sums
// the rest, with any existing OtherService count, under OtherService.
func TopServices(all map[string]uint64, top int) map[string]uint64 {
	if top <= 0 {
		top = DefaultTopServices
	}
	other, hasOther := all[OtherService]
	type sc struct {
		name string
		n    uint64
	}
	list := make([]sc, 0, len(all))
	for k, v := range all {
		if k != OtherService {
			list = append(list, sc{k, v})
		}
	}
	out := make(map[string]uint64, min(len(list), top)+1)
	if len(list) > top {
		slices.SortFunc(list, func(a, b sc) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.name, b.name)) })
		for _, e := range list[top:] {
			other += e.n
		}
		list, hasOther = list[:top], true
	}
	for _, e := range list {
		out[e.name] = e.n
	}
	if hasOther {
		out[OtherService] = other
	}
	return out
}

// Status is a store's health as /stats and /readyz show it.
type Status struct {
	Backend   string `json:"backend"`              // memory, sqlite or postgres
	State     string `json:"state"`                // ok, or failing while writes fail
	Stored    uint64 `json:"stored"`               // entries committed by this process
	Pending   int    `json:"pending"`              // entries handed over but not yet committed
	LastError string `json:"last_error,omitempty"` // the last write error, kept after recovery
	// Rejected counts entries the database refused for their content, set
	// aside so that the rest of their batch was stored; by reason in
	// RejectedReasons.
	Rejected        uint64            `json:"rejected"`
	RejectedReasons map[string]uint64 `json:"rejected_reasons,omitempty"`
	// WriteErrors counts database writes that failed (and were retried,
	// or split when the content was refused); Writes times every write.
	// Both stay zero for the memory store.
	WriteErrors uint64           `json:"write_errors"`
	Writes      *LatencySnapshot `json:"-"`
	// Duplicates counts entries already stored, and so skipped: delivered
	// again by the message bus, or sent again under the same identity (an
	// Idempotency-Key, a bulk document's _id). SQLite and PostgreSQL, and the
	// memory store among the entries it keeps.
	Duplicates uint64 `json:"duplicates,omitempty"`
}

// States of a Status.
const (
	StateOK      = "ok"
	StateFailing = "failing"
)

// ErrClosed is returned by Save after Close.
var ErrClosed = errors.New("storage closed")

// Tally counts entries by level and by service. It is safe for concurrent
// use; the zero value is not, use NewTally.
type Tally struct {
	maxServices int

	mu        sync.Mutex
	total     uint64
	byLevel   [len(models.StoredLevels)]uint64
	byService map[string]uint64
}

// NewTally returns an empty Tally counting at most maxServices services by
// name (DefaultMaxServices when zero).
func NewTally(maxServices int) *Tally {
	if maxServices <= 0 {
		maxServices = DefaultMaxServices
	}
	return &Tally{maxServices: maxServices, byService: make(map[string]uint64)}
}

// Add counts every entry of batch, taking the lock once. Services are
// first counted within the batch, where a few names repeat, by comparing
// strings; the map is then touched once per distinct service.
func (t *Tally) Add(batch []models.LogEntry) {
	type svcCount struct {
		name string
		n    uint64
	}
	var local [16]svcCount
	distinct := 0
	var levels [len(models.StoredLevels)]uint64
	var rest []models.LogEntry // entries whose service did not fit in local
	for i := range batch {
		e := &batch[i]
		if l := models.StoredLevelIndex(e.Level); l >= 0 {
			levels[l]++
		}
		k := 0
		for k < distinct && local[k].name != e.Service {
			k++
		}
		switch {
		case k < distinct:
			local[k].n++
		case distinct < len(local):
			local[distinct] = svcCount{e.Service, 1}
			distinct++
		default:
			rest = append(rest, *e)
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.total += uint64(len(batch))
	for l, n := range levels {
		t.byLevel[l] += n
	}
	for _, sc := range local[:distinct] {
		t.addService(sc.name, sc.n)
	}
	for i := range rest {
		t.addService(rest[i].Service, 1)
	}
}

// addService adds n to service's count; t.mu is held.
func (t *Tally) addService(service string, n uint64) {
	if _, ok := t.byService[service]; ok {
		t.byService[service] += n
	} else if len(t.byService) < t.maxServices {
		// Clone: the entry's strings share its frame's bytes.
		t.byService[strings.Clone(service)] = n
	} else {
		t.byService[OtherService] += n
	}
}

// Counts returns the totals, naming the top services (DefaultTopServices
// when top is zero).
func (t *Tally) Counts(top int) Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := Counts{
		Total:     t.total,
		ByLevel:   make(map[string]uint64, len(models.StoredLevels)),
		ByService: TopServices(t.byService, top),
	}
	for i, l := range models.StoredLevels {
		// The generator's three levels always; DEBUG once there is one.
		if n := t.byLevel[i]; n > 0 || l != models.LevelDebug {
			c.ByLevel[l] = n
		}
	}
	return c
}

// SortNewestFirst orders records by timestamp, newest first, keeping the
// given order among equal timestamps (callers pass them newest-arrival
// first).
func SortNewestFirst(rs []Record) {
	slices.SortStableFunc(rs, func(a, b Record) int { return cmp.Compare(b.Timestamp, a.Timestamp) })
}

// Store is the contract every backend meets, and what the pipeline uses.
// All methods are safe for concurrent use. Save must not keep batch; an
// entry saved may become visible to Query and Counts only once committed
// (Status().Stored counts it). Close flushes what was saved, bounded by ctx.
//
// Counts names the top services (DefaultTopServices when top is zero); its
// cost does not grow with the number of services.
//
// SetAside keeps dead letters (records the parser refused on a push path;
// the Batcher sets aside what the database refuses itself): durably in
// SQLite and PostgreSQL, the newest in memory. ListRejected reads them,
// newest first; ForgetRejected deletes those numbered ids (once replayed)
// and returns how many there were.
//
// Scan calls fn with every entry passing f (but for its Limit), newest
// first (oldest first with f.Oldest; by timestamp, then by arrival), until
// fn returns false or ctx ends; it holds no more than one entry at a time
// where the backend can stream them (SQLite, PostgreSQL) and never blocks
// Save while fn runs.
//
// Buckets calls fn with the counts of the entries passing f (its Since
// above q.Origin; Limit and Oldest aside) by stream and by step (see
// BucketQuery), in no order, until fn returns false: what a metric query
// over many entries reads instead of the entries.
//
// Sync waits until every entry saved before the call is committed or set
// aside (a writer reading a message bus acknowledges only then); a store
// whose Save commits at once returns nil.
type Store interface {
	Save(ctx context.Context, batch []models.LogEntry) error
	Sync(ctx context.Context) error
	Query(ctx context.Context, f Filter) ([]Record, error)
	Scan(ctx context.Context, f Filter, fn func(*Record) bool) error
	Buckets(ctx context.Context, f Filter, q BucketQuery, fn func(Bucket) bool) error
	Counts(ctx context.Context, top int) (Counts, error)
	Status() Status
	SetAside(ctx context.Context, rs []Rejected) error
	ListRejected(ctx context.Context, f RejectedFilter) ([]Rejected, error)
	ForgetRejected(ctx context.Context, ids []int64) (int, error)
	Close(ctx context.Context) error
}

// Rows is what ScanCounts and ScanRecords need of a result set; both
// database/sql's and pgx's rows have it.
type Rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}

// Bucket counts the entries of one stream (service, level, and source
// and component when asked for) in one step of a range: Index i holds the
// timestamps in (origin+(i-1)*step, origin+i*step]. Bytes are the
// messages' bytes, when asked for.
type Bucket struct {
	Service, Level, Source, Component string
	Index, Count, Bytes               int64
}

// BucketQuery asks Buckets for steps of Step from Origin, counted by
// service and level, and by source and component when Source and
// Component say so (otherwise those are empty: the entries of every source
// are counted together, which an index covering service, ts and level can
// answer alone); the messages' bytes are summed when Bytes says so.
type BucketQuery struct {
	Origin, Step      int64
	Source, Component bool
	Bytes             bool
}

// BucketIndex is the index of the bucket holding ts (ts > origin).
func BucketIndex(ts, origin, step int64) int64 { return (ts - origin + step - 1) / step }

// EachRecord calls fn with each row read into a Record (scanned into the
// pointers targets returns for it) until fn returns false.
func EachRecord(rows Rows, targets func(*Record) []any, fn func(*Record) bool) error {
	for rows.Next() {
		var r Record
		if err := rows.Scan(targets(&r)...); err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		if !fn(&r) {
			return nil
		}
	}
	return rows.Err()
}

// ScanRecords reads every row into a Record, scanning into the pointers
// targets returns for it.
func ScanRecords(rows Rows, targets func(*Record) []any) ([]Record, error) {
	out := []Record{}
	for rows.Next() {
		var r Record
		if err := rows.Scan(targets(&r)...); err != nil {
			return nil, fmt.Errorf("query: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ScanCounts builds Counts from two result sets of (name, n): every level,
// and the top services, newest-count first.
func ScanCounts(levels, services Rows) (Counts, error) {
	c := Counts{ByLevel: make(map[string]uint64, len(models.Levels)), ByService: make(map[string]uint64)}
	for _, l := range models.Levels {
		c.ByLevel[l] = 0
	}
	scan := func(rows Rows, into map[string]uint64) (uint64, error) {
		var sum uint64
		for rows.Next() {
			var name string
			var n int64
			if err := rows.Scan(&name, &n); err != nil {
				return 0, fmt.Errorf("counts: %w", err)
			}
			into[name] += uint64(n)
			sum += uint64(n)
		}
		return sum, rows.Err()
	}
	total, err := scan(levels, c.ByLevel)
	if err != nil {
		return Counts{}, err
	}
	named, err := scan(services, c.ByService)
	if err != nil {
		return Counts{}, err
	}
	c.Total = total
	if total > named {
		c.ByService[OtherService] += total - named
	}
	return c, nil
}

package storage

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Rejected is what was refused and set aside (a dead letter): an entry
// the database refused for its content, or a record the parser refused on
// a push path, with the reason and where it came from. ID orders them
// (newer, higher) where the backend keeps them durably.
type Rejected struct {
	ID int64 `json:"id,omitempty"`
	// Entry is the entry the database refused; nil for a record.
	Entry *models.LogEntry `json:"entry,omitempty"`
	// Record is the record the parser refused, as it came (its first
	// bytes, Truncated when cut); empty for an entry.
	Record    string `json:"record,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// Service is the service a record that names none was given on its
	// path (a push token's name, a bulk request's index): what a replay
	// parses it with.
	Service string    `json:"service,omitempty"`
	Reason  string    `json:"reason"`
	Source  string    `json:"source,omitempty"`
	Error   string    `json:"error,omitempty"`
	At      time.Time `json:"at"`
}

// RejectedFilter selects dead letters: by reason and source when set, with
// an ID below Before when set, one of IDs when set, the newest Limit
// (EffectiveLimit) first.
type RejectedFilter struct {
	Reason string
	Source string
	Before int64
	IDs    []int64
	Limit  int
}

// EffectiveLimit is Limit within 1..MaxLimit, DefaultLimit when zero.
func (f RejectedFilter) EffectiveLimit() int { return Filter{Limit: f.Limit}.EffectiveLimit() }

// Match reports whether r passes f (but for Limit).
func (f RejectedFilter) Match(r *Rejected) bool {
	return (f.Reason == "" || r.Reason == f.Reason) && (f.Source == "" || r.Source == f.Source) &&
		(f.Before <= 0 || r.ID < f.Before) && (len(f.IDs) == 0 || slices.Contains(f.IDs, r.ID))
}

// EntryJSON is e as the dead-letter tables keep it.
func EntryJSON(e *models.LogEntry) []byte {
	b, _ := json.Marshal(e) // a LogEntry always marshals
	return b
}

// Ring keeps the newest dead letters in memory, numbering them: the
// memory store's. Safe for concurrent use.
type Ring struct {
	mu   sync.Mutex
	keep int
	rs   []Rejected // oldest first
	next int64
}

// NewRing returns a ring of the newest keep.
func NewRing(keep int) *Ring {
	if keep <= 0 {
		keep = DefaultRejectedKeep
	}
	return &Ring{keep: keep}
}

// Add keeps rs, numbering them, and lets the oldest go past the bound.
func (g *Ring) Add(rs []Rejected) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, r := range rs {
		g.next++
		r.ID = g.next
		g.rs = append(g.rs, r)
	}
	if n := len(g.rs) - g.keep; n > 0 {
		clear(g.rs[:n])
		g.rs = append(g.rs[:0], g.rs[n:]...)
	}
}

// List returns the dead letters passing f, newest first.
func (g *Ring) List(f RejectedFilter) []Rejected {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []Rejected{}
	for i := len(g.rs) - 1; i >= 0 && len(out) < f.EffectiveLimit(); i-- {
		if f.Match(&g.rs[i]) {
			out = append(out, g.rs[i])
		}
	}
	return out
}

// Forget lets go of the dead letters numbered ids and returns how many
// there were.
func (g *Ring) Forget(ids []int64) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := len(g.rs)
	g.rs = slices.DeleteFunc(g.rs, func(r Rejected) bool { return slices.Contains(ids, r.ID) })
	return n - len(g.rs)
}

// RejectedInsertSQL inserts one dead letter, with RejectedValues's values
// for placeholder(1) to placeholder(8).
func RejectedInsertSQL(placeholder func(n int) string) string {
	ps := make([]string, 8)
	for i := range ps {
		ps[i] = placeholder(i + 1)
	}
	return "INSERT INTO rejected (at, reason, source, error, entry, record, truncated, service) VALUES (" + strings.Join(ps, ", ") + ")"
}

// ForgetRejectedSQL deletes the dead letters numbered ids, with
// placeholder(n) writing the nth parameter.
func ForgetRejectedSQL(ids []int64, placeholder func(n int) string) (string, []any) {
	ps, args := make([]string, len(ids)), make([]any, len(ids))
	for i, id := range ids {
		ps[i], args[i] = placeholder(i+1), id
	}
	return "DELETE FROM rejected WHERE id IN (" + strings.Join(ps, ", ") + ")", args
}

// RejectedValues are r's values for RejectedInsertSQL: the entry as JSON
// or the record's bytes, the other NULL.
func RejectedValues(r *Rejected) []any {
	var entry, record []byte
	if r.Entry != nil {
		entry = EntryJSON(r.Entry)
	} else {
		record = []byte(r.Record)
	}
	return []any{r.At.UnixMilli(), r.Reason, r.Source, r.Error, entry, record, r.Truncated, r.Service}
}

// RejectedSQL is the query for the dead letters passing f, newest first,
// over the rejected table both SQL backends keep, with placeholder(n)
// writing the nth parameter.
func RejectedSQL(f RejectedFilter, placeholder func(n int) string) (string, []any) {
	var b strings.Builder
	var args []any
	b.WriteString(`SELECT id, at, reason, source, error, entry, record, truncated, service FROM rejected WHERE true`)
	add := func(cond string, v any) {
		args = append(args, v)
		b.WriteString(" AND " + cond + " " + placeholder(len(args)))
	}
	if f.Reason != "" {
		add("reason =", f.Reason)
	}
	if f.Source != "" {
		add("source =", f.Source)
	}
	if f.Before > 0 {
		add("id <", f.Before)
	}
	if len(f.IDs) > 0 {
		ps := make([]string, len(f.IDs))
		for i, id := range f.IDs {
			args = append(args, id)
			ps[i] = placeholder(len(args))
		}
		b.WriteString(" AND id IN (" + strings.Join(ps, ", ") + ")")
	}
	fmt.Fprintf(&b, " ORDER BY id DESC LIMIT %d", f.EffectiveLimit())
	return b.String(), args
}

// ScanRejected reads RejectedSQL's rows.
func ScanRejected(rows Rows) ([]Rejected, error) {
	out := []Rejected{}
	for rows.Next() {
		var r Rejected
		var at int64
		var entry, record []byte
		if err := rows.Scan(&r.ID, &at, &r.Reason, &r.Source, &r.Error, &entry, &record, &r.Truncated, &r.Service); err != nil {
			return nil, err
		}
		r.At, r.Record = time.UnixMilli(at).UTC(), string(record)
		if entry != nil {
			r.Entry = new(models.LogEntry)
			if err := json.Unmarshal(entry, r.Entry); err != nil {
				return nil, fmt.Errorf("dead letter %d: %w", r.ID, err)
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

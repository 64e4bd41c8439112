// Package sqlite stores log entries in an SQLite file through the pure-Go
// driver modernc.org/sqlite (no C compiler needed, on any platform). It
// writes in WAL mode from one connection, in batched transactions of
// multi-row INSERT statements, and reads from a separate pool.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// schemaVersion is the PRAGMA user_version this release writes and reads.
// Version 1 kept one log_counts table by (service, level); version 2 keeps
// service_counts and level_counts, so that the top services are read
// through an index however many services there are; version 3 adds the
// attrs column; version 4 adds bus_epoch and bus_pos, an entry's identity
// on the message bus, unique where present; version 5 adds the rejected
// table of dead letters; version 6, its service column; version 7 puts
// level into the (service, ts) index; version 8 adds minute_counts,
// filled from the rows already there. The search index
// (Config.SearchIndex) is not part of the schema: Open adds or drops it.
const schemaVersion = 8

// rowsPerInsert is how many rows one INSERT statement carries.
const rowsPerInsert = 100

// dialect is SQLite's way of writing a query.
var dialect = storage.Dialect{
	Placeholder: func(n int) string { return "?" + strconv.Itoa(n) }, // numbered: Buckets uses some before the WHERE
	Contains:    func(v string, arg func(any) string) string { return "instr(message, " + arg(v) + ") > 0" },
	Attr:        "CAST(json_extract(attrs, %k) AS TEXT) = %v",
	AttrKey:     func(name string) any { return `$."` + name + `"` },
	Bytes:       "length(CAST(message AS BLOB))",
}

// searchDialect is dialect with the search index: a substring of three
// characters or more is found through it (logs_fts), and each entry it
// finds checked with instr (the index's GLOB may take more).
var searchDialect = func() storage.Dialect {
	d := dialect
	d.Contains = func(v string, arg func(any) string) string {
		exact := dialect.Contains(v, arg)
		if utf8.RuneCountInString(v) < 3 {
			return exact
		}
		return "id IN (SELECT rowid FROM logs_fts WHERE message GLOB " + arg(globContaining(v)) + ") AND " + exact
	}
	return d
}()

// globContaining is the GLOB pattern of the strings containing v, GLOB's
// special characters in v taken literally.
func globContaining(v string) string { return "*" + globEscape.Replace(v) + "*" }

var globEscape = strings.NewReplacer("*", "[*]", "?", "[?]", "[", "[[]")

var schema = []string{
	`CREATE TABLE IF NOT EXISTS logs (
		id          INTEGER PRIMARY KEY,
		ts          INTEGER NOT NULL, -- the entry's timestamp, Unix ms
		level       TEXT    NOT NULL,
		service     TEXT    NOT NULL,
		message     TEXT    NOT NULL,
		component   TEXT    NOT NULL DEFAULT '',
		trace_id    TEXT    NOT NULL DEFAULT '',
		span_id     TEXT    NOT NULL DEFAULT '',
		parent_id   TEXT    NOT NULL DEFAULT '',
		source      TEXT    NOT NULL DEFAULT '', -- URL the entry was read from
		received_at INTEGER NOT NULL,            -- when it was read, Unix ms
		attrs       TEXT,                        -- the other fields, a JSON object; NULL when none
		bus_epoch   INTEGER,                     -- models.BusID; NULL unless the entry came over the bus
		bus_pos     INTEGER
	)`,
	// /logs reads newest first, optionally by service; a level filter scans
	// the ts index (three levels: matches come quickly), so level has none.
	`CREATE INDEX IF NOT EXISTS logs_ts ON logs (ts)`,
	// A service's counts by level over time read this index alone.
	`CREATE INDEX IF NOT EXISTS logs_service_ts_level ON logs (service, ts, level)`,
	// Totals by service and by level since the file was created, kept per
	// batch so that /stats need not count the table.
	`CREATE TABLE IF NOT EXISTS service_counts (
		service TEXT    NOT NULL PRIMARY KEY,
		n       INTEGER NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS service_counts_n ON service_counts (n)`,
	`CREATE TABLE IF NOT EXISTS level_counts (
		level TEXT    NOT NULL PRIMARY KEY,
		n     INTEGER NOT NULL
	) WITHOUT ROWID`,
	// The entries' counts and bytes by minute (storage.MinuteOf), service
	// and level, kept per batch, for log volume over long ranges.
	`CREATE TABLE IF NOT EXISTS minute_counts (
		minute  INTEGER NOT NULL, -- Unix ms: the end of the minute
		service TEXT    NOT NULL,
		level   TEXT    NOT NULL,
		n       INTEGER NOT NULL,
		bytes   INTEGER NOT NULL, -- the messages' bytes
		PRIMARY KEY (minute, service, level)
	) WITHOUT ROWID`,
	rejectedTable,
	`CREATE INDEX IF NOT EXISTS rejected_at ON rejected (at)`,
}

// search is the trigram index of the messages (Config.SearchIndex), kept
// in step with the logs table by triggers (retention's deletes included):
// an external-content FTS5 table, so that it holds the index only,
// without positions (detail=none: GLOB needs none). searchBuild fills it
// from the messages already stored; noSearch drops it.
var search = []string{
	`CREATE VIRTUAL TABLE IF NOT EXISTS logs_fts USING fts5(message, content='logs', content_rowid='id', tokenize='trigram case_sensitive 1', detail=none)`,
	`CREATE TRIGGER IF NOT EXISTS logs_fts_insert AFTER INSERT ON logs BEGIN
		INSERT INTO logs_fts (rowid, message) VALUES (new.id, new.message);
	END`,
	`CREATE TRIGGER IF NOT EXISTS logs_fts_delete AFTER DELETE ON logs BEGIN
		INSERT INTO logs_fts (logs_fts, rowid, message) VALUES ('delete', old.id, old.message);
	END`,
}

var (
	searchBuild = `INSERT INTO logs_fts (logs_fts) VALUES ('rebuild')`
	noSearch    = []string{`DROP TRIGGER IF EXISTS logs_fts_insert`, `DROP TRIGGER IF EXISTS logs_fts_delete`, `DROP TABLE IF EXISTS logs_fts`}
)

// setSearch adds the search index (building it from the stored messages
// when it is new) or drops it.
func setSearch(ctx context.Context, db *sql.DB, on bool, logger *slog.Logger) error {
	var have int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'logs_fts_insert'`).Scan(&have); err != nil {
		return err
	}
	stmts := noSearch
	switch {
	case on && have == 1, !on && have == 0:
		return nil
	case on:
		logger.Info("building the search index of the stored messages (--search-index): once")
		stmts = append(slices.Clone(noSearch), append(slices.Clone(search), searchBuild)...)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("search index: %w", err)
		}
	}
	return tx.Commit()
}

// rejectedTable keeps the dead letters (storage.Rejected).
const rejectedTable = `CREATE TABLE IF NOT EXISTS rejected (
		id        INTEGER PRIMARY KEY AUTOINCREMENT,
		at        INTEGER NOT NULL, -- when it was set aside, Unix ms
		reason    TEXT    NOT NULL,
		source    TEXT    NOT NULL DEFAULT '',
		error     TEXT    NOT NULL DEFAULT '',
		entry     BLOB,             -- the entry the database refused, as JSON; NULL for a record
		record    BLOB,             -- the record the parser refused, as it came; NULL for an entry
		truncated INTEGER NOT NULL DEFAULT 0,
		service   TEXT    NOT NULL DEFAULT '' -- a record's default service, for a replay
	)`

// fromV1 moves version 1's counts into version 2's tables; fromV2 adds
// version 3's column. (CREATE TABLE IF NOT EXISTS leaves an older logs
// table as it was.)
var (
	fromV1 = []string{
		`INSERT INTO service_counts (service, n) SELECT service, sum(n) FROM log_counts GROUP BY service`,
		`INSERT INTO level_counts (level, n) SELECT level, sum(n) FROM log_counts GROUP BY level`,
		`DROP TABLE log_counts`,
	}
	fromV2 = []string{`ALTER TABLE logs ADD COLUMN attrs TEXT`}
	fromV3 = []string{
		`ALTER TABLE logs ADD COLUMN bus_epoch INTEGER`, // models.BusID; NULL unless the entry came over the bus
		`ALTER TABLE logs ADD COLUMN bus_pos INTEGER`,
	}
	fromV5 = []string{`ALTER TABLE rejected ADD COLUMN service TEXT NOT NULL DEFAULT ''`}
	fromV6 = []string{`DROP INDEX IF EXISTS logs_service_ts`} // logs_service_ts_level replaces it
	// busIndex stores a redelivered bus entry once; created after the
	// columns exist, whichever version the file had.
	busIndex = `CREATE UNIQUE INDEX IF NOT EXISTS logs_bus ON logs (bus_epoch, bus_pos) WHERE bus_pos IS NOT NULL`
)

// CountMinutesSQL fills minute_counts from the rows already stored: the
// migration to version 8, and loadtest after it loads rows by hand.
var CountMinutesSQL = dialect.MinuteBackfillSQL()

// WriteAside keeps dead letters: the Batcher's refused entries.
func (w writer) WriteAside(ctx context.Context, rs []storage.Rejected) error {
	return insertRejected(ctx, w.db, rs)
}

// SetAside keeps dead letters in the rejected table.
func (s *Store) SetAside(ctx context.Context, rs []storage.Rejected) error {
	return insertRejected(ctx, s.write, rs)
}

func insertRejected(ctx context.Context, db *sql.DB, rs []storage.Rejected) error {
	if len(rs) == 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	insert := storage.RejectedInsertSQL(func(int) string { return "?" })
	for i := range rs {
		if _, err := tx.ExecContext(ctx, insert, storage.RejectedValues(&rs[i])...); err != nil {
			return fmt.Errorf("set aside: %w", err)
		}
	}
	return tx.Commit()
}

// ListRejected reads dead letters passing f, newest first.
func (s *Store) ListRejected(ctx context.Context, f storage.RejectedFilter) ([]storage.Rejected, error) {
	q, args := storage.RejectedSQL(f, func(int) string { return "?" })
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return storage.ScanRejected(rows)
}

// ForgetRejected deletes the dead letters numbered ids.
func (s *Store) ForgetRejected(ctx context.Context, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	q, args := storage.ForgetRejectedSQL(ids, func(int) string { return "?" })
	res, err := s.write.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("forget dead letters: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// insertColumns are the columns WriteBatch fills.
var insertColumns = append(slices.Clone(storage.Columns), storage.BusColumns...)

// Config describes the database. A zero field means its default.
type Config struct {
	Path      string // file path; created if missing
	Batch     storage.BatchConfig
	Retention storage.Retention // Keep and Every; Delete and Log are set by Open
	// KeepRejected is how long dead letters are kept (0: for ever).
	KeepRejected time.Duration
	// SearchIndex keeps a trigram index of the messages, so that a
	// substring search finds rare terms without reading every message in
	// its range; writes cost four to five times as much. Off, an index there is
	// dropped.
	SearchIndex bool
}

// Store is an SQLite-backed storage.Store.
type Store struct {
	*storage.Batcher
	write   *sql.DB // one connection: SQLite has one writer
	read    *sql.DB
	dialect storage.Dialect // with the search index, or without
	search  bool            // Config.SearchIndex

	stopRetention context.CancelFunc
	retention     sync.WaitGroup
}

// Open opens or creates the database at cfg.Path and starts writing.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: no database path (--dsn)")
	}
	if dir := filepath.Dir(cfg.Path); dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("sqlite %s: directory %s does not exist; create it first", cfg.Path, dir)
		}
	}
	w, err := openDB(cfg.Path, false)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite %s: %w", cfg.Path, err)
	}
	if err := setSearch(ctx, w, cfg.SearchIndex, logger); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite %s: %w", cfg.Path, err)
	}
	r, err := openDB(cfg.Path, true)
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	s := &Store{write: w, read: r, dialect: dialect, search: cfg.SearchIndex}
	if cfg.SearchIndex {
		s.dialect = searchDialect
	}
	s.Batcher = storage.NewBatcher(writer{w}, cfg.Batch, "sqlite", logger)
	rctx, cancel := context.WithCancel(context.Background())
	s.stopRetention = cancel
	ret := cfg.Retention
	ret.Delete, ret.Log = storage.WithMinutes(s.deleteBefore("logs", "ts"), s.deleteMinutes), logger
	s.retention.Go(func() { ret.Run(rctx) })
	dead := storage.Retention{Keep: cfg.KeepRejected, Delete: s.deleteBefore("rejected", "at"), Log: logger}
	s.retention.Go(func() { dead.Run(rctx) })
	return s, nil
}

// uriPath escapes the characters that end or escape a path in an SQLite
// URI filename, so that a file named a#b.db or a?b.db is that file.
var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func openDB(path string, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)", "temp_store(MEMORY)", "cache_size(-16000)", "wal_autocheckpoint(8000)"} {
		q.Add("_pragma", p)
	}
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	db, err := sql.Open("sqlite", "file:"+uriPath.Replace(path)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	return db, nil
}

// migrate creates the schema in a new file and refuses a newer one.
func migrate(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case v == schemaVersion:
		return nil
	case v > schemaVersion:
		return fmt.Errorf("schema version %d is newer than this release understands (%d)", v, schemaVersion)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmts := schema
	if v == 1 {
		stmts = append(slices.Clone(schema), fromV1...)
	}
	if v == 1 || v == 2 {
		stmts = append(slices.Clone(stmts), fromV2...)
	}
	if v >= 1 && v <= 3 {
		stmts = append(slices.Clone(stmts), fromV3...)
	}
	if v == 5 {
		stmts = append(slices.Clone(stmts), fromV5...)
	}
	if v >= 1 && v <= 6 {
		stmts = append(slices.Clone(stmts), fromV6...)
	}
	if v >= 1 && v <= 7 {
		stmts = append(slices.Clone(stmts), CountMinutesSQL)
	}
	stmts = append(slices.Clone(stmts), busIndex)
	for _, stmt := range stmts {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
		return err
	}
	return tx.Commit()
}

// Close flushes pending entries (bounded by ctx), stops retention and
// closes the database.
func (s *Store) Close(ctx context.Context) error {
	err := s.Batcher.Close(ctx)
	s.stopRetention()
	s.retention.Wait()
	return errors.Join(err, s.read.Close(), s.write.Close())
}

// writer commits batches through the single write connection.
type writer struct{ db *sql.DB }

// WriteBatch inserts the batch and adds to the counts, in one transaction,
// skipping the bus entries that are stored already.
func (w writer) WriteBatch(ctx context.Context, batch []models.LogEntry) (int, error) {
	dups, err := storage.WriteOnce(batch,
		func(b []models.LogEntry) error { return w.writeBatch(ctx, b) },
		isBusDuplicate,
		func(r []storage.BusRange) (map[models.BusID]bool, error) { return w.stored(ctx, r) })
	return dups, classify(err)
}

// codeConstraintUnique is SQLITE_CONSTRAINT_UNIQUE, an extended code.
const codeConstraintUnique = 2067

// isBusDuplicate reports whether err is a violation of logs_bus: an entry
// of the batch came over the bus again and is stored already.
func isBusDuplicate(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code() == codeConstraintUnique && strings.Contains(err.Error(), "logs.bus_epoch")
}

// stored returns which bus identities in ranges the logs table holds.
func (w writer) stored(ctx context.Context, ranges []storage.BusRange) (map[models.BusID]bool, error) {
	have := make(map[models.BusID]bool)
	for _, r := range ranges {
		rows, err := w.db.QueryContext(ctx, `SELECT bus_pos FROM logs WHERE bus_pos IS NOT NULL AND bus_epoch = ? AND bus_pos BETWEEN ? AND ?`, r.Epoch, r.Lo, r.Hi)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			id := models.BusID{Epoch: r.Epoch}
			if err := rows.Scan(&id.Pos); err != nil {
				rows.Close()
				return nil, err
			}
			have[id] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return have, nil
}

func (w writer) writeBatch(ctx context.Context, batch []models.LogEntry) error {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	full, err := tx.PrepareContext(ctx, insertSQL(rowsPerInsert))
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer full.Close()
	args := make([]any, 0, len(insertColumns)*rowsPerInsert)
	for rest := batch; len(rest) > 0; {
		n := min(len(rest), rowsPerInsert)
		args = args[:0]
		for i := range rest[:n] {
			args = storage.BusValues(storage.Values(args, &rest[i]), &rest[i])
		}
		if n == rowsPerInsert {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertSQL(n), args...)
		}
		if err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		rest = rest[n:]
	}
	if err := addCounts(ctx, tx, batch); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// addCounts adds the rows' totals to service_counts, level_counts and
// minute_counts.
func addCounts(ctx context.Context, tx *sql.Tx, rows []models.LogEntry) error {
	for _, t := range []struct {
		key  func(*models.LogEntry) string
		stmt string
	}{
		{storage.ByService, `INSERT INTO service_counts (service, n) VALUES (?, ?) ON CONFLICT (service) DO UPDATE SET n = n + excluded.n`},
		{storage.ByLevel, `INSERT INTO level_counts (level, n) VALUES (?, ?) ON CONFLICT (level) DO UPDATE SET n = n + excluded.n`},
	} {
		for _, kc := range storage.CountBy(rows, t.key) {
			if _, err := tx.ExecContext(ctx, t.stmt, kc.Key, kc.N); err != nil {
				return fmt.Errorf("count: %w", err)
			}
		}
	}
	add, err := tx.PrepareContext(ctx, `INSERT INTO minute_counts (minute, service, level, n, bytes) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (minute, service, level) DO UPDATE SET n = n + excluded.n, bytes = bytes + excluded.bytes`)
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	defer add.Close()
	for _, c := range storage.CountByMinute(rows) {
		if _, err := add.ExecContext(ctx, c.Minute, c.Service, c.Level, c.N, c.Bytes); err != nil {
			return fmt.Errorf("count: %w", err)
		}
	}
	return nil
}

// SQLite's primary result codes that mean a value was refused, whatever the
// state of the database (https://sqlite.org/rescode.html).
const (
	codeTooBig     = 18 // SQLITE_TOOBIG: a string or blob over the length limit
	codeConstraint = 19 // SQLITE_CONSTRAINT
	codeMismatch   = 20 // SQLITE_MISMATCH
)

// classify marks errors caused by the batch's content as rejections, which
// the Batcher answers by splitting the batch rather than retrying it.
func classify(err error) error {
	var se interface{ Code() int }
	if !errors.As(err, &se) {
		return err
	}
	reason := ""
	switch se.Code() & 0xff { // extended codes carry the primary in the low byte
	case codeTooBig:
		reason = "too_big"
	case codeConstraint:
		reason = "constraint"
	case codeMismatch:
		reason = "type_mismatch"
	default:
		return err
	}
	return &storage.RejectedError{Reason: reason, Err: err}
}

func insertSQL(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO logs (" + strings.Join(insertColumns, ", ") + ") VALUES ")
	row := "(" + strings.Repeat("?,", len(insertColumns)-1) + "?)"
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// Query returns the newest entries passing f.
func (s *Store) Query(ctx context.Context, f storage.Filter) ([]storage.Record, error) {
	if s.probes(f) {
		out := []storage.Record{}
		limit := f.EffectiveLimit()
		err := s.Scan(ctx, f, func(r *storage.Record) bool {
			out = append(out, *r)
			return len(out) < limit
		})
		return out, err
	}
	q, args := s.dialect.SelectSQL(storage.Columns, f)
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	return storage.ScanRecords(rows, func(r *storage.Record) []any { return storage.ScanTargets(&r.LogEntry) })
}

// A substring search with the search index first asks the index how many
// rows might hold the term, up to searchRare: a rare term's rows are read
// through the index alone. Otherwise it reads searchProbe of the newest (or
// oldest) rows passing the other conditions before it asks the index: a
// common term is found among them at once, and the index, which would list
// every row of it, is asked only for what lies past them.
const (
	searchRare  = 1000
	searchProbe = 5000
)

// probes reports whether a search for f goes through the search index
// (asking it how rare the term is, then probing; see searchRare).
func (s *Store) probes(f storage.Filter) bool {
	return s.search && utf8.RuneCountInString(f.Contains) >= 3
}

// Scan calls fn with the entries passing f, one at a time.
func (s *Store) Scan(ctx context.Context, f storage.Filter, fn func(*storage.Record) bool) error {
	if !s.probes(f) {
		q, args := s.dialect.ScanSQL(storage.Columns, f)
		return s.each(ctx, q, args, fn)
	}
	rare, err := s.rare(ctx, f.Contains)
	if err != nil {
		return err
	}
	if rare {
		q, args := rareSQL(f)
		return s.each(ctx, q, args, fn)
	}
	// The first searchProbe rows passing the other conditions, checked
	// with instr.
	plain := f
	plain.Contains = ""
	inner, args := dialect.ScanSQL([]string{"id"}, plain)
	args = append(args, f.Contains)
	q, _ := dialect.ScanSQL(storage.Columns, storage.Filter{Oldest: f.Oldest})
	q = strings.Replace(q, " FROM logs", fmt.Sprintf(" FROM logs WHERE id IN (%s LIMIT %d) AND instr(message, ?%d) > 0", inner, searchProbe, len(args)), 1)
	more := true
	err = s.each(ctx, q, args, func(r *storage.Record) bool {
		more = fn(r)
		return more
	})
	if err != nil || !more {
		return err
	}
	// Past them, through the index: the rows beyond the last one read.
	bq, bargs := dialect.ScanSQL([]string{"ts", "id"}, plain)
	var ts, id int64
	switch err := s.read.QueryRowContext(ctx, fmt.Sprintf("%s LIMIT 1 OFFSET %d", bq, searchProbe-1), bargs...).Scan(&ts, &id); {
	case errors.Is(err, sql.ErrNoRows):
		return nil // the probe read them all
	case err != nil:
		return fmt.Errorf("scan: %w", err)
	}
	q, args = s.dialect.ScanSQL(storage.Columns, f)
	op := "<"
	if f.Oldest {
		op = ">"
	}
	args = append(args, ts, id)
	n := len(args)
	q = strings.Replace(q, " WHERE ", fmt.Sprintf(" WHERE (ts %[1]s ?%[2]d OR (ts = ?%[2]d AND id %[1]s ?%[3]d)) AND ", op, n-1, n), 1)
	return s.each(ctx, q, args, fn)
}

// rare reports whether the search index lists at most searchRare rows
// that might hold term: it reads their ids, not the rows.
func (s *Store) rare(ctx context.Context, term string) (bool, error) {
	var n int
	err := s.read.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM (SELECT rowid FROM logs_fts WHERE message GLOB ?1 LIMIT %d)", searchRare+1),
		globContaining(term)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("scan: %w", err)
	}
	return n <= searchRare, nil
}

// rareSQL is the scan for f when its term is rare: its rows by id alone,
// as the search index lists them. Another index (a service's rows in time
// order) would step over every row it holds to find them.
func rareSQL(f storage.Filter) (string, []any) {
	q, args := searchDialect.ScanSQL(storage.Columns, f)
	return strings.Replace(q, " FROM logs", " FROM logs NOT INDEXED", 1), args
}

// each runs q and calls fn with each entry it reads.
func (s *Store) each(ctx context.Context, q string, args []any, fn func(*storage.Record) bool) error {
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer rows.Close()
	return storage.EachRecord(rows, func(r *storage.Record) []any { return storage.ScanTargets(&r.LogEntry) }, fn)
}

// Buckets counts the entries passing f by stream and step: from
// minute_counts where it can (storage.ByMinute), else from the rows. A
// count of the rows reads every row of its range: the search index serves
// it only when no service narrows the range, where a rare term is worth
// finding first.
func (s *Store) Buckets(ctx context.Context, f storage.Filter, bq storage.BucketQuery, fn func(storage.Bucket) bool) error {
	var q string
	var args []any
	switch {
	case storage.ByMinute(f, bq):
		q, args = dialect.MinuteBucketsSQL(f, bq)
	case f.Service != "":
		q, args = dialect.BucketsSQL(f, bq)
	default:
		q, args = s.dialect.BucketsSQL(f, bq)
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("buckets: %w", err)
	}
	defer rows.Close()
	return storage.ScanBuckets(rows, fn)
}

// Counts returns the totals kept since the database was created.
func (s *Store) Counts(ctx context.Context, top int) (storage.Counts, error) {
	if top <= 0 {
		top = storage.DefaultTopServices
	}
	levels, err := s.read.QueryContext(ctx, storage.LevelCountsSQL)
	if err != nil {
		return storage.Counts{}, fmt.Errorf("counts: %w", err)
	}
	defer levels.Close()
	services, err := s.read.QueryContext(ctx, fmt.Sprintf(storage.TopServicesSQL, "?"), top)
	if err != nil {
		return storage.Counts{}, fmt.Errorf("counts: %w", err)
	}
	defer services.Close()
	return storage.ScanCounts(levels, services)
}

// deleteBefore returns a retention's Delete: up to limit rows of table
// whose column (Unix ms) is before cutoff, the oldest first.
func (s *Store) deleteBefore(table, column string) func(ctx context.Context, cutoff int64, limit int) (int64, error) {
	q := storage.DeleteBeforeSQL(table, column, "?", "?")
	return func(ctx context.Context, cutoff int64, limit int) (int64, error) {
		res, err := s.write.ExecContext(ctx, q, cutoff, limit)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
}

// deleteMinutes deletes the minute_counts rows before cutoff.
func (s *Store) deleteMinutes(ctx context.Context, cutoff int64) error {
	_, err := s.write.ExecContext(ctx, storage.MinuteCountsDeleteSQL("?"), cutoff)
	return err
}

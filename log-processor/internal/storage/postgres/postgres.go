// Package postgres stores log entries in PostgreSQL through pgx, for
// deployments where several processors share one database. Batches are
// written with COPY; every row records the processor instance that wrote
// it, and queries and counts see every instance's rows.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// schemaVersion is the version this release creates and understands.
// Version 1 kept one log_counts table by (service, level); version 2 keeps
// service_counts and level_counts, so that the top services are read
// through an index however many services there are; version 3 adds the
// attrs column (jsonb); version 4 adds bus_epoch and bus_pos, an entry's
// identity on the message bus, unique where present; version 5 adds the
// rejected table of dead letters; version 6, its service column; version
// 7 puts level into the (service, ts) index; version 8 adds
// minute_counts, filled from the rows already there.
const schemaVersion = 8

// schemaLock is the advisory lock key that serialises schema creation when
// several processors start at once.
const schemaLock = 0x6c6f6770726f63 // "logproc"

var schema = []string{
	`CREATE TABLE IF NOT EXISTS logs (
		id          BIGSERIAL PRIMARY KEY,
		ts          BIGINT NOT NULL, -- the entry's timestamp, Unix ms
		level       TEXT   NOT NULL,
		service     TEXT   NOT NULL,
		message     TEXT   NOT NULL,
		component   TEXT   NOT NULL DEFAULT '',
		trace_id    TEXT   NOT NULL DEFAULT '',
		span_id     TEXT   NOT NULL DEFAULT '',
		parent_id   TEXT   NOT NULL DEFAULT '',
		source      TEXT   NOT NULL DEFAULT '', -- URL the entry was read from
		received_at BIGINT NOT NULL,            -- when it was read, Unix ms
		instance    TEXT   NOT NULL             -- the processor that stored it
	)`,
	`ALTER TABLE logs ADD COLUMN IF NOT EXISTS attrs jsonb`,      // the other fields; NULL when none
	`ALTER TABLE logs ADD COLUMN IF NOT EXISTS bus_epoch BIGINT`, // models.BusID; NULL unless the entry came over the bus
	`ALTER TABLE logs ADD COLUMN IF NOT EXISTS bus_pos BIGINT`,
	`CREATE UNIQUE INDEX IF NOT EXISTS logs_bus ON logs (bus_epoch, bus_pos) WHERE bus_pos IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS logs_ts ON logs (ts)`,
	// A service's counts by level over time read this index alone (it
	// replaces logs_service_ts, version 6's).
	`CREATE INDEX IF NOT EXISTS logs_service_ts_level ON logs (service, ts, level)`,
	`DROP INDEX IF EXISTS logs_service_ts`,
	`CREATE TABLE IF NOT EXISTS service_counts (
		service TEXT   NOT NULL PRIMARY KEY,
		n       BIGINT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS service_counts_n ON service_counts (n)`,
	`CREATE TABLE IF NOT EXISTS level_counts (
		level TEXT   NOT NULL PRIMARY KEY,
		n     BIGINT NOT NULL
	)`,
	// The entries' counts and bytes by minute (storage.MinuteOf), service
	// and level, kept per batch, for log volume over long ranges.
	`CREATE TABLE IF NOT EXISTS minute_counts (
		minute  BIGINT NOT NULL, -- Unix ms: the end of the minute
		service TEXT   NOT NULL,
		level   TEXT   NOT NULL,
		n       BIGINT NOT NULL,
		bytes   BIGINT NOT NULL, -- the messages' bytes
		PRIMARY KEY (minute, service, level)
	)`,
	`CREATE TABLE IF NOT EXISTS log_schema (version INT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS rejected (
		id        BIGSERIAL PRIMARY KEY,
		at        BIGINT  NOT NULL, -- when it was set aside, Unix ms
		reason    TEXT    NOT NULL,
		source    TEXT    NOT NULL DEFAULT '',
		error     TEXT    NOT NULL DEFAULT '',
		entry     BYTEA,            -- the entry the database refused, as JSON; NULL for a record
		record    BYTEA,            -- the record the parser refused, as it came; NULL for an entry
		truncated BOOLEAN NOT NULL DEFAULT false
	)`,
	`CREATE INDEX IF NOT EXISTS rejected_at ON rejected (at)`,
	`ALTER TABLE rejected ADD COLUMN IF NOT EXISTS service TEXT NOT NULL DEFAULT ''`, // a record's default service, for a replay
}

// fromV1 moves version 1's counts into version 2's tables.
var fromV1 = []string{
	`INSERT INTO service_counts (service, n) SELECT service, sum(n) FROM log_counts GROUP BY service`,
	`INSERT INTO level_counts (level, n) SELECT level, sum(n) FROM log_counts GROUP BY level`,
	`DROP TABLE log_counts`,
}

// columns are the LogEntry columns and the instance; insertColumns add
// the bus identity.
var (
	columns       = append(slices.Clone(storage.Columns), "instance")
	insertColumns = append(slices.Clone(columns), storage.BusColumns...)
)

// dialect is PostgreSQL's way of writing a query.
var dialect = storage.Dialect{
	Placeholder: placeholder,
	Contains:    contains,
	Attr:        "attrs->>%k = %v",
	AttrKey:     func(name string) any { return name },
	Bytes:       "octet_length(message)",
}

// contains finds the entries whose message holds v with LIKE, which the
// trigram index (logs_message_trgm) serves when pg_trgm is there.
func contains(v string, arg func(any) string) string {
	return "message LIKE " + arg("%"+likeEscape.Replace(v)+"%")
}

// likeEscape makes LIKE's special characters literal (backslash is its
// escape character).
var likeEscape = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

// addSearchIndex adds the trigram index of the messages, built without
// blocking writes. It needs the pg_trgm extension (trusted: a user who may
// create in the database may add it), whose operator class is named with
// the schema it is in, which need not be on the search path.
func addSearchIndex(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_trgm`); err != nil {
		return err
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'`).Scan(&schema); err != nil {
		return fmt.Errorf("find pg_trgm: %w", err)
	}
	_, err := pool.Exec(ctx, `CREATE INDEX CONCURRENTLY IF NOT EXISTS logs_message_trgm ON logs USING gin (message `+schema+`.gin_trgm_ops)`)
	return err
}

// CountMinutesSQL fills minute_counts from the rows already stored: the
// migration to version 8, and loadtest after it loads rows by hand.
var CountMinutesSQL = dialect.MinuteBackfillSQL()

// Config describes the database. A zero field means its default.
type Config struct {
	DSN       string // connection string, URL or key=value form
	Instance  string // recorded with every row; required
	Batch     storage.BatchConfig
	Retention storage.Retention // Keep and Every; Delete and Log are set by Open
	// KeepRejected is how long dead letters are kept (0: for ever).
	KeepRejected time.Duration
	// SearchIndex adds a trigram index of the messages (pg_trgm), so that a
	// substring search finds rare terms without reading every message in
	// its range; writes cost about two and a half times as much. Off, an index there is
	// left alone (other processors may share it): DROP INDEX
	// logs_message_trgm removes it.
	SearchIndex bool
}

// Store is a PostgreSQL-backed storage.Store.
type Store struct {
	*storage.Batcher
	pool     *pgxpool.Pool
	instance string

	stopRetention context.CancelFunc
	retention     sync.WaitGroup
}

// Open connects, creates the schema if needed, and starts writing.
func Open(ctx context.Context, cfg Config, logger *slog.Logger) (*Store, error) {
	if cfg.Instance == "" {
		return nil, errors.New("postgres: no instance name")
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse --dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.SearchIndex {
		if err := addSearchIndex(ctx, pool); err != nil {
			logger.Warn("no search index: substring searches (|= and /logs?contains=) read every row in their range", "err", err)
		}
	} else {
		var there bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass('logs_message_trgm') IS NOT NULL`).Scan(&there); err == nil && there {
			logger.Info("the search index logs_message_trgm is there without --search-index (another processor's, or an earlier run's): every write pays for it; DROP INDEX logs_message_trgm removes it")
		}
	}
	s := &Store{pool: pool, instance: cfg.Instance}
	s.Batcher = storage.NewBatcher(writer{pool: pool, instance: cfg.Instance}, cfg.Batch, "postgres", logger)
	rctx, cancel := context.WithCancel(context.Background())
	s.stopRetention = cancel
	ret := cfg.Retention
	ret.Delete, ret.Log = storage.WithMinutes(s.deleteBefore("logs", "ts"), s.deleteMinutes), logger
	s.retention.Go(func() { ret.Run(rctx) })
	dead := storage.Retention{Keep: cfg.KeepRejected, Delete: s.deleteBefore("rejected", "at"), Log: logger}
	s.retention.Go(func() { dead.Run(rctx) })
	return s, nil
}

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		for _, stmt := range schema {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		var v int
		err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM log_schema").Scan(&v)
		switch {
		case err != nil:
			return fmt.Errorf("read schema version: %w", err)
		case v > schemaVersion:
			return fmt.Errorf("schema version %d is newer than this release understands (%d)", v, schemaVersion)
		case v < schemaVersion:
			if v == 1 {
				for _, stmt := range fromV1 {
					if _, err := tx.Exec(ctx, stmt); err != nil {
						return fmt.Errorf("migrate schema from version 1: %w", err)
					}
				}
			}
			if v >= 1 {
				if _, err := tx.Exec(ctx, CountMinutesSQL); err != nil {
					return fmt.Errorf("migrate schema from version %d: count the stored entries by minute: %w", v, err)
				}
			}
			_, err = tx.Exec(ctx, "INSERT INTO log_schema (version) VALUES ($1)", schemaVersion)
			return err
		}
		return nil
	})
}

// Close flushes pending entries (bounded by ctx), stops retention and
// closes the pool.
func (s *Store) Close(ctx context.Context) error {
	err := s.Batcher.Close(ctx)
	s.stopRetention()
	s.retention.Wait()
	s.pool.Close()
	return err
}

type writer struct {
	pool     *pgxpool.Pool
	instance string
}

// WriteBatch copies the batch in and adds to the counts, in one
// transaction, skipping the bus entries that are stored already.
func (w writer) WriteBatch(ctx context.Context, batch []models.LogEntry) (int, error) {
	dups, err := storage.WriteOnce(batch,
		func(b []models.LogEntry) error { return w.write(ctx, b) },
		isBusDuplicate,
		func(r []storage.BusRange) (map[models.BusID]bool, error) { return w.stored(ctx, r) })
	return dups, classify(err)
}

func (w writer) write(ctx context.Context, batch []models.LogEntry) error {
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(batch) {
				return nil, nil
			}
			row := append(storage.Values(make([]any, 0, len(insertColumns)), &batch[i]), w.instance)
			row = storage.BusValues(row, &batch[i])
			i++
			return row, nil
		})
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"logs"}, insertColumns, src); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		return addCounts(ctx, tx, batch)
	})
}

// isBusDuplicate reports whether err is a violation of logs_bus: an entry
// of the batch came over the bus again and is stored already.
func isBusDuplicate(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "logs_bus"
}

// stored returns which bus identities in ranges the logs table holds.
func (w writer) stored(ctx context.Context, ranges []storage.BusRange) (map[models.BusID]bool, error) {
	epochs, los, his := make([]int64, len(ranges)), make([]int64, len(ranges)), make([]int64, len(ranges))
	for i, r := range ranges {
		epochs[i], los[i], his[i] = r.Epoch, r.Lo, r.Hi
	}
	rows, err := w.pool.Query(ctx, `SELECT l.bus_epoch, l.bus_pos
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS r(epoch, lo, hi)
		JOIN logs l ON l.bus_pos IS NOT NULL AND l.bus_epoch = r.epoch AND l.bus_pos BETWEEN r.lo AND r.hi`, epochs, los, his)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := make(map[models.BusID]bool)
	for rows.Next() {
		var id models.BusID
		if err := rows.Scan(&id.Epoch, &id.Pos); err != nil {
			return nil, err
		}
		have[id] = true
	}
	return have, rows.Err()
}

// classify marks errors caused by the batch's content as rejections, which
// the Batcher answers by splitting the batch rather than retrying it: the
// SQLSTATE classes 22 (data exception, such as a NUL byte in text), 23
// (integrity constraint) and 54 (program limit, such as an index row too
// large).
func classify(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) < 2 {
		return err
	}
	reason := ""
	switch pe.Code[:2] {
	case "22":
		reason = "data_exception"
	case "23":
		reason = "constraint"
	case "54":
		reason = "limit_exceeded"
	default:
		return err
	}
	return &storage.RejectedError{Reason: reason, Err: err}
}

// addCounts adds the batch's totals to service_counts, level_counts and
// minute_counts, in key order so that processors sharing the tables lock
// rows in one order.
func addCounts(ctx context.Context, tx pgx.Tx, batch []models.LogEntry) error {
	var b pgx.Batch // one round trip
	for _, t := range []struct {
		key   func(*models.LogEntry) string
		table string
		col   string
	}{
		{storage.ByService, "service_counts", "service"},
		{storage.ByLevel, "level_counts", "level"},
	} {
		kcs := storage.CountBy(batch, t.key)
		keys, ns := make([]string, len(kcs)), make([]int64, len(kcs))
		for i, kc := range kcs {
			keys[i], ns[i] = kc.Key, kc.N
		}
		b.Queue(`INSERT INTO `+t.table+` (`+t.col+`, n)
			SELECT * FROM unnest($1::text[], $2::bigint[])
			ON CONFLICT (`+t.col+`) DO UPDATE SET n = `+t.table+`.n + EXCLUDED.n`, keys, ns)
	}
	mcs := storage.CountByMinute(batch)
	minutes, services, levels, ns, bytes := make([]int64, len(mcs)), make([]string, len(mcs)), make([]string, len(mcs)), make([]int64, len(mcs)), make([]int64, len(mcs))
	for i, c := range mcs {
		minutes[i], services[i], levels[i], ns[i], bytes[i] = c.Minute, c.Service, c.Level, c.N, c.Bytes
	}
	b.Queue(`INSERT INTO minute_counts (minute, service, level, n, bytes)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
		ON CONFLICT (minute, service, level) DO UPDATE SET n = minute_counts.n + EXCLUDED.n, bytes = minute_counts.bytes + EXCLUDED.bytes`,
		minutes, services, levels, ns, bytes)
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("count: %w", err)
	}
	return nil
}

// Query returns the newest entries passing f, from every instance.
func (s *Store) Query(ctx context.Context, f storage.Filter) ([]storage.Record, error) {
	q, args := dialect.SelectSQL(columns, f)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer rows.Close()
	return storage.ScanRecords(rows, func(r *storage.Record) []any {
		return append(storage.ScanTargets(&r.LogEntry), &r.Instance)
	})
}

// Scan calls fn with the entries passing f, from every instance, one at
// a time.
func (s *Store) Scan(ctx context.Context, f storage.Filter, fn func(*storage.Record) bool) error {
	q, args := dialect.ScanSQL(columns, f)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	defer rows.Close()
	return storage.EachRecord(rows, func(r *storage.Record) []any {
		return append(storage.ScanTargets(&r.LogEntry), &r.Instance)
	}, fn)
}

// Buckets counts the entries passing f by stream and step, from every
// instance: from minute_counts where it can (storage.ByMinute), else
// from the rows.
func (s *Store) Buckets(ctx context.Context, f storage.Filter, bq storage.BucketQuery, fn func(storage.Bucket) bool) error {
	q, args := dialect.BucketsSQL(f, bq)
	if storage.ByMinute(f, bq) {
		q, args = dialect.MinuteBucketsSQL(f, bq)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("buckets: %w", err)
	}
	defer rows.Close()
	return storage.ScanBuckets(rows, fn)
}

// Counts returns the totals of every instance since the schema was created.
func (s *Store) Counts(ctx context.Context, top int) (storage.Counts, error) {
	if top <= 0 {
		top = storage.DefaultTopServices
	}
	levels, err := s.pool.Query(ctx, storage.LevelCountsSQL)
	if err != nil {
		return storage.Counts{}, fmt.Errorf("counts: %w", err)
	}
	defer levels.Close()
	services, err := s.pool.Query(ctx, fmt.Sprintf(storage.TopServicesSQL, "$1"), top)
	if err != nil {
		return storage.Counts{}, fmt.Errorf("counts: %w", err)
	}
	defer services.Close()
	return storage.ScanCounts(levels, services)
}

// deleteBefore returns a retention's Delete: up to limit rows of table
// whose column (Unix ms) is before cutoff, the oldest first, of every
// instance.
func (s *Store) deleteBefore(table, column string) func(ctx context.Context, cutoff int64, limit int) (int64, error) {
	q := storage.DeleteBeforeSQL(table, column, "$1", "$2")
	return func(ctx context.Context, cutoff int64, limit int) (int64, error) {
		tag, err := s.pool.Exec(ctx, q, cutoff, limit)
		if err != nil {
			return 0, err
		}
		return tag.RowsAffected(), nil
	}
}

// deleteMinutes deletes the minute_counts rows before cutoff.
func (s *Store) deleteMinutes(ctx context.Context, cutoff int64) error {
	_, err := s.pool.Exec(ctx, storage.MinuteCountsDeleteSQL("$1"), cutoff)
	return err
}

// WriteAside keeps dead letters: the Batcher's refused entries.
func (w writer) WriteAside(ctx context.Context, rs []storage.Rejected) error {
	return insertRejected(ctx, w.pool, rs)
}

// SetAside keeps dead letters in the rejected table.
func (s *Store) SetAside(ctx context.Context, rs []storage.Rejected) error {
	return insertRejected(ctx, s.pool, rs)
}

func insertRejected(ctx context.Context, pool *pgxpool.Pool, rs []storage.Rejected) error {
	if len(rs) == 0 {
		return nil
	}
	var b pgx.Batch
	insert := storage.RejectedInsertSQL(placeholder)
	for i := range rs {
		b.Queue(insert, storage.RejectedValues(&rs[i])...)
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &b).Close() })
}

// ListRejected reads dead letters passing f, newest first.
func (s *Store) ListRejected(ctx context.Context, f storage.RejectedFilter) ([]storage.Rejected, error) {
	q, args := storage.RejectedSQL(f, placeholder)
	rows, err := s.pool.Query(ctx, q, args...)
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
	q, args := storage.ForgetRejectedSQL(ids, placeholder)
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("forget dead letters: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// placeholder writes PostgreSQL's nth parameter.
func placeholder(n int) string { return "$" + strconv.Itoa(n) }

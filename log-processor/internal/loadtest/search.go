package loadtest

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/logpipeline/log-processing-service/log-processor/internal/logql"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/sqlite"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// SearchConfig describes loadtest search.
type SearchConfig struct {
	Out         io.Writer
	Entries     int    // rows loaded, a day of timestamps
	Services    int    // services they are spread over
	Dir         string // where the SQLite file goes
	PostgresDSN string // also PostgreSQL, at this database (its logs table is emptied)
	Duration    time.Duration
}

// searchQueries are the queries measured: a rare term in one service, and
// the log volume of one service and of all, over the day, from now (as
// Grafana asks) and aligned to the step (as --query-align-step has it,
// which the SQL stores count by minute).
var searchQueries = []struct {
	name, query string
	step        time.Duration
	aligned     bool
}{
	{"newest 100 of one service with a rare term", `{service="svc7"} |= "rare-term"`, 0, false},
	{"newest 100 with a rare term, every service", `{service=~".+"} |= "rare-term"`, 0, false},
	{"log volume of one service, 24 h by 5 min", `sum by (level) (count_over_time({service="svc7"}[5m]))`, 5 * time.Minute, false},
	{"log volume of every service, 24 h by 5 min", `sum by (level) (count_over_time({service=~".+"}[5m]))`, 5 * time.Minute, false},
	{"errors of one service with a term, 24 h by 5 min", `sum(count_over_time({service="svc7", level="ERROR"} |= "worker 3" [5m]))`, 5 * time.Minute, false},
	{"log volume of one service, aligned", `sum by (level) (count_over_time({service="svc7"}[5m]))`, 5 * time.Minute, true},
	{"log volume of every service, aligned", `sum by (level) (count_over_time({service=~".+"}[5m]))`, 5 * time.Minute, true},
}

// While ingest is measured, a rare term's newest 100 and one service's log
// volume run once a second each, as a dashboard refreshing them would:
// the volume as Grafana asks, then aligned.
var (
	dashboard        = []int{0, 2}
	dashboardAligned = []int{0, 5}
)

// params are the parameters of query q over the day before now.
func params(q int, now time.Time) logql.Params {
	p := logql.Params{Start: now.Add(-24 * time.Hour), End: now, Step: searchQueries[q].step, Limit: 100}
	if searchQueries[q].aligned {
		p = p.AlignedToStep()
	}
	return p
}

// searchBackend is a store the search benchmark fills and measures.
type searchBackend struct {
	name  string
	open  func(ctx context.Context, index bool) (storage.Store, error)
	load  func(ctx context.Context, n, services int, start, step int64) error
	sizes func(ctx context.Context) (table, indexes, search, minutes int64, err error)
}

// RunSearch fills each backend with cfg.Entries rows (24 h of timestamps
// up to now, cfg.Services services, ten of them with "rare-term"), then,
// without the search index and with it, times the queries (the median of
// three, after one) and the ingest rate through the store's write path
// alone and while the queries run in a loop, and reports the table's and
// the indexes' sizes.
func RunSearch(ctx context.Context, cfg SearchConfig) error {
	backends := []searchBackend{sqliteSearch(cfg.Dir)}
	if cfg.PostgresDSN != "" {
		backends = append(backends, postgresSearch(cfg.PostgresDSN))
	}
	tw := tabwriter.NewWriter(cfg.Out, 0, 4, 2, ' ', tabwriter.AlignRight)
	defer tw.Flush()
	fmt.Fprintf(tw, "backend\tsearch index\t")
	for _, q := range searchQueries {
		fmt.Fprintf(tw, "%s (ms)\t", q.name)
	}
	fmt.Fprintf(tw, "ingest rows/s\twith 2 queries a second\taligned\ttable MiB\tindexes MiB\tsearch index MiB\tminute counts MiB\tbuilt in\t\n")
	for _, b := range backends {
		now := time.Now()
		start, step := now.Add(-24*time.Hour).UnixMilli(), (24*time.Hour).Milliseconds()/int64(cfg.Entries)
		if step < 1 {
			step = 1
		}
		for _, index := range []bool{false, true} {
			t0 := time.Now()
			s, err := b.open(ctx, index)
			if err != nil {
				return fmt.Errorf("%s: %w", b.name, err)
			}
			built := time.Since(t0)
			if !index {
				progress("%s: loading %d rows", b.name, cfg.Entries)
				if err := b.load(ctx, cfg.Entries, cfg.Services, start, step); err != nil {
					s.Close(ctx)
					return fmt.Errorf("%s: load: %w", b.name, err)
				}
			}
			progress("%s, search index %t: querying", b.name, index)
			fmt.Fprintf(tw, "%s\t%t\t", b.name, index)
			en := logql.NewEngine(s, logql.Limits{})
			for i, q := range searchQueries {
				d, err := timeQuery(ctx, en, q.query, params(i, now))
				if err != nil {
					s.Close(ctx)
					return fmt.Errorf("%s: %s: %w", b.name, q.query, err)
				}
				fmt.Fprintf(tw, "%.1f\t", float64(d.Microseconds())/1000)
				progress("%s, search index %t: %s: %.1f ms", b.name, index, q.name, float64(d.Microseconds())/1000)
			}
			progress("%s, search index %t: ingest alone, then with queries", b.name, index)
			// Alone before and after the two others, since the rate drifts
			// as the files grow: the mean of the two.
			alone := ingestRate(ctx, s, cfg.Duration, nil, nil)
			with := ingestRate(ctx, s, cfg.Duration, en, dashboard)
			aligned := ingestRate(ctx, s, cfg.Duration, en, dashboardAligned)
			alone = (alone + ingestRate(ctx, s, cfg.Duration, nil, nil)) / 2
			table, indexes, search, minutes, err := b.sizes(ctx)
			if err != nil {
				s.Close(ctx)
				return err
			}
			fmt.Fprintf(tw, "%.0f\t%.0f (%.0f%%)\t%.0f (%.0f%%)\t%.0f\t%.0f\t%.0f\t%.1f\t", alone, with, 100*with/alone, aligned, 100*aligned/alone, mib(table), mib(indexes), mib(search), mib(minutes))
			progress("%s, search index %t: ingest %.0f rows/s, %.0f with queries, %.0f with the volume aligned; table %.0f MiB, indexes %.0f MiB, search index %.0f MiB, minute counts %.1f MiB; opened (index built) in %s",
				b.name, index, alone, with, aligned, mib(table), mib(indexes), mib(search), mib(minutes), built.Round(100*time.Millisecond))
			if index {
				fmt.Fprintf(tw, "%s\t\n", built.Round(100*time.Millisecond))
			} else {
				fmt.Fprintf(tw, "-\t\n")
			}
			if err := s.Close(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// progress says on stderr what the benchmark is doing.
func progress(format string, args ...any) { fmt.Fprintf(os.Stderr, "== "+format+"\n", args...) }

// timeQuery runs q once, then three times, and returns the median.
func timeQuery(ctx context.Context, en *logql.Engine, q string, p logql.Params) (time.Duration, error) {
	e, err := logql.Parse(q)
	if err != nil {
		return 0, err
	}
	var ds []time.Duration
	for i := range 4 {
		t0 := time.Now()
		if lq, ok := e.(*logql.LogQuery); ok {
			_, err = en.Logs(ctx, lq, p)
		} else {
			_, err = en.Metric(ctx, e, p)
		}
		if err != nil {
			return 0, err
		}
		if i > 0 {
			ds = append(ds, time.Since(t0))
		}
	}
	slices.Sort(ds)
	return ds[1], nil
}

// ingestRate saves batches of 1,000 generator-shaped entries through s
// for d and returns rows per second; meanwhile, the queries numbered
// queries run on en once a second each.
func ingestRate(ctx context.Context, s storage.Store, d time.Duration, en *logql.Engine, queries []int) float64 {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	if en != nil {
		for _, q := range queries {
			wg.Go(func() {
				e, _ := logql.Parse(searchQueries[q].query)
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for {
					p := params(q, time.Now())
					if lq, ok := e.(*logql.LogQuery); ok {
						_, _ = en.Logs(ctx, lq, p)
					} else {
						_, _ = en.Metric(ctx, e, p)
					}
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
				}
			})
		}
	}
	var rows atomic.Int64
	t0 := time.Now()
	batch := make([]models.LogEntry, 1000)
	for i := 0; ctx.Err() == nil; i++ {
		ts := time.Now().UnixMilli()
		for j := range batch {
			k := i*len(batch) + j
			batch[j] = models.LogEntry{Timestamp: ts, Level: models.Levels[k%3], Service: fmt.Sprintf("svc%d", k%50),
				Message: fmt.Sprintf("request %d served in %dms by worker %d", k, k%977, k%13), Source: "bench", ReceivedAt: ts}
		}
		if err := s.Save(ctx, batch); err != nil {
			break
		}
		rows.Add(int64(len(batch)))
	}
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	_ = s.Sync(sctx)
	scancel()
	elapsed := time.Since(t0)
	wg.Wait()
	return float64(rows.Load()) / elapsed.Seconds()
}

// loadSQL is the INSERT ... SELECT that fills the logs table: row i at
// start+i*step, service svc(i%services), ERROR one in ten and WARN one in
// ten of every service's rows,
// "rare-term" in ten rows spread over the day (%[6]d apart); %[1]s is the
// row numbers' source (a series of N numbers named i), %[2]s and %[7]s an
// extra column and its value (PostgreSQL's instance).
const loadSQL = `INSERT INTO logs (ts, level, service, message, source, received_at%[2]s)
SELECT %[3]d + i * %[4]d,
	CASE (i / %[5]d) %% 10 WHEN 0 THEN 'ERROR' WHEN 1 THEN 'WARN' ELSE 'INFO' END,
	'svc' || (i %% %[5]d),
	CASE WHEN i %% %[6]d = 357 THEN 'a rare-term in request ' || i ELSE 'request ' || i || ' served in ' || (i %% 977) || 'ms by worker ' || (i %% 13) END,
	'bench', %[3]d + i * %[4]d%[7]s
FROM %[1]s`

func sqliteSearch(dir string) searchBackend {
	path := filepath.Join(dir, "search.db")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return searchBackend{
		name: "SQLite",
		open: func(ctx context.Context, index bool) (storage.Store, error) {
			return sqlite.Open(ctx, sqlite.Config{Path: path, SearchIndex: index}, logger)
		},
		load: func(ctx context.Context, n, services int, start, step int64) error {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
			if err != nil {
				return err
			}
			defer db.Close()
			src := fmt.Sprintf("(WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %d) SELECT i FROM n)", n-1)
			// The service of rare row k is svc((357 + k*(n/10)) % services): one lands in svc7 when n/10 is a multiple of services.
			if _, err = db.ExecContext(ctx, fmt.Sprintf(loadSQL, src, "", start, step, services, n/10, "")); err != nil {
				return err
			}
			// What the store's writes would have counted, by minute.
			_, err = db.ExecContext(ctx, sqlite.CountMinutesSQL)
			return err
		},
		sizes: func(ctx context.Context) (int64, int64, int64, int64, error) {
			db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
			if err != nil {
				return 0, 0, 0, 0, err
			}
			defer db.Close()
			size := func(cond string) int64 {
				var n sql.NullInt64
				_ = db.QueryRowContext(ctx, "SELECT sum(pgsize) FROM dbstat WHERE "+cond).Scan(&n)
				return n.Int64
			}
			return size("name = 'logs'"), size("name IN (SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'logs')"), size("name LIKE 'logs_fts%'"), size("name = 'minute_counts'"), nil
		},
	}
}

func postgresSearch(dsn string) searchBackend {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return searchBackend{
		name: "PostgreSQL",
		open: func(ctx context.Context, index bool) (storage.Store, error) {
			return postgres.Open(ctx, postgres.Config{DSN: dsn, Instance: "bench", SearchIndex: index}, logger)
		},
		load: func(ctx context.Context, n, services int, start, step int64) error {
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				return err
			}
			defer pool.Close()
			for _, stmt := range []string{"DROP INDEX IF EXISTS logs_message_trgm", "TRUNCATE logs, minute_counts",
				fmt.Sprintf(loadSQL, fmt.Sprintf("generate_series(0, %d) AS i", n-1), ", instance", start, step, services, n/10, ", 'bench'"),
				postgres.CountMinutesSQL, // what the store's writes would have counted
				"VACUUM ANALYZE logs", "VACUUM ANALYZE minute_counts"} {
				if _, err := pool.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", strings.Fields(stmt)[0], err)
				}
			}
			return nil
		},
		sizes: func(ctx context.Context) (int64, int64, int64, int64, error) {
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				return 0, 0, 0, 0, err
			}
			defer pool.Close()
			var table, indexes, search, minutes int64
			err = pool.QueryRow(ctx, `SELECT pg_table_size('logs'), pg_indexes_size('logs'),
				coalesce((SELECT pg_relation_size(c.oid) FROM pg_class c WHERE c.relname = 'logs_message_trgm' AND pg_table_is_visible(c.oid)), 0),
				pg_total_relation_size('minute_counts')`).Scan(&table, &indexes, &search, &minutes)
			return table, indexes - search, search, minutes, err
		},
	}
}

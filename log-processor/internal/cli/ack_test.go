package cli

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/postgres/pgtest"
)

// ndjson returns n log lines stamped now.
func ndjson(n int, tag string) string {
	var b strings.Builder
	now := time.Now().UnixMilli()
	for i := range n {
		fmt.Fprintf(&b, `{"timestamp":%d,"level":"INFO","service":"ack","message":"%s %d"}`+"\n", now, tag, i)
	}
	return b.String()
}

// TestAckStoredIsCommitted: with --ack stored, a push request is answered
// once its entries are committed, long before the flush interval (an
// hour here) would have written them; with --ack queued the answer comes
// first and the rows only at the flush (here, the shutdown's). Per backend,
// read from the database itself.
func TestAckStoredIsCommitted(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var dsn string
			if backend == "sqlite" {
				dsn = filepath.Join(t.TempDir(), "logs.db")
			} else {
				dsn = pgtest.DSN(t)
			}
			for _, ack := range []string{"stored", "queued"} {
				p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--storage", backend, "--dsn", dsn,
					"--flush-interval", "1h", "--batch-size", "100000", "--ack", ack)
				before := countRows(t, backend, dsn)
				for i := range 3 {
					resp, err := http.Post("http://"+p.ingest+"/ingest", "application/x-ndjson", strings.NewReader(ndjson(10, ack)))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("--ack %s: POST %d: status %d", ack, i, resp.StatusCode)
					}
					got := countRows(t, backend, dsn) - before
					switch want := int64(10 * (i + 1)); {
					case ack == "stored" && got != want:
						t.Fatalf("--ack stored: answered 200 with %d rows committed, want %d", got, want)
					case ack == "queued" && got != 0:
						t.Fatalf("--ack queued with a 1h flush interval: %d rows committed before the shutdown, want 0", got)
					}
				}
				if err := p.stop(t); err != nil {
					t.Fatal(err)
				}
				if got := countRows(t, backend, dsn) - before; got != 30 {
					t.Fatalf("--ack %s: %d rows after the shutdown, want 30", ack, got)
				}
			}
		})
	}
}

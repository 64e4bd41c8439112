// Package pgtest gives tests a private, empty PostgreSQL schema on the
// server named by LOGPROC_TEST_POSTGRES_DSN. Without that variable the
// calling test is skipped, or fails when LOGPROC_REQUIRE_POSTGRES=1 (as in
// CI, which must never skip them).
package pgtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable holding the test server's connection URL.
const EnvDSN = "LOGPROC_TEST_POSTGRES_DSN"

// BaseDSN returns the test server's URL, skipping (or failing) the test
// when there is none.
func BaseDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		msg := "no PostgreSQL for this test: set " + EnvDSN + "=postgres://user@127.0.0.1:5432/db " +
			"(scripts/pg-test-cluster.sh starts a throwaway server; see the README)"
		if os.Getenv("LOGPROC_REQUIRE_POSTGRES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dsn
}

// DSN creates a fresh schema, drops it when the test ends, and returns a
// URL whose connections use it.
func DSN(t testing.TB) string {
	t.Helper()
	base := BaseDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("t_%x", rand.Uint64())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(t, base, schema)
}

// WithSearchPath returns dsn with connections set to use schema.
func WithSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvDSN, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"ws://localhost:8080/ws/logs", "ws://localhost:8080/ws/logs"},
		{"ws://localhost:8080/ws/logs?interval_ms=50&service=a", "ws://localhost:8080/ws/logs?interval_ms=50&service=a"},
		{"ws://user:pass@host/ws", "ws://REDACTED@host/ws"},
		{"wss://tok123@host/ws", "wss://REDACTED@host/ws"},
		{"ws://h/ws?token=abc&interval_ms=5", "ws://h/ws?token=REDACTED&interval_ms=5"},
		{"ws://h/ws?access_token=abc", "ws://h/ws?access_token=REDACTED"},
		{"ws://h/ws?KEY=abc&monkey=1", "ws://h/ws?KEY=REDACTED&monkey=1"},
		{"ws://h/ws?X-Amz-Signature=abc&sig=d&password=e&auth=f&api_key=g&client_secret=h",
			"ws://h/ws?X-Amz-Signature=REDACTED&sig=REDACTED&password=REDACTED&auth=REDACTED&api_key=REDACTED&client_secret=REDACTED"},
		{"ws://h/ws?flood", "ws://h/ws?flood"},
		{"ws://h/ws#token=abc", "ws://h/ws"},
		{"postgres://u:p@db:5432/logs?sslmode=disable&password=x", "postgres://REDACTED@db:5432/logs?sslmode=disable&password=REDACTED"},
		{"not a url with a@secret", "REDACTED"},
	}
	for _, c := range cases {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDSN(t *testing.T) {
	cases := []struct{ in, want string }{
		{"logs.db", "logs.db"},
		{"/var/lib/a#b.db", "/var/lib/a#b.db"},
		{"host=db user=u password=secret dbname=logs", "host=db user=u password=REDACTED dbname=logs"},
		{"postgres://u:secret@db/logs", "postgres://REDACTED@db/logs"},
	}
	for _, c := range cases {
		if got := DSN(c.in); got != c.want || strings.Contains(got, "secret") {
			t.Errorf("DSN(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzURL(f *testing.F) {
	f.Add("ws://user:pass@host/ws?token=abc")
	f.Fuzz(func(t *testing.T, in string) {
		out := URL(in)
		if strings.Contains(in, "pass") && strings.Contains(in, "@") && strings.Contains(out, ":pass@") {
			t.Fatalf("URL(%q) = %q kept a password", in, out)
		}
	})
}

package cli

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/logpipeline/log-processing-service/log-processor/internal/testcert"
)

// writeConfig writes a config file into the test's directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "logproc.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// sourceNamed returns the first source of /stats whose url (a name, for
// named dialed sources; a path, for push paths) or name is name.
func sourceNamed(s stats, name string) *sourceStats {
	for i := range s.Sources {
		if s.Sources[i].URL == name || s.Sources[i].Name == name {
			return &s.Sources[i]
		}
	}
	return nil
}

// TestSecureSourceWithTokenAndOpenMessage: a wss source that wants a
// bearer token and a subscribe message, configured by file with the token
// from the environment. The token appears nowhere: not in the logs, not in
// /stats, not in stored rows.
func TestSecureSourceWithTokenAndOpenMessage(t *testing.T) {
	const token = "gen-token-7f3a9c"
	certs := testcert.New(t, "gen")
	gen := startGenerator(t, "--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey, "--token", token)
	t.Setenv("TEST_GEN_TOKEN", token)
	cfg := writeConfig(t, `
storage: memory
summary-interval: 50ms
sources:
  - name: secure
    # count=0: nothing until the subscribe message asks for 25
    url: wss://`+gen.Addr+`/ws/logs?count=0
    headers:
      Authorization: "Bearer ${TEST_GEN_TOKEN}"
    open_message: service=subscribed&count=25&interval_ms=5
    tls:
      ca_file: `+certs.CA+`
`)
	p := startProcessor(t, "--config", cfg)
	var s stats
	poll.Until(t, 20*time.Second, "25 entries from the subscribed stream", func() bool {
		getJSON(t, p.api+"/stats", &s)
		return s.Stored == 25
	})
	checkInvariants(t, s)
	if s.ByService["subscribed"] != 25 || s.Ignored != 2 {
		t.Fatalf("by_service %v, ignored %d: want 25 entries of service subscribed and 2 control frames (handshake, subscribed)", s.ByService, s.Ignored)
	}
	if src := sourceNamed(s, "secure"); src == nil || src.State != "connected" {
		t.Fatalf("sources %+v, want secure connected", s.Sources)
	}
	for what, text := range map[string]string{
		"log":     p.stderr.String(),
		"/stats":  getBody(t, p.api+"/stats"),
		"/logs":   getBody(t, p.api+"/logs?limit=100"),
		"/readyz": getBody(t, p.api+"/readyz"),
	} {
		if strings.Contains(text, token) {
			t.Errorf("the source's token appears in the %s", what)
		}
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestSourceTLSFailures: a source whose certificate the configured CA did
// not sign, and a source that wants a client certificate, fail with a
// last_error that says why; with the client certificate it works.
func TestSourceTLSFailures(t *testing.T) {
	certs, other := testcert.New(t, "gen"), testcert.New(t, "other")
	plain := startGenerator(t, "--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey)
	mutual := startGenerator(t, "--tls-cert", certs.ServerCert, "--tls-key", certs.ServerKey, "--tls-client-ca", certs.CA)
	cfg := writeConfig(t, `
sources:
  - name: wrong-ca
    url: wss://`+plain.Addr+`/ws/logs?count=5&interval_ms=5
    tls: {ca_file: `+other.CA+`}
  - name: no-client-cert
    url: wss://`+mutual.Addr+`/ws/logs?count=5&interval_ms=5
    tls: {ca_file: `+certs.CA+`}
  - name: client-cert
    url: wss://`+mutual.Addr+`/ws/logs?count=5&interval_ms=5
    tls: {ca_file: `+certs.CA+`, cert_file: `+certs.ClientCert+`, key_file: `+certs.ClientKey+`}
`)
	p := startProcessor(t, "--config", cfg, "--max-backoff", "200ms")
	var s stats
	poll.Until(t, 20*time.Second, "the good source's 5 entries and both failures", func() bool {
		getJSON(t, p.api+"/stats", &s)
		a, b := sourceNamed(s, "wrong-ca"), sourceNamed(s, "no-client-cert")
		return s.Stored == 5 && a != nil && a.LastError != "" && b != nil && b.LastError != ""
	})
	if e := sourceNamed(s, "wrong-ca").LastError; !strings.Contains(e, "certificate signed by unknown authority") {
		t.Errorf("wrong CA: last_error %q, want it to say the certificate is signed by an unknown authority", e)
	}
	if e := sourceNamed(s, "no-client-cert").LastError; !strings.Contains(e, "certificate") {
		t.Errorf("no client certificate: last_error %q, want it to mention the certificate", e)
	}
	if src := sourceNamed(s, "client-cert"); src.Submitted != 5 {
		t.Errorf("client-cert source submitted %d, want 5", src.Submitted)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestConfigFile: keys are the flags, the command line wins, unknown keys
// and unset variables are errors naming their line, and --check-config
// says what would run.
func TestConfigFile(t *testing.T) {
	cfgPath := writeConfig(t, "queue-size: 123\nworkers: 7\nurls: [a=ws://127.0.0.1:1/ws/logs]\n")
	cfg, err := parse([]string{"--config", cfgPath, "--workers", "9"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.pipeline.Pool.QueueSize != 123 || cfg.pipeline.Pool.Workers != 9 || len(cfg.dialed) != 1 {
		t.Fatalf("queue-size %d, workers %d, dialed %+v: want 123 from the file, 9 from the command line, one URL",
			cfg.pipeline.Pool.QueueSize, cfg.pipeline.Pool.Workers, cfg.dialed)
	}
	t.Setenv("TEST_SET", "x")
	bad := []struct{ name, text, want string }{
		{"unknown key", "workers: 3\n\nqueue_sise: 5\n", `:3: unknown key "queue_sise"`},
		{"a key with underscores", "queue_size: 5\n", `did you mean queue-size?`},
		{"unknown source key", "sources:\n  - url: ws://127.0.0.1:1/\n    hedaers: {}\n", `:3: source: unknown key "hedaers"`},
		{"unset variable", "sources:\n  - url: ws://127.0.0.1:1/\n    headers: {Authorization: \"Bearer ${TEST_UNSET_VAR}\"}\n", "TEST_UNSET_VAR is not set"},
		{"bad value", "workers: many\n", ":1: workers"},
		{"list for a value", "workers: [1, 2]\n", "takes one value"},
		{"bad url", "sources:\n  - url: http://127.0.0.1:1/\n", "is not a ws:// or wss:// URL"},
		{"missing CA", "sources:\n  - url: wss://127.0.0.1:1/\n    tls: {ca_file: /nonexistent/ca.pem}\n", "no such file"},
		{"token twice", "ingest-addr: 127.0.0.1:0\ningest-tokens:\n  - {name: a, token: t1}\n  - {name: b, token: t1}\n", "same value"},
		{"not yaml", "workers: [\n", "--config"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Run(t.Context(), []string{"--check-config", "--config", writeConfig(t, tc.text)}, &out, io.Discard)
			if ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v (exit %d), want exit 2 and %q", err, ExitCode(err), tc.want)
			}
		})
	}
	good := writeConfig(t, `
storage: memory
ingest-addr: 127.0.0.1:0
ingest-tokens:
  - name: fluent-bit
    token: ${TEST_SET}
sources:
  - name: checkout
    url: wss://user:pw@127.0.0.1:1/ws/logs?api_key=k
    headers: {Authorization: "Bearer ${TEST_SET}"}
    open_message: '{"subscribe":"checkout"}'
`)
	var out bytes.Buffer
	if err := Run(t.Context(), []string{"--check-config", "--config", good}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"config ok", "source: checkout wss://REDACTED@127.0.0.1:1/ws/logs?api_key=REDACTED headers Authorization; open message",
		"ingest: 127.0.0.1:0 tls=false tokens=[fluent-bit]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--check-config printed\n%s\nwant a line with %q", out.String(), want)
		}
	}
}

// TestExampleConfigIsValid keeps the commented example file true, and the
// copy of it in docs/cli.md the same file; without the variables its header
// names, the error names them and says how to set them.
func TestExampleConfigIsValid(t *testing.T) {
	t.Setenv("CHECKOUT_TOKEN", "")
	os.Unsetenv("CHECKOUT_TOKEN")
	var out bytes.Buffer
	err := Run(t.Context(), []string{"--config", "../../config.example.yaml", "--check-config"}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CHECKOUT_TOKEN is not set") || !strings.Contains(err.Error(), "export CHECKOUT_TOKEN=") {
		t.Fatalf("without CHECKOUT_TOKEN: %v", err)
	}
	t.Setenv("CHECKOUT_TOKEN", "example")
	t.Setenv("FLUENT_BIT_TOKEN", "example-2")
	if err := Run(t.Context(), []string{"--config", "../../config.example.yaml", "--check-config"}, &out, io.Discard); err != nil {
		t.Fatalf("the example config: %v", err)
	}
	file, err := os.ReadFile("../../config.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, append(append([]byte("```yaml\n"), file...), "```"...)) {
		t.Error("docs/cli.md does not show log-processor/config.example.yaml as it is")
	}
	if !strings.Contains(out.String(), "source: checkout") || !strings.Contains(out.String(), "tokens=[fluent-bit]") {
		t.Fatalf("--check-config printed\n%s", out.String())
	}
}

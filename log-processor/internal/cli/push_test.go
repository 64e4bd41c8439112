package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/logpipeline/log-processing-service/log-processor/internal/testcert"
)

// TestGeneratorPushes: the generator pushes to the processor's ingest
// endpoints, over HTTP and over WebSocket, with a token from a file; a
// pusher with a wrong token is refused and counted nowhere. Every line
// sent is stored once, the counters add up, and no token is shown.
func TestGeneratorPushes(t *testing.T) {
	const token, wrong = "push-token-51c2e0", "not-the-token"
	tokenFile := filepath.Join(t.TempDir(), "shipper.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--ingest-token-file", "shipper="+tokenFile)
	startGenerator(t, "--push-to", "http://"+p.ingest+"/ingest", "--push-token", token,
		"--push-params", "rate=2000&count=3000&service=pushed-http", "--push-batch", "200")
	startGenerator(t, "--push-to", "ws://"+p.ingest+"/ws/ingest", "--push-token", token,
		"--push-params", "rate=2000&count=2000&service=pushed-ws", "--push-batch", "100")
	refused := startGenerator(t, "--push-to", "http://"+p.ingest+"/ingest", "--push-token", wrong,
		"--push-params", "count=10&interval_ms=10")

	var s stats
	// A request is counted once it is answered, which is after its entries
	// are stored: wait for both.
	poll.Until(t, 30*time.Second, "5000 pushed entries stored, the last request answered", func() bool {
		getJSON(t, p.api+"/stats", &s)
		src := sourceNamed(s, "/ingest")
		return s.Stored == 5000 && src != nil && src.Requests >= 15
	})
	checkInvariants(t, s)
	if s.ByService["pushed-http"] != 3000 || s.ByService["pushed-ws"] != 2000 || s.Dropped != 0 {
		t.Fatalf("by_service %v, dropped %d: want 3000 over HTTP, 2000 over WebSocket, none dropped", s.ByService, s.Dropped)
	}
	httpSrc, wsSrc := sourceNamed(s, "/ingest"), sourceNamed(s, "/ws/ingest")
	if httpSrc == nil || wsSrc == nil || httpSrc.Kind != "push" || httpSrc.Token != "shipper" || httpSrc.Submitted != 3000 ||
		wsSrc.Submitted != 2000 || wsSrc.Clients != 1 || httpSrc.Requests < 15 {
		t.Fatalf("sources %+v: want push sources for token shipper, 3000 in 15 or more requests over HTTP (batches of 200, or fewer after 200 ms), 2000 from one WebSocket client", s.Sources)
	}
	poll.Until(t, 10*time.Second, "the wrong token refused", func() bool { return strings.Contains(refused.Log(), "401") })
	var rd struct{ Status string }
	if getJSON(t, p.api+"/readyz", &rd); rd.Status != "ready" {
		t.Errorf("/readyz %q with only pushers, want ready", rd.Status)
	}
	for what, text := range map[string]string{"log": p.stderr.String(), "/stats": getBody(t, p.api+"/stats")} {
		if strings.Contains(text, token) || strings.Contains(text, wrong) {
			t.Errorf("a token appears in the %s", what)
		}
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestIngestOverTLS: the ingest listener serves HTTPS with the given
// certificate, and a token from $LOGPROC_INGEST_TOKEN is named default.
func TestIngestOverTLS(t *testing.T) {
	certs := testcert.New(t, "ingest")
	t.Setenv("LOGPROC_INGEST_TOKEN", "env-token-93")
	p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--ingest-tls-cert", certs.ServerCert, "--ingest-tls-key", certs.ServerKey)
	pem, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer client.CloseIdleConnections()
	post := func(scheme, token string) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, scheme+"://"+p.ingest+"/ingest", strings.NewReader(logLine("INFO", "tls", "over https")))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := post("https", "env-token-93"); err != nil || code != 200 {
		t.Fatalf("https POST: %d %v", code, err)
	}
	if code, err := post("https", "wrong"); err != nil || code != 401 {
		t.Fatalf("https POST with a wrong token: %d %v, want 401", code, err)
	}
	if code, err := post("http", "env-token-93"); err == nil && code == 200 {
		t.Fatal("plain HTTP accepted on the TLS listener")
	}
	var s stats
	poll.Until(t, 10*time.Second, "the entry stored", func() bool { getJSON(t, p.api+"/stats", &s); return s.Stored == 1 })
	if src := sourceNamed(s, "/ingest"); src == nil || src.Token != "default" {
		t.Fatalf("sources %+v, want a push source for token default", s.Sources)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestShipperDefaultsStored: what Fluent Bit's tail input and Vector's
// file source send by default (a message, no level) and a Docker JSON log
// inside Fluent Bit's log key are stored, not ignored; the answer says how
// many got the default level; only a frame with neither level nor message
// is ignored.
func TestShipperDefaultsStored(t *testing.T) {
	p := startProcessor(t, "--ingest-addr", "127.0.0.1:0")
	now := time.Now().UTC()
	body := fmt.Sprintf(`{"date":%d.%03d,"log":"plain text from fluent bit"}
{"timestamp":%q,"message":"plain text from vector","host":"h","source_type":"file"}
{"log":"{\"level\":\"warn\",\"msg\":\"disk low\",\"service\":\"api\"}\n","stream":"stderr","time":%q}
{"status":"hello"}
`, now.Unix(), now.Nanosecond()/1e6, now.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano))
	resp, err := http.Post("http://"+p.ingest+"/ingest", "application/x-ndjson", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Accepted     int `json:"accepted"`
		Ignored      int `json:"ignored"`
		DefaultLevel int `json:"default_level"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if res.Accepted != 3 || res.Ignored != 1 || res.DefaultLevel != 2 {
		t.Fatalf("answer %+v, want 3 accepted (2 at the default level) and 1 ignored", res)
	}
	var recs []struct{ Level, Message, Service string }
	poll.Until(t, 10*time.Second, "3 entries stored", func() bool { getJSON(t, p.api+"/logs", &recs); return len(recs) == 3 })
	got := map[string]string{}
	for _, r := range recs {
		got[r.Message] = r.Level + " " + r.Service
	}
	want := map[string]string{"plain text from fluent bit": "INFO anonymous", "plain text from vector": "INFO anonymous", "disk low": "WARN api"}
	for m, w := range want {
		if got[m] != w {
			t.Errorf("%q stored as %q, want %q", m, got[m], w)
		}
	}
	var s stats
	getJSON(t, p.api+"/stats", &s)
	if src := sourceNamed(s, "/ingest"); src == nil || src.DefaultLevel != 2 {
		t.Errorf("push source %+v, want default_level 2", src)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

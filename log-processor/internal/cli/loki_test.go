package cli

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"

	"github.com/logpipeline/log-processing-service/log-processor/internal/loki"
	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
)

// TestLokiPush (issue 21): a push built as Promtail and Alloy build theirs
// (protobuf, a Snappy block, Basic auth with the token as the password,
// the tenant in X-Scope-OrgID) is answered 204 and stored with the
// service and level its labels name; a wrong password is 401; the source
// is counted as push:TOKEN:loki.
func TestLokiPush(t *testing.T) {
	const token = "loki-token-9a0"
	tokenFile := filepath.Join(t.TempDir(), "alloy.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--ingest-token-file", "alloy="+tokenFile)
	now := time.Now()
	var streams []loki.Stream
	for i, svc := range []string{"checkout", "cart"} {
		s := loki.Stream{Labels: `{env="prod", level="warn", service_name="` + svc + `"}`}
		for j := range 50 * (i + 1) {
			s.Entries = append(s.Entries, loki.Entry{Time: now, Line: "slow request " + svc, Metadata: [][2]string{{"n", string(rune('a' + j%26))}}})
		}
		streams = append(streams, s)
	}
	body := snappy.Encode(nil, loki.AppendProto(nil, streams))
	send := func(password string) int {
		req, _ := http.NewRequest("POST", "http://"+p.ingest+loki.Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Scope-OrgID", "tenant-1")
		req.SetBasicAuth("12345", password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send("wrong"); code != 401 {
		t.Errorf("a wrong password: %d, want 401", code)
	}
	if code := send(token); code != 204 {
		t.Fatalf("push: %d, want 204", code)
	}
	var s stats
	poll.Until(t, 20*time.Second, "150 stored", func() bool { getJSON(t, p.api+"/stats", &s); return s.Stored == 150 })
	if s.ByService["checkout"] != 50 || s.ByService["cart"] != 100 || s.ByLevel["WARN"] != 150 {
		t.Errorf("by service %v, by level %v", s.ByService, s.ByLevel)
	}
	var recs []struct{ Attrs map[string]any }
	getJSON(t, p.api+"/logs?service=cart&limit=1", &recs)
	if len(recs) != 1 || recs[0].Attrs["env"] != "prod" || recs[0].Attrs["tenant"] != "tenant-1" || recs[0].Attrs["n"] == nil {
		t.Errorf("a stored entry: %+v", recs)
	}
	if src := sourceNamed(s, "push:alloy:loki"); src == nil || src.Submitted != 150 || src.Requests != 1 {
		t.Errorf("source push:alloy:loki: %+v", src)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

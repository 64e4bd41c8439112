package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esutil"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
)

// TestElasticsearchClient (issue 21): the official Elasticsearch Go
// client, pointed at the processor's ingest listener, passes its product
// check and its bulk indexer delivers every document with an API key made
// of the ingest token; documents with no service are the index's, the
// others keep theirs; the source is counted as push:TOKEN:es.
func TestElasticsearchClient(t *testing.T) {
	const token = "es-token-2c9"
	tokenFile := filepath.Join(t.TempDir(), "beats.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcessor(t, "--ingest-addr", "127.0.0.1:0", "--ingest-token-file", "beats="+tokenFile)
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: []string{"http://" + p.ingest},
		APIKey:    base64.StdEncoding.EncodeToString([]byte("filebeat:" + token)),
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := es.Info()
	if err != nil || info.IsError() {
		t.Fatalf("info: %v %v", info, err)
	}
	info.Body.Close()
	bi, err := esutil.NewBulkIndexer(esutil.BulkIndexerConfig{Client: es, Index: "logs-web-default", NumWorkers: 2, FlushBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for i := range 200 {
		svc := ""
		if i%2 == 1 {
			svc = `,"service":{"name":"checkout"}`
		}
		doc := fmt.Sprintf(`{"@timestamp":%q,"log":{"level":"error"},"message":"request %d failed","user_id":"u-1007"%s}`, now.Format(time.RFC3339Nano), i, svc)
		if err := bi.Add(context.Background(), esutil.BulkIndexerItem{Action: "create", Body: strings.NewReader(doc)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := bi.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := bi.Stats(); st.NumFlushed != 200 || st.NumFailed != 0 {
		t.Fatalf("indexer: %+v", st)
	}
	var s stats
	poll.Until(t, 20*time.Second, "200 stored", func() bool { getJSON(t, p.api+"/stats", &s); return s.Stored == 200 })
	if s.ByService["logs-web-default"] != 100 || s.ByService["checkout"] != 100 || s.ByLevel["ERROR"] != 200 {
		t.Errorf("by service %v, by level %v", s.ByService, s.ByLevel)
	}
	if src := sourceNamed(s, "push:beats:es"); src == nil || src.Submitted != 200 || src.Requests == 0 {
		t.Errorf("source push:beats:es: %+v", src)
	}
	if err := p.stop(t); err != nil {
		t.Fatal(err)
	}
}

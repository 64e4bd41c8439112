package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/snappy"

	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e"
	"github.com/logpipeline/log-processing-service/log-processor/internal/loadtest"
	"github.com/logpipeline/log-processing-service/log-processor/internal/loki"
	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"
)

// memoryBound is what the processor may hold whatever pushers send, with
// default flags: the queue, the memory store, the in-flight budget and the
// tail, with the garbage collector's headroom.
const memoryBound = 256 << 20

// attacked is a processor process under attack: its API and ingest
// addresses, and a watcher that checks /healthz and /stats answer within a
// second all along.
type attacked struct {
	proc   *e2e.Proc
	api    string
	ingest string

	stop  chan struct{}
	done  sync.WaitGroup
	slow  atomic.Int64 // answers that took over a second, or failed
	worst atomic.Int64 // ns
}

// attackProcessor starts the real binary with pushes on, and watches it.
func attackProcessor(t *testing.T, args ...string) *attacked {
	t.Helper()
	p := e2e.Start(t, processorBin, append([]string{"--http-addr", "127.0.0.1:0", "--ingest-addr", "127.0.0.1:0",
		"--log-format", "json"}, args...)...)
	a := &attacked{proc: p, api: "http://" + p.Addr, stop: make(chan struct{})}
	poll.Until(t, 10*time.Second, "the ingest address", func() bool {
		for _, l := range p.Lines("ingest listening") {
			if s, ok := l["addr"].(string); ok {
				a.ingest = s
			}
		}
		return a.ingest != ""
	})
	client := &http.Client{Timeout: time.Second}
	a.done.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-tick.C:
			}
			for _, path := range []string{"/healthz", "/stats"} {
				start := time.Now()
				resp, err := client.Get(a.api + path)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(start)
				if err != nil || d > time.Second {
					a.slow.Add(1)
				}
				if int64(d) > a.worst.Load() {
					a.worst.Store(int64(d))
				}
			}
		}
	})
	t.Cleanup(a.end)
	return a
}

// end stops the watcher.
func (a *attacked) end() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	a.done.Wait()
}

// check ends the attack: the processor's peak RSS within the bound, its API
// answered throughout, and it stops cleanly.
func (a *attacked) check(t *testing.T) {
	t.Helper()
	a.end()
	pr, err := loadtest.ReadProc(a.proc.Pid())
	if err != nil {
		t.Skipf("no /proc here to read the peak RSS: %v", err)
	}
	// The bound is on the memory what pushers send can grow: the peak
	// less the pages mapped from the binary itself (its code and data,
	// some 20 MiB, resident whatever arrives).
	held := pr.Peak - pr.File
	t.Logf("peak RSS %.1f MiB, of which %.1f MiB not the binary's own pages; slowest /healthz or /stats %v",
		float64(pr.Peak)/(1<<20), float64(held)/(1<<20), time.Duration(a.worst.Load()).Round(time.Millisecond))
	if held > memoryBound {
		t.Errorf("peak RSS less the binary's pages %.1f MiB, over %d MiB", float64(held)/(1<<20), memoryBound>>20)
	}
	if n := a.slow.Load(); n > 0 {
		t.Errorf("/healthz or /stats failed or took over a second %d times (worst %v)", n, time.Duration(a.worst.Load()))
	}
	if err := a.proc.Stop(30 * time.Second); err != nil {
		t.Errorf("processor exit: %v\n%s", err, a.proc.Log())
	}
}

// closedWhileSending is post's status for a request whose connection the
// processor closed while the client was still sending its body: a refusal
// (it answered, then closed on the unread rest, as net/http does past 256
// KiB), which Go's client reports as a broken pipe or a reset with no
// status, and every shipper retries.
const closedWhileSending = -1

// post sends body to path on the ingest listener and returns the status
// (closedWhileSending, or 0 when the request failed otherwise). A body over
// 1 MiB is sent after "Expect: 100-continue", as curl sends it, so that a
// request refused before its body is read (503 when the budget is full) is
// usually answered before the body is sent.
func (a *attacked) post(path string, body []byte, header map[string]string) int {
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.ingest+path, bytes.NewReader(body))
	if len(body) > 1<<20 {
		req.Header.Set("Expect", "100-continue")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
		return closedWhileSending
	}
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// concurrently runs n copies of fn at once and counts their statuses.
func concurrently(n int, fn func() int) map[int]int {
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			c := fn()
			mu.Lock()
			codes[c]++
			mu.Unlock()
		})
	}
	wg.Wait()
	return codes
}

// TestPushAttacksBounded (issue 20): what pushers send cannot take the
// processor past its memory bound, nor keep it from answering /healthz and
// /stats within a second. Each attack runs against a fresh processor
// process, whose peak RSS (VmHWM) is read at the end.
func TestPushAttacksBounded(t *testing.T) {
	const mib = 1 << 20
	t.Run("gzip bombs of newlines", func(t *testing.T) {
		// 8 KB of gzip inflating to 8 MiB of newlines: before, the entry
		// slice was sized by the newline count (~180 B each).
		var zb bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
		_, _ = zw.Write(bytes.Repeat([]byte{'\n'}, 8*mib))
		zw.Close()
		a := attackProcessor(t)
		for round := range 3 {
			codes := concurrently(30, func() int { return a.post("/ingest", zb.Bytes(), map[string]string{"Content-Encoding": "gzip"}) })
			t.Logf("round %d (%d compressed bytes each): %v", round, zb.Len(), codes)
			if codes[0] > 0 {
				t.Errorf("%d requests got no answer", codes[0])
			}
		}
		a.check(t)
	})
	t.Run("JSON arrays of millions of numbers", func(t *testing.T) {
		// 8 MiB: [0,0,0,...], 4.19M elements; before, json.Unmarshal into
		// []json.RawMessage, then a copy.
		arr := append([]byte("["), bytes.Repeat([]byte("0,"), 4*mib-1)...)
		arr[len(arr)-1] = ']'
		if len(arr) > 8*mib {
			t.Fatalf("the array is %d bytes, over the body bound", len(arr))
		}
		a := attackProcessor(t)
		codes := concurrently(20, func() int { return a.post("/ingest", arr, nil) })
		t.Logf("20 arrays of %d bytes: %v", len(arr), codes)
		if codes[http.StatusRequestEntityTooLarge]+codes[http.StatusServiceUnavailable]+codes[closedWhileSending] != 20 {
			t.Errorf("answers %v, want each refused: 413 (past --ingest-max-records) or 503 (busy), or closed while still sending", codes)
		}
		a.check(t)
	})
	t.Run("many valid 8 MiB bodies at once", func(t *testing.T) {
		now := strconv.FormatInt(time.Now().UnixMilli(), 10)
		line := `{"timestamp":` + now + `,"level":"INFO","message":"` + strings.Repeat("m", 800) + `","service":"svc"}` + "\n"
		body := bytes.Repeat([]byte(line), 8*mib/len(line))
		a := attackProcessor(t, "--ingest-max-records", "20000")
		codes := concurrently(100, func() int { return a.post("/ingest", body, nil) })
		t.Logf("100 bodies of %d bytes (%d lines): %v", len(body), bytes.Count(body, []byte{'\n'}), codes)
		if codes[0] > 0 {
			t.Errorf("%d requests got no answer", codes[0])
		}
		a.check(t)
	})
	t.Run("WebSocket pushers each sending one 8 MiB frame, then idling", func(t *testing.T) {
		a := attackProcessor(t)
		frame := bytes.Repeat([]byte("x"), 8*mib-1)
		var conns []*websocket.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 150 {
			c, _, err := websocket.DefaultDialer.Dial("ws://"+a.ingest+"/ws/ingest", nil)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
				t.Fatal(err)
			}
		}
		var s stats
		poll.Until(t, 60*time.Second, "150 frames counted", func() bool {
			getJSON(t, a.api+"/stats", &s)
			return s.Received >= 150
		})
		a.check(t)
	})
	t.Run("ingest protocols: bombs and maximum-size requests in a loop", func(t *testing.T) {
		// Snappy blocks claiming a GiB; gzip bombs to OTLP and _bulk; and
		// real requests near each protocol's 20 MiB bound, highly
		// compressible, so that each costs the sender little.
		snappyBomb := append(binary.AppendUvarint(nil, 1<<30), 0)
		var zb bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
		_, _ = zw.Write(bytes.Repeat([]byte{'\n'}, 30*mib))
		zw.Close()
		now := time.Now()
		var entries []loki.Entry
		for range 18 * mib / 2500 { // within --ingest-max-records
			entries = append(entries, loki.Entry{Time: now, Line: strings.Repeat("l", 2500)})
		}
		lokiMax := snappy.Encode(nil, loki.AppendProto(nil, []loki.Stream{{Labels: `{app="a"}`, Entries: entries}}))
		doc := `{"@timestamp":"` + now.UTC().Format(time.RFC3339) + `","message":"` + strings.Repeat("m", 2500) + `"}`
		bulkMax := bytes.Repeat([]byte(`{"create":{"_index":"a"}}`+"\n"+doc+"\n"), 18*mib/(len(doc)+27))
		a := attackProcessor(t)
		gz := map[string]string{"Content-Encoding": "gzip"}
		proto := map[string]string{"Content-Type": "application/x-protobuf"}
		for round := range 3 {
			codes := map[string]map[int]int{
				"loki bomb": concurrently(30, func() int { return a.post(loki.Path, snappyBomb, proto) }),
				"loki max":  concurrently(30, func() int { return a.post(loki.Path, lokiMax, proto) }),
				"otlp gzip": concurrently(30, func() int {
					return a.post("/v1/logs", zb.Bytes(), map[string]string{"Content-Encoding": "gzip", "Content-Type": "application/x-protobuf"})
				}),
				"bulk gzip": concurrently(30, func() int { return a.post("/_bulk", zb.Bytes(), gz) }),
				"bulk max":  concurrently(30, func() int { return a.post("/_bulk", bulkMax, nil) }),
			}
			t.Logf("round %d (Loki %d bytes for %d decoded, _bulk %d bytes): %v", round, len(lokiMax), snappyLen(lokiMax), len(bulkMax), codes)
			for name, c := range codes {
				if c[0] > 0 || c[http.StatusInternalServerError] > 0 {
					t.Errorf("%s: %v", name, c)
				}
			}
			if c := codes["loki bomb"]; c[http.StatusRequestEntityTooLarge] != 30 {
				t.Errorf("Snappy bombs: %v, want 30 refused with 413", c)
			}
		}
		a.check(t)
	})
	t.Run("slow tail readers while 60 KB messages flow", func(t *testing.T) {
		a := attackProcessor(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var readers sync.WaitGroup
		for range 16 {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.api+"/logs/tail?format=ndjson", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			readers.Go(func() { // reads a byte a second: the stream backs up
				defer resp.Body.Close()
				buf := make([]byte, 1)
				for ctx.Err() == nil {
					if _, err := resp.Body.Read(buf); err != nil {
						return
					}
					time.Sleep(time.Second)
				}
			})
		}
		now := strconv.FormatInt(time.Now().UnixMilli(), 10)
		line := `{"timestamp":` + now + `,"level":"INFO","message":"` + strings.Repeat("m", 60000) + `","service":"svc"}` + "\n"
		body := bytes.Repeat([]byte(line), 100) // 6 MB a request
		for range 30 {
			if c := a.post("/ingest", body, nil); c != 200 && c != 503 {
				t.Fatalf("POST: %d", c)
			}
		}
		cancel()
		a.check(t)
		readers.Wait()
	})
}

// snappyLen is the decoded length a Snappy block claims.
func snappyLen(b []byte) int {
	n, _ := snappy.DecodedLen(b)
	return n
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e"
)

// The real binaries, built once by TestMain. The processor cannot import
// the generator's internal packages, so the end-to-end tests run the real
// generator as a process; the processor runs in-process, except where a
// test needs a real process to signal.
var generatorBin, processorBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "logproc-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if generatorBin, err = e2e.Build(dir, e2e.GeneratorPkg, "mock-log-generator", false); err == nil {
		processorBin, err = e2e.Build(dir, e2e.ProcessorPkg, "log-processor", false)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startGenerator runs the generator on a free loopback port.
func startGenerator(t *testing.T, args ...string) *e2e.Proc {
	t.Helper()
	return e2e.Start(t, generatorBin, append([]string{"--url", "127.0.0.1:0", "--log-format", "json"}, args...)...)
}

// syncBuffer is an io.Writer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// processor is log-processor running in-process via run.
type processor struct {
	api    string // base URL of the HTTP API
	ingest string // host:port of the ingest listener, with --ingest-addr
	grpc   string // host:port of the OTLP/gRPC listener, with --otlp-grpc-addr
	cancel context.CancelFunc
	done   chan error
	stderr *syncBuffer
}

func startProcessor(t *testing.T, args ...string) *processor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &processor{cancel: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
	addrc := make(chan net.Addr, 3)
	args = append([]string{"--http-addr", "127.0.0.1:0", "--log-format", "json"}, args...)
	go func() {
		p.done <- run(ctx, nil, args, io.Discard, p.stderr, func(a net.Addr) { addrc <- a }, nil)
	}()
	select {
	case a := <-addrc:
		p.api = "http://" + a.String()
		if slices.Contains(args, "--ingest-addr") {
			p.ingest = (<-addrc).String()
		}
		if slices.Contains(args, "--otlp-grpc-addr") {
			p.grpc = (<-addrc).String()
		}
	case err := <-p.done:
		cancel()
		t.Fatalf("processor exited at start: %v\n%s", err, p.stderr)
	}
	t.Cleanup(func() {
		if p.cancel != nil {
			p.cancel()
			<-p.done
		}
	})
	return p
}

// stop cancels the processor and returns what run returned.
func (p *processor) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("processor did not stop within 15s\n%s", p.stderr)
		return nil
	}
}

// logLines returns the processor's JSON log lines whose msg is msg.
func (p *processor) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(p.stderr.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
	return resp.StatusCode
}

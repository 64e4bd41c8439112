package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/log-processor/internal/proc"
)

// The flood server measures what a fast source costs a reader: it writes
// pre-encoded frames in the generator's shape (about 245 bytes), many per
// write system call, so that its own cost per message is next to nothing
// and the reader (the ceiling client, or the processor) is the whole
// story. It runs as its own process (loadtest flood-server), so that a
// reader's CPU time can be measured apart from it.

// DefaultPerWrite is how many frames the flood server writes per system
// call.
const DefaultPerWrite = 64

// floodFrames returns n distinct generator-shaped log frames, each a whole
// unmasked WebSocket text frame, timestamped now.
func floodFrames(n int, now time.Time) [][]byte {
	services := []string{"auth-service", "payment-service", "order-service", "inventory-service", "notification-service"}
	components := []string{"http", "db", "cache", "queue", "scheduler", "grpc"}
	levels := []string{"INFO", "INFO", "INFO", "INFO", "INFO", "INFO", "WARN", "WARN", "ERROR"}
	messages := []string{"request completed successfully", "slow query detected; consider adding an index",
		"upstream service unavailable after retries", "cache warmed for tenant configuration"}
	rng := rand.New(rand.NewPCG(1, 2))
	hex := func(nbytes int) string {
		const digits = "0123456789abcdef"
		b := make([]byte, 2*nbytes)
		for i := range b {
			b[i] = digits[rng.IntN(16)]
		}
		return string(b)
	}
	out := make([][]byte, n)
	for i := range out {
		payload := fmt.Sprintf(`{"timestamp":%d,"level":%q,"message":%q,"service":%q,"component":%q,"trace_id":%q,"span_id":%q,"parent_id":%q}`,
			now.UnixMilli(), levels[i%len(levels)], messages[i%len(messages)], services[i%len(services)],
			components[i%len(components)], hex(16), hex(8), hex(8))
		out[i] = appendServerFrame(nil, []byte(payload))
	}
	return out
}

// appendServerFrame appends payload as one final, unmasked text frame.
func appendServerFrame(b, payload []byte) []byte {
	b = append(b, 0x81)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	default: // the frames here are under 64 KiB
		b = append(b, 126, byte(n>>8), byte(n))
	}
	return append(b, payload...)
}

// ServeFlood serves GET /ws/logs on ln until ctx ends: each connection gets
// a handshake, then the pre-encoded frames, perWrite to a write, for as
// long as it reads them.
func ServeFlood(ctx context.Context, ln net.Listener, perWrite int, logger *slog.Logger) error {
	frames := floodFrames(perWrite, time.Now())
	var burst []byte
	for _, f := range frames {
		burst = append(burst, f...)
	}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }} // never compression: the frames are raw
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws/logs", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		// Every write is this goroutine's: the raw bursts never interleave
		// with another frame. The reader's control frames are read and
		// dropped by a reader goroutine that never writes.
		go func() {
			for {
				if _, _, err := c.NextReader(); err != nil {
					c.Close()
					return
				}
			}
		}()
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"status":"connected","flood":true}`)); err != nil {
			return
		}
		nc := c.NetConn()
		for ctx.Err() == nil {
			if _, err := nc.Write(burst); err != nil {
				return
			}
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	logger.Info("flood server listening", "addr", ln.Addr().String(), "per_write", perWrite, "frame_bytes", len(frames[0]))
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// CeilingCPU is Ceiling (reading each message into a new slice) with the
// CPU time this process spent per million messages read: the cost of the
// simplest client, to which the processor's is compared.
func CeilingCPU(ctx context.Context, url string, warmup, d time.Duration) (rate, cpuPerM float64, err error) {
	var before, after Proc
	rate, err = ceiling(ctx, []string{url}, false, warmup, d,
		func() { before, _ = ReadProc(os.Getpid()) }, func() { after, _ = ReadProc(os.Getpid()) })
	if err != nil {
		return 0, 0, err
	}
	if msgs := rate * d.Seconds(); msgs > 0 && after.CPU > before.CPU {
		cpuPerM = (after.CPU - before.CPU).Seconds() / msgs * 1e6
	}
	return rate, cpuPerM, nil
}

// floodRows starts the flood server and measures, against its one
// connection: the ceiling client's messages per second and CPU per
// message, then the processor's (memory storage, default flags).
func (cfg SuiteConfig) floodRows(ctx context.Context) ([]row, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	fs, err := proc.Start(self, "flood-server", "--addr", "127.0.0.1:0", "--per-write", strconv.Itoa(DefaultPerWrite))
	if err != nil {
		return nil, fmt.Errorf("start flood server: %w", err)
	}
	defer fs.Stop(10 * time.Second)
	url := "ws://" + fs.Addr + "/ws/logs"
	c, cpu, err := CeilingCPU(ctx, url, cfg.Warmup, cfg.Duration)
	if err != nil {
		return nil, fmt.Errorf("flood ceiling: %w", err)
	}
	res, err := cfg.runProcessor(ctx, []string{url}, cfg.Duration)
	if err != nil {
		return nil, err
	}
	return []row{
		{name: fmt.Sprintf("flood server (pre-encoded, %d per write): ceiling client", DefaultPerWrite), rate: c, ceiling: c,
			res: Result{Duration: cfg.Duration, CPUPerM: cpu}},
		{name: "flood server: processor, memory, 1 conn", rate: res.Rate, ceiling: c, res: res, cpuRef: cpu},
	}, nil
}

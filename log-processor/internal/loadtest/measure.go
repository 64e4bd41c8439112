// Package loadtest measures the pipeline's throughput: how fast a plain
// WebSocket client can read a flood (the ceiling), how fast a running
// processor takes it (from its /stats), and what that costs the processor
// in CPU time and memory (from /proc, on Linux). It only talks to the
// addresses it is given.
package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Ceiling reads from every url at once, discarding each message, for d
// after a warm-up, and returns the messages per second read in all. With
// fast unset it reads as the simplest client does, a fresh slice per
// message (ReadMessage): the wire's ceiling for a consumer. With fast set
// it streams each message into io.Discard, which costs the reader almost
// nothing and so shows what the source itself can send.
func Ceiling(ctx context.Context, urls []string, fast bool, warmup, d time.Duration) (float64, error) {
	return ceiling(ctx, urls, fast, warmup, d, nil, nil)
}

// ceiling is Ceiling, calling start and end (when not nil) as the
// measured window opens and closes.
func ceiling(ctx context.Context, urls []string, fast bool, warmup, d time.Duration, start, end func()) (float64, error) {
	var n atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // the goroutines end when ctx does
	errs := make(chan error, len(urls))
	for _, u := range urls {
		c, _, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
		if err != nil {
			return 0, fmt.Errorf("dial %s: %w", u, err)
		}
		wg.Go(func() {
			<-ctx.Done()
			c.Close()
		})
		wg.Go(func() {
			for {
				var err error
				if fast {
					var r io.Reader
					if _, r, err = c.NextReader(); err == nil {
						_, err = io.Copy(io.Discard, r)
					}
				} else {
					_, _, err = c.ReadMessage()
				}
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("read %s: %w", u, err)
						cancel()
					}
					return
				}
				n.Add(1)
			}
		})
	}
	if err := sleep(ctx, warmup); err != nil {
		return 0, firstErr(errs, err)
	}
	if start != nil {
		start()
	}
	t0, n0 := time.Now(), n.Load()
	if err := sleep(ctx, d); err != nil {
		return 0, firstErr(errs, err)
	}
	if end != nil {
		end()
	}
	return float64(n.Load()-n0) / time.Since(t0).Seconds(), nil
}

func firstErr(errs chan error, err error) error {
	select {
	case e := <-errs:
		return e
	default:
		return err
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Stats is the part of the processor's /stats the load test reads.
type Stats struct {
	Processed uint64
	Received  uint64 `json:"received"`
	OK        uint64 `json:"ok"`
	ParseErr  uint64 `json:"parse_err"`
	Submitted uint64 `json:"submitted"`
	Dropped   uint64 `json:"dropped"`
	Stored    uint64 `json:"stored"`
}

// ReadStats fetches api + "/stats".
func ReadStats(ctx context.Context, api string) (Stats, error) {
	var s Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(api, "/")+"/stats", nil)
	if err != nil {
		return s, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /stats: %s", resp.Status)
	}
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

// Proc is a sample of a process's resource use, from /proc (Linux only).
type Proc struct {
	CPU  time.Duration // user + system time so far
	RSS  int64         // resident set size now, bytes
	Peak int64         // peak resident set size (VmHWM), bytes
	File int64         // resident pages mapped from files now (RssFile): the binary's code and data, bytes
}

// ReadProc samples process pid. It fails where /proc does not exist.
func ReadProc(pid int) (Proc, error) {
	var p Proc
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	// Fields after the command name, which is in parentheses.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return p, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on every Linux platform Go supports
	p.CPU = time.Duration(utime+stime) * time.Second / ticks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			p.RSS = kb << 10
		case "VmHWM":
			p.Peak = kb << 10
		case "RssFile":
			p.File = kb << 10
		}
	}
	return p, nil
}

// Result is one measured window of a running processor.
type Result struct {
	Rate       float64       // messages received per second
	Stored     float64       // entries stored per second
	CPUPerM    float64       // processor CPU-seconds per million messages; 0 if unknown
	PeakRSS    int64         // bytes; 0 if unknown
	RSSAt      []int64       // RSS sampled once a second, bytes
	Dropped    uint64        // entries dropped in the window
	ParseErr   uint64        // frames rejected in the window
	Duration   time.Duration // length of the window
	Messages   uint64        // messages received in the window
	StoredRows uint64        // entries stored in the window
}

// Watch measures the processor at api for d after a warm-up. If pid is not
// zero, it also samples that process's CPU time and memory.
func Watch(ctx context.Context, api string, pid int, warmup, d time.Duration) (Result, error) {
	var r Result
	if err := sleep(ctx, warmup); err != nil {
		return r, err
	}
	s0, err := ReadStats(ctx, api)
	if err != nil {
		return r, err
	}
	start := time.Now()
	var p0 Proc
	if pid != 0 {
		if p0, err = ReadProc(pid); err != nil {
			return r, err
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(start) < d {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tick.C:
		}
		if pid != 0 {
			if p, err := ReadProc(pid); err == nil {
				r.RSSAt = append(r.RSSAt, p.RSS)
			}
		}
	}
	s1, err := ReadStats(ctx, api)
	if err != nil {
		return r, err
	}
	r.Duration = time.Since(start)
	r.Messages = s1.Received - s0.Received
	r.StoredRows = s1.Stored - s0.Stored
	r.Rate = float64(r.Messages) / r.Duration.Seconds()
	r.Stored = float64(r.StoredRows) / r.Duration.Seconds()
	r.Dropped = s1.Dropped - s0.Dropped
	r.ParseErr = s1.ParseErr - s0.ParseErr
	if pid != 0 {
		p1, err := ReadProc(pid)
		if err != nil {
			return r, err
		}
		if r.Messages > 0 {
			r.CPUPerM = (p1.CPU - p0.CPU).Seconds() / float64(r.Messages) * 1e6
		}
		r.PeakRSS = p1.Peak
	}
	return r, nil
}

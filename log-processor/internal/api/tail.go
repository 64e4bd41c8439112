package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/tail"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Pacing of a tail stream.
const (
	tailWriteWait  = 10 * time.Second // a client that takes no bytes for this long is cut off
	tailReportTick = time.Second      // how often missed entries are reported
	tailKeepalive  = 15 * time.Second // an SSE comment keeps proxies from closing an idle stream
	tailFlushBytes = 64 << 10         // entries written per flush, at most
)

// serveTail streams entries as they are stored: as Server-Sent Events, or
// as newline-delimited JSON when the client asks for it (?format=ndjson,
// or Accept: application/x-ndjson). A client that reads too slowly misses
// entries and is told how many: an SSE event "dropped", or a line
// {"dropped": N, "dropped_total": M}. ?max_rate=N sends at most N entries a
// second, skipping (and reporting) the rest: the dashboard asks for 50.
func serveTail(hub *tail.Hub, done <-chan struct{}, logger *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		format := q.Get("format")
		maxRate := 0 // entries per second; 0 = all
		if v := q.Get("max_rate"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1_000_000 {
				http.Error(w, `invalid max_rate: want entries per second, 1 to 1000000`, http.StatusBadRequest)
				return
			}
			maxRate = n
		}
		q.Del("format")
		q.Del("token")
		q.Del("max_rate")
		if _, ok := q["limit"]; ok {
			http.Error(w, "invalid limit: the tail has no limit; it follows until you stop it", http.StatusBadRequest)
			return
		}
		f, err := ParseFilter(q)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ndjson := format == "ndjson" || strings.Contains(r.Header.Get("Accept"), "application/x-ndjson")
		if format != "" && format != "ndjson" && format != "sse" {
			http.Error(w, `invalid format: want sse (the default) or ndjson`, http.StatusBadRequest)
			return
		}
		sub, err := hub.Subscribe(f, maxRate)
		if errors.Is(err, tail.ErrTooMany) {
			w.Header().Set("Retry-After", "5")
			http.Error(w, "too many clients follow the tail (--tail-max-clients); retry later", http.StatusServiceUnavailable)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer hub.Unsubscribe(sub)

		rc := http.NewResponseController(w)
		if ndjson {
			w.Header().Set("Content-Type", "application/x-ndjson")
		} else {
			w.Header().Set("Content-Type", "text/event-stream")
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
		w.WriteHeader(http.StatusOK)
		write := func(b []byte) bool {
			_ = rc.SetWriteDeadline(time.Now().Add(tailWriteWait))
			if _, err := w.Write(b); err != nil {
				return false
			}
			return rc.Flush() == nil
		}
		if ndjson {
			if rc.Flush() != nil { // the headers, so that the client knows it follows
				return
			}
		} else if !write([]byte(": following the tail\n\n")) {
			return
		}
		tick := time.NewTicker(tailReportTick)
		defer tick.Stop()
		var reported uint64
		lastWrite := time.Now()
		var buf []byte
		for {
			select {
			case <-r.Context().Done():
				return
			case <-done:
				return
			case e := <-sub.Entries():
				sub.Received(&e)
				buf = appendEntry(buf[:0], &e, ndjson)
			more:
				for len(buf) < tailFlushBytes {
					select {
					case e := <-sub.Entries():
						sub.Received(&e)
						buf = appendEntry(buf, &e, ndjson)
					default:
						break more
					}
				}
				if len(buf) > 0 {
					if !write(buf) {
						return
					}
					lastWrite = time.Now()
				}
			case now := <-tick.C:
				if m := sub.Missed(); m > reported {
					msg := fmt.Sprintf(`{"dropped":%d,"dropped_total":%d}`, m-reported, m)
					reported = m
					if ndjson {
						msg += "\n"
					} else {
						msg = "event: dropped\ndata: " + msg + "\n\n"
					}
					if !write([]byte(msg)) {
						return
					}
					lastWrite = now
				} else if !ndjson && now.Sub(lastWrite) >= tailKeepalive {
					if !write([]byte(": keepalive\n\n")) {
						return
					}
					lastWrite = now
				}
			}
		}
	}
}

// appendEntry appends e as one SSE event or one NDJSON line.
func appendEntry(buf []byte, e *models.LogEntry, ndjson bool) []byte {
	b, err := json.Marshal(e)
	if err != nil {
		return buf
	}
	if ndjson {
		return append(append(buf, b...), '\n')
	}
	buf = append(buf, "data: "...)
	buf = append(buf, b...)
	return append(buf, "\n\n"...)
}

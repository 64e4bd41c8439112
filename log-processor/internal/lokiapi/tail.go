package lokiapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/log-processor/internal/logql"
	"github.com/logpipeline/log-processing-service/log-processor/internal/tail"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Pacing of a tail.
const (
	writeWait    = 10 * time.Second // a client that takes no frame for this long is cut off
	pingPeriod   = 30 * time.Second // keeps proxies from closing an idle tail
	tailBatch    = 100              // entries per frame, at most
	tailMaxStart = 1000             // entries sent from before the tail began, at most
)

// upgrader for tails: the token guards the route, never a cookie, so a
// page from another origin gains nothing by connecting.
var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 16 << 10, CheckOrigin: func(*http.Request) bool { return true }}

// Tail answers GET /loki/api/v1/tail over a WebSocket: query (a log
// query), start (entries from then on are sent first, at most limit, 100
// by default) and then each new entry passing the query, as frames of
// {"streams":[{"stream":{...},"values":[["<ns>","<line>"]]}]}. A client
// too slow for the entries misses some: the tail's bounds
// (--tail-max-clients and its bytes) hold.
func (a *API) Tail(w http.ResponseWriter, r *http.Request) {
	if err := form(w, r); err != nil {
		a.fail(w, err)
		return
	}
	expr, err := logql.Parse(r.Form.Get("query"))
	if err != nil {
		a.fail(w, err)
		return
	}
	q, ok := expr.(*logql.LogQuery)
	if !ok {
		a.fail(w, badf("the tail follows a log query, not a metric query"))
		return
	}
	now := time.Now()
	start, err := parseTime(r.Form.Get("start"), now.Add(-defaultRange))
	if err != nil {
		a.fail(w, badf("invalid start: %v", err))
		return
	}
	limit := 100
	if v := r.Form.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit <= 0 {
			a.fail(w, badf("invalid limit %q", v))
			return
		}
	}
	f := logql.Pushdown(q)
	sub, err := a.hub.Subscribe(f, 0)
	if errors.Is(err, tail.ErrTooMany) {
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many clients follow the tail (--tail-max-clients); retry later", http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer a.hub.Unsubscribe(sub)
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade answered the client
	}
	defer conn.Close()

	// The reader takes the client's control frames and sees it go.
	gone := make(chan struct{}) // closed by the reader
	go func() {
		defer close(gone)
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	send := func(entries []models.LogEntry) bool {
		if len(entries) == 0 {
			return true
		}
		streams := make([]logql.Stream, 0, 1)
		index := map[string]int{}
		for i := range entries {
			labels := logql.Labels(&entries[i])
			k := logql.Key(labels)
			j, ok := index[k]
			if !ok {
				j = len(streams)
				index[k] = j
				streams = append(streams, logql.Stream{Labels: labels})
			}
			streams[j].Entries = append(streams[j].Entries, logql.Entry{Time: time.UnixMilli(entries[i].Timestamp), Line: logql.Line(&entries[i])})
		}
		b := append(appendTailStreams(nil, streams), '\n')
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		return conn.WriteMessage(websocket.TextMessage, b) == nil
	}

	// What was stored since start, oldest first.
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.Timeout)
	backlog, err := a.engine.Logs(ctx, q, logql.Params{Start: start, End: now, Limit: min(limit, tailMaxStart), Forward: true})
	cancel()
	if err == nil {
		for _, s := range backlog {
			b := append(appendTailStreams(nil, []logql.Stream{s}), '\n')
			_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
			if conn.WriteMessage(websocket.TextMessage, b) != nil {
				return
			}
		}
	}

	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	var batch []models.LogEntry
	for {
		select {
		case <-gone:
			return
		case <-a.cfg.Done:
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
			return
		case <-ping.C:
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)) != nil {
				return
			}
		case e := <-sub.Entries():
			sub.Received(&e)
			batch = append(batch[:0], e)
		more:
			for len(batch) < tailBatch {
				select {
				case e := <-sub.Entries():
					sub.Received(&e)
					batch = append(batch, e)
				default:
					break more
				}
			}
			kept := batch[:0]
			for i := range batch {
				if logql.Passes(q, &batch[i]) {
					kept = append(kept, batch[i])
				}
			}
			if !send(kept) {
				return
			}
			clear(batch)
		}
	}
}

// appendTailStreams writes a tail frame: {"streams":[...]}.
func appendTailStreams(b []byte, streams []logql.Stream) []byte {
	b = append(b, `{"streams":`...)
	b = appendStreamList(b, streams)
	return append(b, '}')
}

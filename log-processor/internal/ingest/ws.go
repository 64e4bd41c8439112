package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
)

const (
	// writeWait bounds each control frame (ping, close) written to a
	// pusher.
	writeWait = 5 * time.Second
	// closeWait is how long a pusher has to finish at shutdown after its
	// close frame.
	closeWait = time.Second
	// wsReadBuffer is a connection's read buffer: small, since a pusher
	// idles most of the time (its frames are read past it into a pooled
	// buffer under the in-flight budget).
	wsReadBuffer = 4 << 10
)

// WS is the GET /ws/ingest source: each pusher's frames are read one at a
// time, their bytes held within the push paths' in-flight budget, and fed
// to the pusher's intake, which a full queue slows rather than drops. Run,
// Stats and Health make it a pipeline source; Mount serves it.
type WS struct {
	cfg  Config
	env  Env
	path *push.Path
	log  *slog.Logger
	up   websocket.Upgrader
	bufs push.Buffers

	ctx    context.Context // ended by Run's end: pushers stop waiting for room
	cancel context.CancelFunc

	mu      sync.Mutex
	clients int // connected now
}

// NewWS returns the GET /ws/ingest source.
func NewWS(cfg Config, env Env, logger *slog.Logger) *WS {
	log := logger.With("component", "ingest")
	ctx, cancel := context.WithCancel(context.Background())
	w := &WS{cfg: cfg.withDefaults(), env: env, path: push.NewPath(env.Sink, PathWS, "ws", log), log: log, ctx: ctx, cancel: cancel}
	w.up = websocket.Upgrader{
		ReadBufferSize:  wsReadBuffer,
		WriteBufferSize: 1024,
		// Pushers authenticate with a token, never a cookie, so a page from
		// another origin gains nothing by connecting: browsers are welcome.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return w
}

// Mount adds the source's route to mux.
func (w *WS) Mount(mux *http.ServeMux) { mux.HandleFunc("GET "+PathWS, w.serve) }

// Run takes pushers until ctx ends, then closes them (after the frame each
// is handling) and returns once they are gone: after it, nothing is
// submitted.
func (w *WS) Run(ctx context.Context) error {
	<-ctx.Done()
	w.cancel()
	w.path.Close()
	return nil
}

// Stats returns a row per token.
func (w *WS) Stats() []intake.Stats { return w.path.Stats() }

// Health says whether it takes pushers.
func (w *WS) Health() intake.Health { return w.path.Health() }

func (w *WS) serve(rw http.ResponseWriter, r *http.Request) {
	// Browsers cannot set headers on a WebSocket: ?token= is accepted here.
	token, ok := w.env.Auth.Check(r, push.Basic|push.Query)
	if !ok {
		push.Unauthorized(rw, "log-processor ingest", "push with Authorization: Bearer <ingest token> (or ?token= on a WebSocket)")
		return
	}
	if !w.path.Enter() {
		push.Busy(rw, http.StatusServiceUnavailable, "shutting down")
		return
	}
	defer w.path.Leave()
	w.mu.Lock()
	if w.clients >= w.cfg.MaxClients {
		w.mu.Unlock()
		push.Busy(rw, http.StatusServiceUnavailable, fmt.Sprintf("too many pushers connected (%d, --ingest-max-clients)", w.cfg.MaxClients))
		return
	}
	w.clients++
	w.mu.Unlock()
	defer func() { w.mu.Lock(); w.clients--; w.mu.Unlock() }()

	conn, err := w.up.Upgrade(rw, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer conn.Close()
	stop := func() {
		msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "processor shutting down")
		_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
		_ = conn.SetReadDeadline(time.Now().Add(closeWait))
	}
	in, done := w.path.OpenStream(token, r.RemoteAddr, w.ctx, stop)
	acks := r.URL.Query().Get("ack") == "1"
	w.log.Info("pusher connected", "token", token, "remote", r.RemoteAddr, "acks", acks)
	err = w.read(conn, in, acks)
	done()
	in.LogSummary()
	w.log.Info("pusher disconnected", "token", token, "remote", r.RemoteAddr, "err", err)
}

// read reads frames until the pusher goes or the source stops. With acks,
// each frame is taken whole (as an HTTP request is) and answered, once its
// entries are stored (--ack), with {"acked":N}: every frame up to the Nth
// of the connection is taken.
func (w *WS) read(conn *websocket.Conn, in *intake.Intake, acks bool) error {
	limit := w.cfg.MaxBodyBytes
	// Past 4x the bound a frame is not even read to its end: the
	// connection goes.
	conn.SetReadLimit(limit * 4)
	_ = conn.SetReadDeadline(time.Now().Add(w.cfg.PongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(w.cfg.PongWait)) })
	pingDone := make(chan struct{}) // closed when read returns; the pinger stops
	defer close(pingDone)
	go func() {
		t := time.NewTicker(w.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-pingDone:
				return
			case now := <-t.C:
				_ = conn.WriteControl(websocket.PingMessage, nil, now.Add(writeWait))
			}
		}
	}()
	slot := w.env.Gate.Stream(w.ctx)
	defer slot.Leave()
	var a *acker
	if acks {
		a = newAcker(w, conn, in, slot)
		defer a.finish()
	}
	for {
		_, rd, err := conn.NextReader()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				in.Count(parser.TooLarge, time.Now())
			}
			return err
		}
		// Text or binary alike: some shippers send only binary frames.
		buf, err := push.ReadAll(rd, limit, slot, w.bufs.Get(), -1)
		now := time.Now()
		switch {
		case errors.Is(err, push.ErrTooLarge):
			_, err = io.Copy(io.Discard, rd)
			in.Count(parser.TooLarge, now)
		case err == nil && a != nil:
			err = a.frame(buf, now)
		case err == nil:
			in.Lines(buf, now) // blocks while the queue is full: the pusher is slowed
		}
		w.bufs.Put(buf) // a large frame's buffer is not kept
		slot.Give(slot.Held())
		if err != nil {
			if errors.Is(err, push.ErrBusy) && w.ctx.Err() != nil {
				return w.ctx.Err()
			}
			return err
		}
		_ = conn.SetReadDeadline(now.Add(w.cfg.PongWait))
		if w.ctx.Err() != nil {
			return w.ctx.Err()
		}
	}
}

// ackWindow bounds the frames of one connection taken and not yet
// acknowledged: past it the reader waits for the oldest, which slows the
// pusher. Their entries are in the queue, within its bounds.
const ackWindow = 32

// acker takes a pusher's frames whole and acknowledges them in order, for
// a pusher that asked for acknowledgements (?ack=1): the reading goroutine
// submits each frame and goes on to the next, while the acker's writer
// waits for each to be stored and writes {"acked":N}.
type acker struct {
	w     *WS
	conn  *websocket.Conn
	in    *intake.Intake
	batch intake.Batch // the reader's

	// pending is sent to by the reader and closed by finish; the writer
	// drains it. failed is closed by the writer when a frame was not
	// confirmed: err says why, and the connection is being closed.
	pending chan *intake.Pending
	failed  chan struct{}
	err     error
	writer  sync.WaitGroup
}

func newAcker(w *WS, conn *websocket.Conn, in *intake.Intake, slot *push.Slot) *acker {
	a := &acker{w: w, conn: conn, in: in, batch: intake.Batch{MaxEntries: w.cfg.MaxRecords, Reserve: slot.Take},
		pending: make(chan *intake.Pending, ackWindow), failed: make(chan struct{})}
	a.writer.Go(a.write)
	return a
}

// errUnconfirmed ends a connection whose frame was not confirmed stored
// in time: the pusher sends again what it holds unacknowledged.
var errUnconfirmed = errors.New("a frame was not confirmed stored in time (--ack-timeout)")

// frame takes one frame whole, waiting while the queue is full (the pusher
// is slowed), and hands it to the writer to acknowledge. A frame with too
// many records closes the connection with the reason; the frames before it
// are still acknowledged.
func (a *acker) frame(buf []byte, now time.Time) error {
	b := &a.batch
	defer b.Reset()
	var p *intake.Pending
	err := ParseBody(a.in, b, buf, now)
	for err == nil {
		p, err = a.in.SubmitPending(b, a.w.cfg.SubmitTimeout)
		if !errors.Is(err, queue.ErrFull) || a.w.ctx.Err() != nil {
			break
		}
	}
	var code int
	switch {
	case err == nil:
		select {
		case a.pending <- p:
			return nil
		case <-a.failed:
			return a.err
		}
	case errors.Is(err, queue.ErrFull), errors.Is(err, intake.ErrBusy):
		code, err = websocket.CloseTryAgainLater, fmt.Errorf("%w: %v", errUnconfirmed, err)
	case errors.Is(err, intake.ErrTooMany), errors.Is(err, queue.ErrTooLarge):
		code = websocket.CloseMessageTooBig
	default:
		code = websocket.CloseUnsupportedData
	}
	msg := websocket.FormatCloseMessage(code, truncate(err.Error(), 120))
	_ = a.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
	return err
}

// write acknowledges the frames in order as they are stored. A frame not
// confirmed in time closes the connection (1013, try again later): the
// frames after it are not acknowledged, and the pusher sends them again.
func (a *acker) write() {
	var n uint64
	var out []byte
	for p := range a.pending {
		if a.err != nil {
			continue // failed: drain
		}
		if err := a.in.Confirm(a.w.ctx, p); err != nil {
			a.fail(fmt.Errorf("%w: %v", errUnconfirmed, err))
			continue
		}
		n++
		out = strconv.AppendUint(append(out[:0], `{"acked":`...), n, 10)
		out = append(out, '}')
		_ = a.conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := a.conn.WriteMessage(websocket.TextMessage, out); err != nil {
			a.fail(err)
		}
	}
}

// fail ends the connection for err: a close frame, and a read deadline so
// that the reader stops even if the pusher sends on.
func (a *acker) fail(err error) {
	a.err = err
	close(a.failed)
	msg := websocket.FormatCloseMessage(websocket.CloseTryAgainLater, truncate(err.Error(), 120))
	_ = a.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(writeWait))
	_ = a.conn.SetReadDeadline(time.Now().Add(closeWait))
}

// finish stops taking frames and waits until the writer has acknowledged
// (or given up) what was taken.
func (a *acker) finish() {
	close(a.pending)
	a.writer.Wait()
}

// truncate shortens s to at most n bytes (a close frame's reason is short).
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

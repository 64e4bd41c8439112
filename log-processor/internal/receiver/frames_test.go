package receiver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gorilla/websocket"
)

// serverFrame is one unmasked frame as a server sends it: b0 is FIN, RSV
// and opcode.
func serverFrame(b0 byte, payload []byte) []byte {
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func text(s string) []byte { return serverFrame(0x81, []byte(s)) }

// Limits small enough for the fuzzer to cross.
const (
	fuzzLimit = 40
	fuzzHard  = 4 * fuzzLimit
)

// frameSeeds are streams of frames as a source may send them, good and bad.
var frameSeeds = [][]byte{
	nil,
	text(`{"level":"INFO","message":"m"}`),
	join(text("a"), text(""), serverFrame(0x82, []byte("bin")), text("b")),
	join(serverFrame(0x01, []byte("frag")), serverFrame(0x89, []byte("ping")), serverFrame(0x00, []byte("men")), serverFrame(0x80, []byte("ted"))),
	join(text(strings.Repeat("x", fuzzLimit+1)), text("after")),
	join(serverFrame(0x01, []byte(strings.Repeat("y", fuzzLimit))), serverFrame(0x80, []byte("z")), text("after")),
	text(strings.Repeat("h", fuzzHard+1)),
	serverFrame(0x81, []byte(strings.Repeat("m", 300))), // a 16-bit length
	join(serverFrame(0x8a, []byte("pong")), serverFrame(0x88, []byte{0x03, 0xe8, 'b', 'y', 'e'})),
	serverFrame(0x88, nil),
	serverFrame(0x88, []byte{0x03}),
	serverFrame(0x88, []byte{0x03, 0xed}),                       // 1005 may not be sent
	serverFrame(0x88, []byte{0x03, 0xe8, 0xff}),                 // invalid UTF-8
	serverFrame(0xc1, []byte("rsv1")),                           // no extension negotiated
	serverFrame(0x83, []byte("op3")),                            // reserved opcode
	serverFrame(0x00, []byte("cont")),                           // continuation of nothing
	join(serverFrame(0x01, []byte("a")), text("b")),             // a new message mid-message
	serverFrame(0x09, []byte("ping")),                           // a control frame in fragments
	serverFrame(0x89, []byte(strings.Repeat("p", 126))),         // a control frame too long
	{0x81, 0x85, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'},           // masked by the server
	{0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0},                      // a negative length
	{0x81, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, // past the hard limit
	{0x81, 10, 'a', 'b'},                                        // cut short
}

func join(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// handshakeConn is a net.Conn on which gorilla's client finds a server
// that upgrades the connection and then sends stream.
type handshakeConn struct {
	net.Conn // nil: only what gorilla calls is implemented
	wrote    bytes.Buffer
	in       io.Reader
	stream   []byte
}

func (c *handshakeConn) Write(p []byte) (int, error) { return c.wrote.Write(p) }

func (c *handshakeConn) Read(p []byte) (int, error) {
	if c.in == nil {
		req, err := http.ReadRequest(bufio.NewReader(&c.wrote))
		if err != nil {
			return 0, err
		}
		h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		head := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n"
		c.in = io.MultiReader(strings.NewReader(head), bytes.NewReader(c.stream))
		c.wrote.Reset()
	}
	return c.in.Read(p)
}

func (c *handshakeConn) Close() error                     { return nil }
func (c *handshakeConn) SetDeadline(time.Time) error      { return nil }
func (c *handshakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *handshakeConn) SetWriteDeadline(time.Time) error { return nil }
func (c *handshakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *handshakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }

// sentClose returns the payloads of the close frames in what a client
// wrote (masked frames).
func sentClose(t *testing.T, b []byte) []string {
	var out []string
	for len(b) > 0 {
		if len(b) < 6 || b[1]&0x80 == 0 || b[1]&0x7f > 125 {
			t.Fatalf("client wrote %x", b)
		}
		op, n := b[0]&0xf, int(b[1]&0x7f)
		key, payload := b[2:6], bytes.Clone(b[6:6+n])
		for i := range payload {
			payload[i] ^= key[i%4]
		}
		if op == websocket.CloseMessage {
			out = append(out, fmt.Sprintf("close %x", payload))
		}
		b = b[6+n:]
	}
	return out
}

// gorillaReads is what gorilla's reading makes of stream, as the receiver
// read it before frames: each message, control frame and close frame sent,
// and the error that ended it.
func gorillaReads(t *testing.T, stream []byte) []string {
	nc := &handshakeConn{stream: stream}
	d := websocket.Dialer{ReadBufferSize: 64, WriteBufferSize: 64,
		NetDialContext: func(context.Context, string, string) (net.Conn, error) { return nc, nil }}
	conn, _, err := d.Dial("ws://source/", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	conn.SetReadLimit(fuzzHard)
	conn.SetPingHandler(func(s string) error { got = append(got, "ping "+s); return nil })
	conn.SetPongHandler(func(s string) error { got = append(got, "pong "+s); return nil })
	g := &gorillaFrames{conn: conn, limit: fuzzLimit}
	got = append(got, reads(g)...)
	return append(got, sentClose(t, nc.wrote.Bytes())...)
}

// framesReads is the same from frames, reading src into a buffer of size
// bufSize.
func framesReads(src io.Reader, bufSize int) []string {
	var got, closes []string
	f := &frames{buf: make([]byte, bufSize), maxBuf: 2 * bufSize, limit: fuzzLimit, hard: fuzzHard}
	f.reset(src)
	f.ping = func(p []byte) error { got = append(got, "ping "+string(p)); return nil }
	f.pong = func(p []byte) error { got = append(got, "pong "+string(p)); return nil }
	f.close = func(p []byte) { closes = append(closes, fmt.Sprintf("close %x", p)) }
	got = append(got, reads(f)...)
	return append(got, closes...)
}

func reads(src frameSource) []string {
	var got []string
	for {
		mt, data, tooLarge, err := src.next()
		if err != nil {
			return append(got, "error "+err.Error())
		}
		got = append(got, fmt.Sprintf("message %d %q %v", mt, data, tooLarge))
	}
}

// checkFrames compares what frames and gorilla read from stream, with
// whole reads into a large buffer and with one byte per read into a small
// one (which moves, grows to twice its size when reads fill it, and
// further for a frame larger than it).
func checkFrames(t *testing.T, stream []byte) {
	t.Helper()
	want := strings.Join(gorillaReads(t, stream), "\n")
	for _, c := range []struct {
		src     io.Reader
		bufSize int
	}{{bytes.NewReader(stream), readBufferSize}, {iotest.OneByteReader(bytes.NewReader(stream)), 3}} {
		if got := strings.Join(framesReads(c.src, c.bufSize), "\n"); got != want {
			t.Fatalf("stream %x (buffer %d):\nframes:\n%s\ngorilla:\n%s", stream, c.bufSize, got, want)
		}
	}
}

// TestFrames reads each seed through frames and through gorilla: the same
// messages, control frames, close frames sent and final error.
func TestFrames(t *testing.T) {
	for i, s := range frameSeeds {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkFrames(t, s) })
	}
	// One case the table cannot show: the error names every flaw.
	got := framesReads(bytes.NewReader([]byte{0xf3, 0x81}), 16)
	if want := "error websocket: RSV1 set, RSV2 set, RSV3 set, bad opcode 3, bad MASK"; got[0] != want {
		t.Errorf("got %q, want %q", got[0], want)
	}
}

func FuzzFrames(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add(s)
	}
	f.Fuzz(checkFrames)
}

// TestFramesAllocate: a message in one frame costs no allocation.
func TestFramesAllocate(t *testing.T) {
	msg := text(`{"timestamp":1,"level":"INFO","message":"m","service":"s"}`)
	stream := bytes.Repeat(msg, 1000)
	rd := bytes.NewReader(stream)
	f := &frames{limit: 1 << 20, hard: 1 << 26}
	f.reset(rd)
	allocs := testing.AllocsPerRun(100, func() {
		if rd.Len() == 0 {
			rd.Reset(stream)
		}
		if _, _, _, err := f.next(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per message, want 0", allocs)
	}
}

// chunks reads its byte slices one per Read, each whole (p is assumed
// large enough).
type chunks [][]byte

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	if n < len((*c)[0]) {
		(*c)[0] = (*c)[0][n:]
	} else {
		*c = (*c)[1:]
	}
	return n, nil
}

// TestStampedConnHandshake: during the handshake no read returns a byte
// past a response head's end, and the bytes held back come first after it.
func TestStampedConnHandshake(t *testing.T) {
	const head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
	for _, c := range []struct {
		name      string
		reads     []string
		wantClean bool
	}{
		{"head and frames in one read", []string{head + "FRAMES"}, true},
		{"head alone", []string{head, "FRAMES"}, true},
		{"head split in its blank line", []string{head[:len(head)-3], head[len(head)-3:] + "FRAMES"}, true},
		{"a proxy's head, then the upgrade's", []string{"HTTP/1.1 200 OK\r\n\r\n" + head + "FRAMES"}, true},
		{"bare LF", []string{"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n\r\n\r\nFRAMES"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var in chunks
			for _, r := range c.reads {
				in = append(in, []byte(r))
			}
			sc := &stampedConn{Conn: &readConn{Reader: &in}, handshakeLeft: 1 << 10}
			br := bufio.NewReaderSize(sc, 4096) // as gorilla reads the heads
			all := strings.Join(c.reads, "")
			end := strings.LastIndex(all, "\r\n\r\n") + 4
			var got []byte
			for len(got) < end {
				b, err := br.ReadByte()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, b)
				if br.Buffered() > end-len(got) {
					t.Fatalf("after %d bytes, %d more buffered: past the head's end at %d", len(got), br.Buffered(), end)
				}
			}
			sc.handshakeLeft = -1
			if sc.clean() != c.wantClean {
				t.Errorf("clean = %v, want %v", sc.clean(), c.wantClean)
			}
			rest, _ := io.ReadAll(sc)
			if string(got)+string(rest) != all {
				t.Errorf("read %q then %q, want %q", got, rest, all)
			}
		})
	}
}

// readConn is a net.Conn reading from Reader.
type readConn struct {
	net.Conn
	io.Reader
}

func (c *readConn) Read(p []byte) (int, error) { return c.Reader.Read(p) }

// TestFramesWithTheHandshake (direct reading): a source that sends its
// first frames in the same packet as its upgrade response, as a fast one
// does, loses none of them; and one whose response lines end in bare LF is
// read through gorilla, also losing none.
func TestFramesWithTheHandshake(t *testing.T) {
	for _, c := range []struct {
		name string
		eol  string
	}{{"CR LF", "\r\n"}, {"bare LF", "\n"}} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			t.Cleanup(func() { ln.Close(); <-done })
			go func() {
				defer close(done)
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				req, err := http.ReadRequest(bufio.NewReader(nc))
				if err != nil {
					return
				}
				h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
				out := []byte(strings.Join([]string{"HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
					"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(h[:]), "", ""}, c.eol))
				for i := range 3 {
					out = append(out, text(string(logFrame(i)))...)
				}
				_, _ = nc.Write(out) // one write: the frames arrive with the head
				_, _ = io.Copy(io.Discard, nc)
			}()
			p := &pool{}
			r := New(Config{URL: "ws://" + ln.Addr().String() + "/"}, sinkFor(p), discard)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn, sc, direct, err := r.dial(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if want := c.eol == "\r\n"; direct != want {
				t.Errorf("direct = %v, want %v", direct, want)
			}
			var rd readers
			src := r.source(&rd, conn, sc, direct)
			for i := range 3 {
				mt, data, tooLarge, err := src.next()
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if want := fmt.Sprintf(`"message":"m%d"`, i); mt != websocket.TextMessage || tooLarge || !strings.Contains(string(data), want) {
					t.Errorf("message %d = %d %q %v, want text with %s", i, mt, data, tooLarge, want)
				}
			}
		})
	}
}

// TestFramesGrow: the buffer grows to maxReadBufferSize for a source whose
// reads fill it, and not for one whose reads leave room.
func TestFramesGrow(t *testing.T) {
	msg := text(`{"timestamp":1,"level":"INFO","message":"m","service":"s"}`)
	stream := bytes.Repeat(msg, 3*maxReadBufferSize/len(msg))
	for _, c := range []struct {
		name string
		src  io.Reader
		want int
	}{
		{"fast", bytes.NewReader(stream), maxReadBufferSize},
		{"slow", &chunkReader{r: bytes.NewReader(stream), n: 1000}, readBufferSize},
	} {
		t.Run(c.name, func(t *testing.T) {
			var f frames
			f.limit, f.hard = 1<<20, 1<<26
			f.reset(c.src)
			n := 0
			for {
				_, data, _, err := f.next()
				if err != nil {
					break
				}
				if !bytes.Equal(data, msg[2:]) {
					t.Fatalf("message %d = %q", n, data)
				}
				n++
			}
			if n != len(stream)/len(msg) || len(f.buf) != c.want {
				t.Errorf("%d messages, buffer %d bytes; want %d and %d", n, len(f.buf), len(stream)/len(msg), c.want)
			}
		})
	}
}

// chunkReader reads at most n bytes at a time.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

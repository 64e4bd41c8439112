package receiver

import (
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// frames reads a connection's WebSocket frames (RFC 6455, the client's
// side: the server's frames are unmasked) straight from the socket into
// one buffer, and hands out each single-frame message as a slice of that
// buffer. It is what gorilla's NextReader and a read into a reused buffer
// do, without a reader allocated and a copy made per message: under a fast
// source, that was a fifth of the processor's time.
//
// Gorilla still makes the connection and writes every frame we send
// (pongs, pings, closes); frames takes over the reading once the
// handshake left nothing in gorilla's own buffer (see stampedConn).
// frames answers what gorilla's reading answers: the same frames accepted,
// the same protocol errors (with the same close frame sent), the same
// *websocket.CloseError on a close frame or an unexpected end, and
// websocket.ErrReadLimit past the hard limit. FuzzFrames holds it to that.
type frames struct {
	src  io.Reader
	buf  []byte // buf[r:w] is read and not yet handed out
	r, w int
	full bool // the last read filled buf: grow it, up to maxBuf
	// maxBuf bounds the growth of buf for a fast source (frames larger
	// than it grow it further, up to the limit); 0 means
	// maxReadBufferSize.
	maxBuf int

	limit int   // a message longer than this is skipped (tooLarge)
	hard  int64 // a message longer than this drops the connection

	// Called, on the reading goroutine, for the control frames read: ping
	// and pong with their payload; close (ours to answer with a close
	// frame) with the frame's payload to send.
	ping, pong func(payload []byte) error
	close      func(payload []byte)

	// A message in fragments, assembled in msg.
	inMsg    bool
	msgType  int
	msgLen   int64 // payload bytes so far, skipped ones included
	msg      []byte
	tooLarge bool
}

// errUnexpectedEOF is what gorilla returns when the connection ends,
// mid-frame or between frames.
var errUnexpectedEOF = &websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: io.ErrUnexpectedEOF.Error()}

// reset starts a new connection read through src, keeping the buffers.
func (f *frames) reset(src io.Reader) {
	f.src, f.r, f.w, f.full = src, 0, 0, false
	f.inMsg, f.msgLen, f.msg, f.tooLarge = false, 0, f.msg[:0], false
	if f.buf == nil {
		f.buf = make([]byte, readBufferSize)
	}
	if f.maxBuf == 0 {
		f.maxBuf = maxReadBufferSize
	}
}

// fill makes at least n bytes available at buf[r:], reading as needed.
// Before reading it moves what is held (less than n bytes: part of a
// frame) to the front of buf, so that each read system call may fill the
// whole buffer. It grows buf only for a frame larger than it (at most the
// limit plus a header, since larger payloads are skipped, not held).
func (f *frames) fill(n int) error {
	if f.w-f.r >= n {
		return nil
	}
	switch {
	case n > len(f.buf):
		f.resize(max(n, min(2*len(f.buf), f.limit+maxHeader)))
	case f.full && len(f.buf) < f.maxBuf:
		f.resize(f.maxBuf)
	case f.r > 0:
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	for f.w-f.r < n {
		m, err := f.src.Read(f.buf[f.w:])
		f.full = f.w+m == len(f.buf)
		f.w += m
		if err != nil && f.w-f.r < n {
			if err == io.EOF {
				return errUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// resize moves what is held to the front of a new buffer of size n.
func (f *frames) resize(n int) {
	nb := make([]byte, n)
	f.w = copy(nb, f.buf[f.r:f.w])
	f.buf, f.r = nb, 0
}

// discard steps over n payload bytes, held or still to be read, without
// holding them.
func (f *frames) discard(n int64) error {
	for {
		held := int64(f.w - f.r)
		if n <= held {
			f.r += int(n)
			return nil
		}
		n -= held
		f.r, f.w = 0, 0
		if err := f.fill(1); err != nil {
			return err
		}
	}
}

// fail answers a protocol error as gorilla does: a close frame saying
// what was wrong, and the error.
func (f *frames) fail(msg string) error {
	data := websocket.FormatCloseMessage(websocket.CloseProtocolError, msg)
	f.close(data[:min(len(data), maxControlPayload)])
	return errors.New("websocket: " + msg)
}

const (
	maxControlPayload = 125
	maxHeader         = 10 // a server's frame header: no mask key
)

// next returns the next data message: its type, and its payload (valid
// until the next call), or tooLarge for one longer than the limit, whose
// bytes were skipped. It answers control frames on the way.
func (f *frames) next() (mt int, data []byte, tooLarge bool, err error) {
	for {
		if err := f.fill(2); err != nil {
			return 0, nil, false, err
		}
		b0, b1 := f.buf[f.r], f.buf[f.r+1]
		op, final := int(b0&0xf), b0&0x80 != 0
		n := int64(b1 & 0x7f)
		var problems []string
		if b0&0x70 != 0 { // no extension is ever negotiated
			for i, bit := range [3]byte{0x40, 0x20, 0x10} {
				if b0&bit != 0 {
					problems = append(problems, "RSV"+strconv.Itoa(i+1)+" set")
				}
			}
		}
		switch op {
		case websocket.CloseMessage, websocket.PingMessage, websocket.PongMessage:
			if n > maxControlPayload {
				problems = append(problems, "len > 125 for control")
			}
			if !final {
				problems = append(problems, "FIN not set on control")
			}
		case websocket.TextMessage, websocket.BinaryMessage:
			if f.inMsg {
				problems = append(problems, "data before FIN")
			}
		case 0: // continuation
			if !f.inMsg {
				problems = append(problems, "continuation after FIN")
			}
		default:
			problems = append(problems, "bad opcode "+strconv.Itoa(op))
		}
		if b1&0x80 != 0 {
			problems = append(problems, "bad MASK")
		}
		if problems != nil {
			return 0, nil, false, f.fail(strings.Join(problems, ", "))
		}
		head := 2
		switch n {
		case 126:
			if err := f.fill(4); err != nil {
				return 0, nil, false, err
			}
			n, head = int64(binary.BigEndian.Uint16(f.buf[f.r+2:])), 4
		case 127:
			if err := f.fill(10); err != nil {
				return 0, nil, false, err
			}
			n, head = int64(binary.BigEndian.Uint64(f.buf[f.r+2:])), 10
			if n < 0 {
				return 0, nil, false, websocket.ErrReadLimit
			}
		}

		if op >= websocket.CloseMessage {
			if err := f.fill(head + int(n)); err != nil {
				return 0, nil, false, err
			}
			payload := f.buf[f.r+head : f.r+head+int(n)]
			f.r += head + int(n)
			if err := f.control(op, payload); err != nil {
				return 0, nil, false, err
			}
			continue
		}

		if op != 0 { // the first frame of a message
			f.inMsg, f.msgType, f.msgLen, f.msg, f.tooLarge = true, op, 0, f.msg[:0], false
		}
		f.msgLen += n
		if f.msgLen < 0 { // overflowed: no close frame, as gorilla
			return 0, nil, false, websocket.ErrReadLimit
		}
		if f.msgLen > f.hard {
			f.close(websocket.FormatCloseMessage(websocket.CloseMessageTooBig, ""))
			return 0, nil, false, websocket.ErrReadLimit
		}
		f.inMsg = !final
		if f.msgLen > int64(f.limit) {
			f.tooLarge, f.msg = true, f.msg[:0]
		}
		switch {
		case f.tooLarge:
			f.r += head
			if err := f.discard(n); err != nil {
				return 0, nil, false, err
			}
		case final && op != 0: // the usual case: a message in one frame, handed out in place
			if err := f.fill(head + int(n)); err != nil {
				return 0, nil, false, err
			}
			data = f.buf[f.r+head : f.r+head+int(n)]
			f.r += head + int(n)
			return op, data, false, nil
		default:
			f.r += head
			for left := int(n); left > 0; {
				if err := f.fill(1); err != nil {
					return 0, nil, false, err
				}
				k := min(left, f.w-f.r)
				f.msg = append(f.msg, f.buf[f.r:f.r+k]...)
				f.r += k
				left -= k
			}
		}
		if final {
			if f.tooLarge {
				return f.msgType, nil, true, nil
			}
			return f.msgType, f.msg, false, nil
		}
	}
}

// control handles a ping, pong or close frame's payload.
func (f *frames) control(op int, payload []byte) error {
	switch op {
	case websocket.PingMessage:
		return f.ping(payload)
	case websocket.PongMessage:
		return f.pong(payload)
	}
	code, text := websocket.CloseNoStatusReceived, ""
	if len(payload) >= 2 {
		code = int(binary.BigEndian.Uint16(payload))
		if !validCloseCode(code) {
			return f.fail("bad close code " + strconv.Itoa(code))
		}
		text = string(payload[2:])
		if !utf8.ValidString(text) {
			return f.fail("invalid utf8 payload in close frame")
		}
	}
	f.close(websocket.FormatCloseMessage(code, ""))
	return &websocket.CloseError{Code: code, Text: text}
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 7.4, and IANA's registry as gorilla reads it).
func validCloseCode(code int) bool {
	switch code {
	case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseProtocolError,
		websocket.CloseUnsupportedData, websocket.CloseInvalidFramePayloadData, websocket.ClosePolicyViolation,
		websocket.CloseMessageTooBig, websocket.CloseMandatoryExtension, websocket.CloseInternalServerErr,
		websocket.CloseServiceRestart, websocket.CloseTryAgainLater:
		return true
	}
	return code >= 3000 && code <= 4999
}

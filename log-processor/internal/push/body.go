package push

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Why a body could not be read.
var (
	// ErrTooLarge: the body, decoded, is longer than the bound (413).
	ErrTooLarge = errors.New("body too large")
	// ErrEncoding: a Content-Encoding that is not read here (415).
	ErrEncoding = errors.New("unsupported Content-Encoding")
)

// chunk is how much a body read reserves at a time when its length is
// not known in advance (a compressed or chunked body).
const chunk = 64 << 10

// decoderState is what a decompressor holds besides the body: its window
// and buffers, reserved while it runs.
const decoderState = 64 << 10

// pooledMax is the largest buffer kept for reuse; larger ones (a rare
// large body) go back to the garbage collector.
const pooledMax = 64 << 10

// Buffers reuses body buffers of at most 64 KiB. The zero value is ready;
// safe for concurrent use.
type Buffers struct{ p sync.Pool }

// Get returns an empty buffer.
func (b *Buffers) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return (*v)[:0]
	}
	return make([]byte, 0, 4096)
}

// Put keeps buf for reuse, unless it is large.
func (b *Buffers) Put(buf []byte) {
	if cap(buf) > pooledMax || cap(buf) == 0 {
		return
	}
	buf = buf[:0]
	b.p.Put(&buf)
}

// ReadBody reads r's body into buf, decoded as its Content-Encoding says
// (gzip, x-gzip, zstd, or none), within limit bytes once decoded. Every
// byte is reserved from slot before it is read, so a request holds no
// memory its slot did not get: ErrBusy when the gate has no room (after
// its brief wait), ErrTooLarge past limit, ErrEncoding for an encoding not
// read here, or the decoder's error for a corrupt body.
func ReadBody(r *http.Request, limit int64, slot *Slot, buf []byte) ([]byte, error) {
	body := io.Reader(r.Body)
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	known := int64(-1) // the decoded length, when the request says it
	switch enc {
	case "", "identity":
		known = r.ContentLength
	case "gzip", "x-gzip":
		if !slot.Take(decoderState) {
			return buf, ErrBusy
		}
		zr, err := gzip.NewReader(io.LimitReader(body, limit+1))
		if err != nil {
			return buf, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		body = zr
	case "zstd":
		if !slot.Take(decoderState) {
			return buf, ErrBusy
		}
		// A frame may ask for a window of up to 8 MiB; bounding it
		// keeps a decoder's memory to what was reserved, roughly.
		zr, err := zstd.NewReader(io.LimitReader(body, limit+1), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(1<<20), zstd.WithDecoderMaxMemory(uint64(limit)+1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return buf, fmt.Errorf("zstd body: %w", err)
		}
		defer zr.Close()
		body = zr
	default:
		return buf, fmt.Errorf("%w %q: send gzip, zstd or none", ErrEncoding, enc)
	}
	if known > limit {
		return buf, ErrTooLarge
	}
	return ReadAll(body, limit, slot, buf, known)
}

// ReadAll reads rd to its end into buf, within limit bytes, reserving from
// slot before reading (known, when >= 0, is the length expected: reserved
// at once).
func ReadAll(rd io.Reader, limit int64, slot *Slot, buf []byte, known int64) ([]byte, error) {
	buf = buf[:0]
	if held := int64(cap(buf)); !slot.Take(held) { // the buffer itself, from a pool
		return buf, ErrBusy
	}
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, ErrTooLarge
			}
			grow := int64(max(cap(buf), chunk))
			if known >= 0 && int64(len(buf)) < known+1 {
				grow = known + 1 - int64(len(buf)) // the whole body at once, and a byte to see its end
			}
			grow = min(grow, limit+1-int64(len(buf)))
			if !slot.Take(grow) {
				return buf, ErrBusy
			}
			// The old buffer stays reserved until the request ends: it is
			// garbage, but not yet collected.
			nb := make([]byte, len(buf), int64(len(buf))+grow)
			copy(nb, buf)
			buf = nb
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, ErrTooLarge
		}
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return buf, ErrTooLarge
			}
			return buf, err
		}
	}
}

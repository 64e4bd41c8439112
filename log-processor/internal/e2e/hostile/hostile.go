// Package hostile is a log source that misbehaves on purpose, for tests:
// raw TCP servers that answer a WebSocket upgrade badly, and WebSocket
// servers that send what a test tells them. Each listens on 127.0.0.1:0 and
// is stopped, with every goroutine it started, by the test's cleanup. Only
// tests import it.
package hostile

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"
)

// MaxBytes bounds what any behaviour here writes to one connection.
const MaxBytes = 256 << 20

// Server is a running hostile source.
type Server struct {
	URL     string       // ws://127.0.0.1:port/ws/logs
	Written atomic.Int64 // bytes written by raw behaviours, over all connections
	Conns   atomic.Int32 // connections accepted

	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
}

// Raw starts a TCP server that hands each connection, after reading the
// upgrade request's headers, to serve. serve returns when done or when
// writing fails (the cleanup closes every connection).
func Raw(t testing.TB, serve func(s *Server, c net.Conn)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: "ws://" + ln.Addr().String() + "/ws/logs", ln: ln, open: map[net.Conn]struct{}{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.Conns.Add(1)
			ok := s.serveConn(c, func() {
				br := bufio.NewReader(c)
				for { // the request line and headers, up to the blank line
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" || line == "\n" {
						break
					}
				}
				serve(s, c)
			})
			if !ok {
				return
			}
		}
	})
	t.Cleanup(s.stop)
	return s
}

// serveConn runs fn for c in a goroutine the cleanup waits for, or closes c
// and reports false once the server is stopping. Both happen under mu, so
// that no goroutine starts after the cleanup began to wait.
func (s *Server) serveConn(c net.Conn, fn func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.open[c] = struct{}{}
	s.wg.Go(func() {
		defer s.untrack(c)
		fn()
	})
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.open, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) stop() {
	s.mu.Lock()
	s.closed = true
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

// write writes b, counting it, and reports whether the connection is still
// worth writing to.
func (s *Server) write(c net.Conn, b []byte) bool {
	n, err := c.Write(b)
	return err == nil && s.Written.Add(int64(n)) < MaxBytes
}

// EndlessHeaderLines answers the upgrade with a 101 status line and then
// header lines without end.
func EndlessHeaderLines(s *Server, c net.Conn) {
	if !s.write(c, []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")) {
		return
	}
	line := []byte("X-Padding: " + strings.Repeat("p", 1000) + "\r\n")
	for s.write(c, line) {
	}
}

// EndlessHeaderLine answers the upgrade with one header line that never
// ends.
func EndlessHeaderLine(s *Server, c net.Conn) {
	if !s.write(c, []byte("HTTP/1.1 101 Switching Protocols\r\nX-Padding: ")) {
		return
	}
	chunk := []byte(strings.Repeat("p", 64<<10))
	for s.write(c, chunk) {
	}
}

// Silent reads the upgrade request and never answers.
func Silent(s *Server, c net.Conn) {
	_, _ = c.Read(make([]byte, 1)) // until the peer or the cleanup closes it
}

// WS starts a WebSocket server that calls serve for each connection, with
// its number from 1. serve returns when done; the cleanup closes every
// connection and waits for serve to return.
func WS(t testing.TB, serve func(n int, c *websocket.Conn)) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{URL: "ws://" + ln.Addr().String() + "/ws/logs", ln: ln, open: map[net.Conn]struct{}{}}
	up := websocket.Upgrader{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		n := int(s.Conns.Add(1))
		s.serveConn(c.NetConn(), func() { serve(n, c) })
	})}
	s.wg.Go(func() { _ = srv.Serve(ln) })
	t.Cleanup(func() {
		s.mu.Lock()
		s.closed = true
		for c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		srv.Close()
		s.wg.Wait()
	})
	return s
}

// Hold keeps a WebSocket connection open, reading (so answering pings),
// until it closes.
func Hold(c *websocket.Conn) {
	for {
		if _, _, err := c.NextReader(); err != nil {
			return
		}
	}
}

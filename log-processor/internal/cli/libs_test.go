package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/poll"

	"github.com/gorilla/websocket"

	"github.com/logpipeline/log-processing-service/log-processor/internal/e2e/hostile"
)

// freshLines reads a library's sample file and moves every time in it to
// now, in the unit or format it had, so that the 7-day window accepts them.
func freshLines(t *testing.T, name string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "parser", "testdata", "libs", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Now()
	var out [][]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"time", "timestamp", "ts", "@timestamp"} {
			switch v := m[k].(type) {
			case json.Number:
				if len(v.String()) >= 13 {
					m[k] = now.UnixMilli()
				} else {
					m[k] = float64(now.UnixNano()) / 1e9
				}
			case string:
				m[k] = now.UTC().Format(time.RFC3339Nano)
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestRealLibraryOverWebSocket: pino's lines, served over WebSocket, are
// counted by outcome: with the default floor TRACE and DEBUG are
// below_min_level and the rest stored with pino's name as the service and
// the other fields as attributes; with --min-level debug DEBUG is stored
// too and found by /logs?level=debug.
func TestRealLibraryOverWebSocket(t *testing.T) {
	lines := freshLines(t, "pino@10.4.0.jsonl") // trace, debug, info, warn, error, fatal, info without a name
	for _, tc := range []struct {
		name          string
		flags         []string
		stored, below uint64
		debug         int // entries /logs?level=debug finds
	}{
		{"default floor", nil, 5, 2, 0},
		{"min-level debug", []string{"--min-level", "debug"}, 6, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := hostile.WS(t, func(n int, c *websocket.Conn) {
				if n == 1 {
					for _, l := range lines {
						if c.WriteMessage(websocket.TextMessage, l) != nil {
							return
						}
					}
				}
				hostile.Hold(c)
			})
			p := startProcessor(t, append([]string{"--urls", "web=" + src.URL}, tc.flags...)...)
			var s stats
			poll.Until(t, 20*time.Second, "every line", func() bool {
				s = stats1(t, p)
				return s.Received == uint64(len(lines)) && s.Stored == tc.stored
			})
			if s.BelowMin != tc.below || s.ParseErr != 0 || s.OK != tc.stored {
				t.Errorf("ok %d below_min_level %d parse_err %d; want %d, %d, 0", s.OK, s.BelowMin, s.ParseErr, tc.stored, tc.below)
			}
			var recs []struct {
				Level   string         `json:"level"`
				Service string         `json:"service"`
				Message string         `json:"message"`
				Source  string         `json:"source"`
				Attrs   map[string]any `json:"attrs"`
			}
			getJSON(t, p.api+"/logs?attr.status=200", &recs)
			if len(recs) != 1 || recs[0].Service != "checkout" || recs[0].Message != "request completed" ||
				recs[0].Source != "web" || recs[0].Attrs["hostname"] != "vm" {
				t.Errorf("/logs?attr.status=200 = %+v", recs)
			}
			getJSON(t, p.api+"/logs?service=web", &recs)
			if len(recs) != 1 || recs[0].Message != "no name given" {
				t.Errorf("entries without a name take the source's: %+v", recs)
			}
			getJSON(t, p.api+"/logs?level=debug", &recs)
			if len(recs) != tc.debug {
				t.Errorf("/logs?level=debug = %d entries, want %d", len(recs), tc.debug)
			}
			if err := p.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

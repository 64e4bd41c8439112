package tail

import (
	"strings"
	"testing"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

func TestHub(t *testing.T) {
	h := NewHub(Config{MaxClients: 2})
	h.Publish([]models.LogEntry{{Level: "INFO"}}) // nobody follows: nothing happens
	warn, err := h.Subscribe(storage.Filter{Level: "WARN"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	all, err := h.Subscribe(storage.Filter{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Subscribe(storage.Filter{}, 0); err != ErrTooMany {
		t.Fatalf("third client: %v, want ErrTooMany", err)
	}
	batch := make([]models.LogEntry, Buffer+76)
	for i := range batch {
		batch[i] = models.LogEntry{Level: "INFO", Message: "m"}
		if i%4 == 0 {
			batch[i].Level = "WARN"
		}
	}
	h.Publish(batch) // nobody reads: the buffers fill, the rest is missed
	if got := len(all.Entries()); got != Buffer || all.Missed() != 76 {
		t.Fatalf("all: %d waiting, %d missed; want %d and 76", got, all.Missed(), Buffer)
	}
	if got := len(warn.Entries()); got != (Buffer+76+3)/4 || warn.Missed() != 0 {
		t.Fatalf("warn: %d waiting, %d missed; want %d and 0", got, warn.Missed(), (Buffer+76+3)/4)
	}
	for e := range len(warn.Entries()) {
		got := <-warn.Entries()
		warn.Received(&got)
		if got.Level != "WARN" {
			t.Fatalf("entry %d of the WARN client is %s", e, got.Level)
		}
	}
	h.Unsubscribe(all)
	if h.Clients() != 1 || h.Bytes() != 0 {
		t.Fatalf("%d clients, %d bytes waiting after one left and the other read all, want 1 and 0", h.Clients(), h.Bytes())
	}
	if _, err := h.Subscribe(storage.Filter{}, 0); err != nil {
		t.Fatalf("room freed, but: %v", err)
	}
}

// TestHubBytes: large entries are bounded by bytes per client and in all,
// long before the entry bound.
func TestHubBytes(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		cfg                  Config
		clients, wantPerSubs int
	}{
		{"per client", Config{ClientBytes: 1 << 20, TotalBytes: 64 << 20}, 2, 15},
		{"in all", Config{ClientBytes: 1 << 20, TotalBytes: 1 << 20}, 2, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHub(tc.cfg)
			var subs []*Sub
			for range tc.clients {
				s, err := h.Subscribe(storage.Filter{}, 0)
				if err != nil {
					t.Fatal(err)
				}
				subs = append(subs, s)
			}
			big := models.LogEntry{Level: "INFO", Message: strings.Repeat("x", 64<<10)}
			batch := make([]models.LogEntry, 100)
			for i := range batch {
				batch[i] = big
			}
			h.Publish(batch)
			if h.Bytes() > tc.cfg.TotalBytes {
				t.Fatalf("%d bytes waiting, over the total bound %d", h.Bytes(), tc.cfg.TotalBytes)
			}
			waiting := 0
			for _, s := range subs {
				if got := int64(len(s.Entries())) * int64(big.Size()); got > tc.cfg.ClientBytes {
					t.Fatalf("a client holds %d bytes, over its bound %d", got, tc.cfg.ClientBytes)
				}
				waiting += len(s.Entries())
				if s.Missed() == 0 {
					t.Fatal("nothing missed")
				}
			}
			if waiting == 0 {
				t.Fatal("nothing delivered")
			}
			for _, s := range subs {
				h.Unsubscribe(s)
			}
			if h.Bytes() != 0 {
				t.Fatalf("%d bytes waiting after every client left", h.Bytes())
			}
		})
	}
}

func TestHubMaxRate(t *testing.T) {
	h := NewHub(Config{MaxClients: 1})
	s, err := h.Subscribe(storage.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(make([]models.LogEntry, 25)) // one window: 10 sent, 15 skipped
	if got := len(s.Entries()); got != 10 || s.Missed() != 15 {
		t.Fatalf("%d sent, %d missed; want 10 and 15", got, s.Missed())
	}
}

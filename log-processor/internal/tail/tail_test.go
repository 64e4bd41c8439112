package tail

import (
	"testing"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

func TestHub(t *testing.T) {
	h := NewHub(2)
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
		if got := <-warn.Entries(); got.Level != "WARN" {
			t.Fatalf("entry %d of the WARN client is %s", e, got.Level)
		}
	}
	h.Unsubscribe(all)
	if h.Clients() != 1 {
		t.Fatalf("%d clients after one left, want 1", h.Clients())
	}
	if _, err := h.Subscribe(storage.Filter{}, 0); err != nil {
		t.Fatalf("room freed, but: %v", err)
	}
}

func TestHubMaxRate(t *testing.T) {
	h := NewHub(1)
	s, err := h.Subscribe(storage.Filter{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	h.Publish(make([]models.LogEntry, 25)) // one window: 10 sent, 15 skipped
	if got := len(s.Entries()); got != 10 || s.Missed() != 15 {
		t.Fatalf("%d sent, %d missed; want 10 and 15", got, s.Missed())
	}
}

package budget

import (
	"sync"
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	for _, tc := range []struct {
		name  string
		max   int64
		takes []int64 // TryTake each in turn
		want  []bool
		used  int64
	}{
		{"within", 10, []int64{3, 3, 4}, []bool{true, true, true}, 10},
		{"over refuses and leaves nothing taken", 10, []int64{6, 5, 4}, []bool{true, false, true}, 10},
		{"larger than max", 10, []int64{11}, []bool{false}, 0},
		{"zero", 0, []int64{0, 1}, []bool{true, false}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := New(tc.max)
			for i, n := range tc.takes {
				if got := b.TryTake(n); got != tc.want[i] {
					t.Fatalf("TryTake(%d) #%d = %v, want %v", n, i, got, tc.want[i])
				}
			}
			if b.Used() != tc.used || b.Max() != tc.max {
				t.Fatalf("used %d of %d, want %d of %d", b.Used(), b.Max(), tc.used, tc.max)
			}
		})
	}
}

// TestTakeWaitsForGive: a taker waiting for room gets it when another
// gives back, and one whose deadline passes gets nothing.
func TestTakeWaitsForGive(t *testing.T) {
	b := New(10)
	if !b.TryTake(10) {
		t.Fatal("first take")
	}
	if b.TakeWithin(1, time.Millisecond) {
		t.Fatal("took with no room")
	}
	var wg sync.WaitGroup
	got := make(chan bool, 1)
	wg.Go(func() { got <- b.TakeWithin(5, time.Minute) })
	b.Give(5)
	wg.Wait()
	if !<-got || b.Used() != 10 {
		t.Fatalf("the waiting taker did not get the room given back (used %d)", b.Used())
	}
	b.Give(10)
	if b.Used() != 0 {
		t.Fatalf("used %d after giving all back", b.Used())
	}
}

// TestConcurrent: many takers and givers never pass the bound.
func TestConcurrent(t *testing.T) {
	b := New(100)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if b.TakeWithin(7, time.Second) {
					if u := b.Used(); u > 100 {
						t.Errorf("used %d, over 100", u)
					}
					b.Give(7)
				}
			}
		})
	}
	wg.Wait()
	if b.Used() != 0 {
		t.Fatalf("used %d at the end", b.Used())
	}
}

// Package poll is the tests' one way to wait for an outcome: Until polls a
// condition until it holds, within a timeout that scales on slow machines.
// It stands in for no synchronisation: it waits for an outcome that the
// test then asserts on.
package poll

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Interval is how often Until looks.
const Interval = 5 * time.Millisecond

// Scale multiplies every timeout: twice under the race detector, and times
// $LOGPROC_TEST_SLOWDOWN (say 3 on a busy machine) when set.
func Scale() float64 {
	f := float64(raceScale)
	if v, err := strconv.ParseFloat(os.Getenv("LOGPROC_TEST_SLOWDOWN"), 64); err == nil && v >= 1 {
		f *= v
	}
	return f
}

// Timeout returns d scaled (see Scale).
func Timeout(d time.Duration) time.Duration { return time.Duration(float64(d) * Scale()) }

// Until polls cond until it holds, failing the test after timeout (scaled)
// with what it waited for.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = Timeout(timeout)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(Interval)
	}
}

package parser

import (
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestDigits8: digits8 takes eight bytes exactly when all are ASCII
// digits, whichever byte is not; value8 reads them as strconv does.
func TestDigits8(t *testing.T) {
	check := func(b []byte) {
		t.Helper()
		x := binary.LittleEndian.Uint64(b)
		want := true
		for _, c := range b {
			want = want && isDigit(c)
		}
		if got := digits8(x); got != want {
			t.Fatalf("digits8(%q) = %v, want %v", b, got, want)
		}
		if want {
			n, _ := strconv.ParseUint(string(b), 10, 64)
			if got := value8(x); got != n {
				t.Fatalf("value8(%q) = %d, want %d", b, got, n)
			}
		}
	}
	for pos := range 8 {
		for c := range 256 {
			b := []byte("90817263")
			b[pos] = byte(c)
			check(b)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		b := []byte(strconv.FormatUint(rng.Uint64N(1e8)+1e8, 10)[1:])
		check(b)
	}
	check([]byte("00000000"))
	check([]byte("99999999"))
}

// FuzzNumberMillis: a number of up to 19 digits is read as strconv reads
// it, in the unit its magnitude gives; a fraction as decimalMillis reads
// it, however many digits lead it.
func FuzzNumberMillis(f *testing.F) {
	for _, s := range []string{"1764300000000", "1764300000", "1764300000000000", "1764300000000000000", "12345678", "0", "9999999999999999999"} {
		f.Add(s, false)
	}
	for _, s := range []string{"1764300000000.5", "1764300000.1239", "17643000.5", "1764300000e3"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, nanos bool) {
		got, r := numberMillis([]byte(s), nanos)
		if s == "" || s[0] == '-' {
			return // out of range or invalid before any digit is read
		}
		if !isAllDigits([]byte(s)) {
			// A fraction or an exponent: read whole, however many digits
			// lead it.
			if ms, ok := decimalMillis([]byte(s), nanos); ok && (r != OK || got != ms) {
				t.Fatalf("numberMillis(%q, %v) = %d, %v; want %d", s, nanos, got, r, ms)
			}
			return
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if len(s) > 19 || err != nil || s[0] == '+' || s[0] == '-' {
			return // other paths, other tests
		}
		want := n / 1e6
		switch {
		case nanos:
		case n < maxSeconds:
			want = n * 1000
		case n < maxMillis:
			want = n
		case n < maxMicros:
			want = n / 1000
		}
		if r != OK || got != want {
			t.Fatalf("numberMillis(%q, %v) = %d, %v; want %d", s, nanos, got, r, want)
		}
	})
}

package parser

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"
)

// Magnitudes that decide the unit of a numeric time: below 1e11 it is
// seconds (until the year 5138), below 1e14 milliseconds, below 1e17
// microseconds, and nanoseconds above.
const (
	maxSeconds = 1e11
	maxMillis  = 1e14
	maxMicros  = 1e17
)

// numberMillis converts a JSON number (or a numeric string's contents) to
// Unix milliseconds, its unit decided by magnitude, or by nanos.
func numberMillis(b []byte, nanos bool) (int64, Reason) {
	if len(b) == 0 {
		return 0, InvalidTimestamp
	}
	if b[0] == '-' {
		return 0, TimestampOutOfRange
	}
	var n int64
	integer := len(b) <= 19
	rest := b
	if len(b) >= 8 { // the usual: 10 to 19 digits, the first 8 at once
		if x := binary.LittleEndian.Uint64(b); digits8(x) {
			n, rest = int64(value8(x)), b[8:]
		}
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			integer = false
			break
		}
		n = n*10 + int64(c-'0')
	}
	if integer {
		switch {
		case nanos:
			return n / 1e6, OK
		case n < maxSeconds:
			return n * 1000, OK
		case n < maxMillis:
			return n, OK
		case n < maxMicros:
			return n / 1000, OK
		}
		return n / 1e6, OK
	}
	if isAllDigits(b) { // more than 19 digits
		return 0, TimestampOutOfRange
	}
	if ms, ok := decimalMillis(b, nanos); ok {
		return ms, OK
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, InvalidTimestamp
	}
	if f < 0 || f >= 1e19 {
		return 0, TimestampOutOfRange
	}
	switch {
	case nanos:
		f /= 1e6
	case f < maxSeconds:
		f *= 1000
	case f < maxMillis:
	case f < maxMicros:
		f /= 1000
	default:
		f /= 1e6
	}
	return int64(f), OK
}

// timeLayouts are the textual times accepted: RFC 3339 and the ISO 8601
// forms logging libraries write, with any zone or, without one, UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999 -0700 MST",
}

// textMillis parses a textual time, or a numeric string, to Unix ms.
func textMillis(b []byte, nanos bool) (int64, Reason) {
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' && len(b) <= 25 {
		numeric := true
		for _, c := range b {
			if (c < '0' || c > '9') && c != '.' {
				numeric = false
				break
			}
		}
		if numeric {
			return numberMillis(b, nanos)
		}
	}
	if len(b) < 10 || len(b) > 40 {
		return 0, InvalidTimestamp
	}
	s := string(b)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), OK
		}
	}
	return 0, InvalidTimestamp
}

func isAllDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// decimalMillis reads the usual fractional time, digits.digits (zap's and
// GELF's float seconds), exactly and without allocating. ok is false for
// any other shape (exponents, over-long parts), which ParseFloat then reads.
func decimalMillis(b []byte, nanos bool) (int64, bool) {
	dot := -1
	for i, c := range b {
		if c == '.' {
			dot = i
			break
		}
	}
	if dot < 1 || dot > 18 || dot == len(b)-1 || nanos {
		return 0, false
	}
	var n int64
	for _, c := range b[:dot] {
		n = n*10 + int64(c-'0')
	}
	frac := b[dot+1:]
	for _, c := range frac {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	switch {
	case n < maxSeconds: // seconds: the first three fraction digits are ms
		ms := n * 1000
		for i, scale := 0, int64(100); i < 3 && i < len(frac); i, scale = i+1, scale/10 {
			ms += int64(frac[i]-'0') * scale
		}
		return ms, true
	case n < maxMillis:
		return n, true
	case n < maxMicros:
		return n / 1000, true
	}
	return n / 1e6, true
}

// digits8 reports whether the eight bytes of x (little-endian) are all
// ASCII digits: each byte's high nibble is 3, and stays 3 with 6 added.
func digits8(x uint64) bool {
	const highs, threes, sixes = 0xf0f0f0f0f0f0f0f0, 0x3030303030303030, 0x0606060606060606
	return x&highs == threes && (x+sixes)&highs == threes
}

// value8 is the number eight ASCII digits spell, the first (lowest
// address) the most significant: each pair, then each group of four,
// combined by one multiplication (SWAR).
func value8(x uint64) uint64 {
	x -= 0x3030303030303030
	x = x*10 + x>>8 // each 16-bit lane's low byte: two digits
	return ((x&0x000000ff000000ff)*(100+1000000<<32) + (x>>16&0x000000ff000000ff)*(1+10000<<32)) >> 32
}

package parser

import (
	"fmt"
	"strings"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Level is a normalised severity. The zero value means "not set": as
// Parser.MinLevel it stands for LevelInfo.
type Level int8

// Levels, lowest first. TRACE and DEBUG are not among the generator's levels:
// below the floor they are counted as below_min_level; DEBUG is stored
// when the floor is lowered to it.
const (
	LevelTrace Level = iota + 1
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
)

var levelNames = [...]string{LevelTrace: "TRACE", LevelDebug: models.LevelDebug, LevelInfo: models.LevelInfo,
	LevelWarn: models.LevelWarn, LevelError: models.LevelError}

// String returns the level's stored name: TRACE, DEBUG, INFO, WARN or ERROR.
func (l Level) String() string {
	if l >= LevelTrace && l <= LevelError {
		return levelNames[l]
	}
	return "UNSET"
}

// ParseMinLevel reads a --min-level value: debug, info, warn or error, in
// any case.
func ParseMinLevel(s string) (Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return LevelDebug, nil
	case "info":
		return LevelInfo, nil
	case "warn", "warning":
		return LevelWarn, nil
	case "error":
		return LevelError, nil
	}
	return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
}

// levelWords maps level names, lower-cased, to levels: the names of slog,
// zap, zerolog, logrus, pino, bunyan, winston, syslog and OpenTelemetry.
var levelWords = map[string]Level{
	"trace": LevelTrace, "silly": LevelTrace, "finest": LevelTrace,
	"debug": LevelDebug, "verbose": LevelDebug, "http": LevelDebug, "fine": LevelDebug,
	"info": LevelInfo, "information": LevelInfo, "informational": LevelInfo, "notice": LevelInfo,
	"warn": LevelWarn, "warning": LevelWarn,
	"error": LevelError, "err": LevelError, "fatal": LevelError, "critical": LevelError, "crit": LevelError,
	"panic": LevelError, "dpanic": LevelError, "alert": LevelError, "emerg": LevelError, "emergency": LevelError,
	"severe": LevelError,
}

// levelWord maps a level name, in any case, to a level. It also reads
// slog's offset levels (INFO+2, WARN-1, ERROR+4, DEBUG-2) by the band
// their value falls in: below DEBUG is TRACE, then DEBUG -4, INFO 0,
// WARN 4 and ERROR 8.
func levelWord(b []byte) (Level, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	// The generator's levels and the commonest names first, without the map.
	switch {
	case equalFold(b, "INFO"):
		return LevelInfo, true
	case equalFold(b, "WARN"):
		return LevelWarn, true
	case equalFold(b, "ERROR"):
		return LevelError, true
	case equalFold(b, "DEBUG"):
		return LevelDebug, true
	}
	var low [16]byte
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	w := low[:len(b)]
	if l, ok := levelWords[string(w)]; ok { // no allocation: a map index by string(bytes)
		return l, true
	}
	// OpenTelemetry's short names: TRACE2, INFO4, FATAL3...
	if n := len(w); n > 1 && '1' <= w[n-1] && w[n-1] <= '4' {
		switch string(w[:n-1]) {
		case "trace":
			return LevelTrace, true
		case "debug":
			return LevelDebug, true
		case "info":
			return LevelInfo, true
		case "warn":
			return LevelWarn, true
		case "error", "fatal":
			return LevelError, true
		}
	}
	// slog offsets: NAME+N or NAME-N.
	i := 0
	for i < len(w) && 'a' <= w[i] && w[i] <= 'z' {
		i++
	}
	if i == 0 || i+1 >= len(w) || (w[i] != '+' && w[i] != '-') {
		return 0, false
	}
	var base int
	switch string(w[:i]) {
	case "debug":
		base = -4
	case "info":
		base = 0
	case "warn":
		base = 4
	case "error":
		base = 8
	default:
		return 0, false
	}
	n := 0
	for _, c := range w[i+1:] {
		if c < '0' || c > '9' || n > 1000 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if w[i] == '-' {
		n = -n
	}
	switch v := base + n; {
	case v < -4:
		return LevelTrace, true
	case v < 0:
		return LevelDebug, true
	case v < 4:
		return LevelInfo, true
	case v < 8:
		return LevelWarn, true
	}
	return LevelError, true
}

// levelNumber maps a numeric level by the convention its key and message
// imply: OpenTelemetry severity numbers (1-24), GELF's syslog numbers (0-7),
// or pino's and bunyan's (10-60).
func levelNumber(b []byte, severityNum, gelf bool) (Level, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' || n > 1000 {
			return 0, false // negative, fractional or huge
		}
		n = n*10 + int(c-'0')
	}
	switch {
	case severityNum:
		switch {
		case n < 1 || n > 24:
			return 0, false
		case n <= 4:
			return LevelTrace, true
		case n <= 8:
			return LevelDebug, true
		case n <= 12:
			return LevelInfo, true
		case n <= 16:
			return LevelWarn, true
		}
		return LevelError, true
	case gelf:
		switch {
		case n > 7:
			return 0, false
		case n <= 3:
			return LevelError, true
		case n == 4:
			return LevelWarn, true
		case n <= 6:
			return LevelInfo, true
		}
		return LevelDebug, true
	}
	switch {
	case n < 10 || n > 60:
		return 0, false
	case n < 20:
		return LevelTrace, true
	case n < 30:
		return LevelDebug, true
	case n < 40:
		return LevelInfo, true
	case n < 50:
		return LevelWarn, true
	}
	return LevelError, true
}

// equalFold reports whether b equals the upper-case ASCII word upper,
// ignoring ASCII case.
func equalFold(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

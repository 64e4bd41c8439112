package parser

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Line is a log line that is text rather than JSON, with what its
// protocol says about it (a Loki stream's labels, say).
type Line struct {
	Message string
	Time    int64  // Unix milliseconds
	Level   Level  // 0: the parser's DefaultLevel, counted as such
	Service string // "": the parser's DefaultService
	// Attrs is kept as given: the caller has made it a JSON object
	// within the bound, of valid UTF-8 (Check tells).
	Attrs           models.Attrs
	TraceID, SpanID string
}

// Text makes the entry of a text line. The parser's rules apply as to a
// JSON log's fields: the bounds, UTF-8 and no NUL, the time window, the
// level floor. The entry holds l's strings as they are.
func (p *Parser) Text(l Line, now time.Time) (models.LogEntry, Reason) {
	r := OK
	if l.Level == 0 {
		l.Level, r = p.DefaultLevel, DefaultLevel
		if l.Level == 0 {
			l.Level = LevelInfo
		}
	}
	if !p.Keeps(l.Level) {
		return models.LogEntry{}, BelowMinLevel
	}
	if l.Service == "" {
		l.Service = p.DefaultService
	}
	switch {
	case l.Message == "":
		return models.LogEntry{}, MissingMessage
	case l.Service == "":
		return models.LogEntry{}, MissingService
	}
	for _, f := range [...]struct {
		v    string
		role int
	}{{l.Message, rMessage}, {l.Service, rService}, {l.TraceID, rTrace}, {l.SpanID, rSpan}} {
		switch {
		case len(f.v) > p.limit(f.role):
			return models.LogEntry{}, FieldTooLong
		case !utf8.ValidString(f.v):
			return models.LogEntry{}, InvalidUTF8
		case strings.IndexByte(f.v, 0) >= 0:
			return models.LogEntry{}, NulCharacter
		}
	}
	skew := p.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if d := skew.Milliseconds(); l.Time < now.UnixMilli()-d || l.Time > now.UnixMilli()+d {
		return models.LogEntry{}, TimestampOutOfRange
	}
	return models.LogEntry{Timestamp: l.Time, Level: l.Level.String(), Message: l.Message, Service: l.Service,
		TraceID: l.TraceID, SpanID: l.SpanID, Attrs: l.Attrs}, r
}

// Keeps reports whether entries at level l are stored: at or above
// MinLevel.
func (p *Parser) Keeps(l Level) bool {
	floor := p.MinLevel
	if floor == 0 {
		floor = LevelInfo
	}
	return l >= floor
}

// LevelNamed maps a level's name, in any case, to a level, as Parse reads
// a level member's text (info, Warning, ERROR4, INFO+2, ...).
func LevelNamed(name string) (Level, bool) { return levelWord([]byte(name)) }

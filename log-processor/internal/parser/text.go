package parser

import (
	"bytes"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Text makes the entry of a log line that is text rather than JSON, from
// what its protocol says about it (a Loki stream's labels, say): the line
// is the message, at time ms (Unix milliseconds), at level (0: the
// parser's DefaultLevel, counted as such), of service (empty: the
// parser's DefaultService). The parser's rules apply as to a JSON log's
// fields: the bounds, UTF-8 and no NUL, the time window, the level floor.
// attrs is kept as given: the caller has made it a JSON object within the
// bound (Check tells). The entry holds a copy of line.
func (p *Parser) Text(line []byte, ms int64, level Level, service string, attrs models.Attrs, now time.Time) (models.LogEntry, Reason) {
	r := OK
	if level == 0 {
		level, r = p.DefaultLevel, DefaultLevel
		if level == 0 {
			level = LevelInfo
		}
	}
	if !p.Keeps(level) {
		return models.LogEntry{}, BelowMinLevel
	}
	if service == "" {
		service = p.DefaultService
	}
	switch {
	case len(line) == 0:
		return models.LogEntry{}, MissingMessage
	case service == "":
		return models.LogEntry{}, MissingService
	case len(line) > p.limit(rMessage) || len(service) > p.limit(rService):
		return models.LogEntry{}, FieldTooLong
	case !utf8.Valid(line) || !utf8.ValidString(service):
		return models.LogEntry{}, InvalidUTF8
	case bytes.IndexByte(line, 0) >= 0 || strings.IndexByte(service, 0) >= 0:
		return models.LogEntry{}, NulCharacter
	}
	skew := p.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if d := skew.Milliseconds(); ms < now.UnixMilli()-d || ms > now.UnixMilli()+d {
		return models.LogEntry{}, TimestampOutOfRange
	}
	return models.LogEntry{Timestamp: ms, Level: level.String(), Message: string(line), Service: service, Attrs: attrs}, r
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

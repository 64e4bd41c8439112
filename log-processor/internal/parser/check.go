package parser

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Check applies the parser's rules to an entry that did not come from
// Parse (one decoded from the message bus, which anyone who can publish
// on its subject could have written): a stored level, a message and a
// service, the field bounds, the time window around now, UTF-8 and no NUL,
// and attributes that are a JSON object every backend can store. It
// returns OK, or the rejection reason.
func (p *Parser) Check(e *models.LogEntry, now time.Time) Reason {
	if models.StoredLevelIndex(e.Level) < 0 {
		return InvalidLevel
	}
	switch {
	case e.Message == "":
		return MissingMessage
	case e.Service == "":
		return MissingService
	}
	skew := p.MaxSkew
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	if d := skew.Milliseconds(); e.Timestamp < now.UnixMilli()-d || e.Timestamp > now.UnixMilli()+d {
		return TimestampOutOfRange
	}
	fields := [...]struct {
		v    string
		role int
	}{{e.Message, rMessage}, {e.Service, rService}, {e.Component, rComponent}, {e.TraceID, rTrace}, {e.SpanID, rSpan}, {e.ParentID, rParent}}
	for _, f := range fields {
		switch {
		case len(f.v) > p.limit(f.role):
			return FieldTooLong
		case !utf8.ValidString(f.v):
			return InvalidUTF8
		case strings.IndexByte(f.v, 0) >= 0:
			return NulCharacter
		}
	}
	if e.Attrs != "" {
		max := p.MaxAttrsBytes
		if max <= 0 {
			max = DefaultMaxAttrsBytes
		}
		a := []byte(e.Attrs)
		switch {
		case len(a) > max+len(truncatedMark)+2:
			return FieldTooLong
		case !utf8.Valid(a):
			return InvalidUTF8
		case a[0] != '{' || !json.Valid(a) || unstorable(a):
			return InvalidField
		}
	}
	return OK
}

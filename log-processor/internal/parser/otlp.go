package parser

import (
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// ParseEach parses a frame for which Parse said Multi: an OpenTelemetry
// logs export (OTLP/JSON, its members in lowerCamelCase or snake_case).
// It calls fn with each record's outcome, in order, until fn returns
// false: each record is parsed as a single record with its resource
// (whose service.name names the service) and its scope (kept as an
// attribute). It walks the frame in place and holds one record at a time,
// so an export of many records costs no memory in proportion to their
// number. A frame that is not an export gives one InvalidJSON.
func (p *Parser) ParseEach(data []byte, now time.Time, fn func(e models.LogEntry, r Reason) bool) {
	s := scan{cursor: cursor{data: data}}
	s.ws()
	end := len(data)
	for end > 0 && data[end-1] != '}' {
		end--
	}
	if s.i >= len(data) || data[s.i] != '{' || end <= s.i {
		fn(models.LogEntry{}, InvalidJSON)
		return
	}
	top := value{start: s.i, end: end, kind: '{'}
	rls := s.member2(top, "resourceLogs", "resource_logs")
	if rls.kind != '[' {
		fn(models.LogEntry{}, InvalidJSON)
		return
	}
	var frame []byte
	more := true
	s.elements(rls, func(rl value) bool {
		if rl.kind != '{' {
			return true
		}
		resource := s.member2(rl, "resource", "resource")
		s.elements(s.member2(rl, "scopeLogs", "scope_logs"), func(sl value) bool {
			if sl.kind != '{' {
				return true
			}
			scope := s.member2(sl, "scope", "scope")
			s.elements(s.member2(sl, "logRecords", "log_records"), func(rec value) bool {
				if rec.kind != '{' {
					more = fn(models.LogEntry{}, NotObject)
					return more
				}
				// {"resource":...,"scope":..., then the record's own members.
				frame = append(frame[:0], '{')
				if resource.kind == '{' {
					frame = append(append(append(frame, `"resource":`...), data[resource.start:resource.end]...), ',')
				}
				if scope.kind == '{' {
					frame = append(append(append(frame, `"scope":`...), data[scope.start:scope.end]...), ',')
				}
				inner := data[rec.start+1 : rec.end-1]
				if isBlank(inner) && frame[len(frame)-1] == ',' {
					frame = frame[:len(frame)-1]
				}
				frame = append(append(frame, inner...), '}')
				e, r := p.Parse(frame, now)
				if r == Multi {
					r = InvalidField // an export nested in a record
				}
				more = fn(e, r)
				return more
			})
			return more
		})
		return more
	})
}

// member2 returns the value of the member of obj named camel or snake.
func (s *scan) member2(obj value, camel, snake string) value {
	var out value
	s.members(obj, func(k []byte, kesc bool, v value) bool {
		if keyIs(k, kesc, camel) || keyIs(k, kesc, snake) {
			out = v
			return false
		}
		return true
	})
	return out
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

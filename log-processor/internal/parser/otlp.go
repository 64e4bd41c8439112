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
	rls := s.memberOpen(top, "resourceLogs", "resource_logs")
	if rls.kind != '[' {
		fn(models.LogEntry{}, InvalidJSON)
		return
	}
	var frame []byte
	more := true
	s.objects(rls, func(rl value) (int, bool) {
		resource := s.member2(rl, "resource", "resource")
		sls := s.memberOpen(rl, "scopeLogs", "scope_logs")
		if sls.kind != '[' {
			return -1, true
		}
		after := s.objects(sls, func(sl value) (int, bool) {
			scope := s.member2(sl, "scope", "scope")
			recs := s.memberOpen(sl, "logRecords", "log_records")
			if recs.kind != '[' {
				return -1, true
			}
			after := s.elements(recs, func(rec value) bool {
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
			return after, more
		})
		return after, more
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

// memberOpen is member2 for an array that is only to be walked by
// elements: found, it is not skipped, and its end is
// obj's, since a walk stops at its closing bracket. It saves a pass over
// what is most of an export: its scopeLogs and logRecords.
func (s *scan) memberOpen(obj value, camel, snake string) value {
	sub := cursor{data: s.data[:obj.end], i: obj.start + 1}
	for {
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] != '"' {
			return value{}
		}
		ks, ke, kesc, ok := sub.str()
		if !ok {
			return value{}
		}
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] != ':' {
			return value{}
		}
		sub.i++
		sub.ws()
		if k := sub.data[ks:ke]; keyIs(k, kesc, camel) || keyIs(k, kesc, snake) {
			if sub.i < len(sub.data) && sub.data[sub.i] == '[' {
				return value{start: sub.i, end: obj.end, kind: '['}
			}
			return value{}
		}
		if !sub.skipValid() {
			return value{}
		}
		sub.ws()
		if sub.i >= len(sub.data) || sub.data[sub.i] != ',' {
			return value{}
		}
		sub.i++
	}
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

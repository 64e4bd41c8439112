package parser

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// maxRecords bounds the records read from one export frame.
const maxRecords = 100_000

// Result is one record's outcome in a frame of many.
type Result struct {
	Entry  models.LogEntry
	Reason Reason
}

// otlpExport is an OpenTelemetry logs export (OTLP/JSON): resources, each
// with scopes, each with records.
type otlpExport struct {
	ResourceLogs []struct {
		Resource  json.RawMessage `json:"resource"`
		ScopeLogs []struct {
			Scope      json.RawMessage   `json:"scope"`
			LogRecords []json.RawMessage `json:"logRecords"`
		} `json:"scopeLogs"`
	} `json:"resourceLogs"`
}

// ParseAll parses a frame for which Parse said Multi: an OpenTelemetry
// export. Each record becomes its own entry, parsed as a single record
// with its resource (whose service.name names the service) and its scope
// (kept as an attribute). It appends the outcomes to dst and returns it. A
// frame that is not a readable export gives one InvalidJSON.
func (p *Parser) ParseAll(dst []Result, data []byte, now time.Time) []Result {
	var ex otlpExport
	if err := json.Unmarshal(data, &ex); err != nil {
		return append(dst, Result{Reason: InvalidJSON})
	}
	n := 0
	var frame []byte
	for _, rl := range ex.ResourceLogs {
		for _, sl := range rl.ScopeLogs {
			for _, rec := range sl.LogRecords {
				if n++; n > maxRecords {
					return dst
				}
				rec = bytes.TrimSpace(rec)
				if len(rec) < 2 || rec[0] != '{' {
					dst = append(dst, Result{Reason: NotObject})
					continue
				}
				// {"resource":...,"scope":..., then the record's own members.
				frame = append(frame[:0], '{')
				if len(rl.Resource) > 0 && rl.Resource[0] == '{' {
					frame = append(append(append(frame, `"resource":`...), rl.Resource...), ',')
				}
				if len(sl.Scope) > 0 && sl.Scope[0] == '{' {
					frame = append(append(append(frame, `"scope":`...), sl.Scope...), ',')
				}
				body := bytes.TrimSpace(rec[1:])
				if len(body) > 0 && body[0] == '}' && frame[len(frame)-1] == ',' {
					frame = frame[:len(frame)-1]
				}
				frame = append(frame, body...)
				e, r := p.Parse(frame, now)
				if r == Multi {
					r = InvalidField // an export nested in a record
				}
				dst = append(dst, Result{Entry: e, Reason: r})
			}
		}
	}
	return dst
}

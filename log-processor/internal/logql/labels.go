package logql

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// StreamLabels are the labels every entry has (component only when set):
// what its stream is, and what GET /loki/api/v1/labels lists.
var StreamLabels = []string{"component", "level", "service", "source"}

// maxAttrDepth bounds how deep nested attributes are flattened into
// labels.
const maxAttrDepth = 4

// row is one entry being evaluated, with the labels beyond its fields
// decoded once, when first asked for.
type row struct {
	e      *models.LogEntry
	extra  map[string]string // attributes and logfmt pairs, by label name
	loaded bool
}

// isField reports whether name is the label of one of an entry's fields.
func isField(name string) bool {
	switch name {
	case "service", "level", "source", "component", "trace_id", "span_id", "parent_id":
		return true
	}
	return false
}

// field returns the label name of e's own fields.
func field(e *models.LogEntry, name string) (string, bool) {
	switch name {
	case "service":
		return e.Service, true
	case "level":
		return e.Level, true
	case "source":
		return e.Source, true
	case "component":
		return e.Component, true
	case "trace_id":
		return e.TraceID, true
	case "span_id":
		return e.SpanID, true
	case "parent_id":
		return e.ParentID, true
	}
	return "", false
}

// get returns the label name: a field, else an attribute (see attrLabels).
func (r *row) get(name string) string {
	if v, ok := field(r.e, name); ok {
		return v
	}
	r.load()
	return r.extra[name]
}

func (r *row) load() {
	if !r.loaded {
		r.loaded = true
		r.extra = attrLabels(r.e.Attrs, r.extra)
	}
}

// logfmt adds the key=value pairs of the message as labels, where no
// label of that name is there already.
func (r *row) logfmt() {
	r.load()
	for k, v := range logfmtPairs(r.e.Message) {
		name := labelName(k)
		if isField(name) {
			name += "_extracted"
		}
		if _, ok := r.extra[name]; !ok && name != "" {
			if r.extra == nil {
				r.extra = map[string]string{}
			}
			r.extra[name] = v
		}
	}
}

// labels returns the labels that name the row's stream or series: its
// stream labels, and with all its other labels too (after a parser, as
// Loki groups by what a parser extracts).
func (r *row) labels(all bool) map[string]string {
	m := make(map[string]string, 4)
	for _, n := range StreamLabels {
		if v, _ := field(r.e, n); v != "" {
			m[n] = v
		}
	}
	if !all {
		return m
	}
	for _, n := range []string{"trace_id", "span_id", "parent_id"} {
		if v, _ := field(r.e, n); v != "" {
			m[n] = v
		}
	}
	r.load()
	for k, v := range r.extra {
		m[k] = v
	}
	return m
}

// attrLabels adds the attributes, a JSON object, to m as labels: nested
// objects flattened with "_" between the names, other values as their
// JSON text (strings as themselves), names made valid label names (other
// characters become "_"), and "_extracted" added to a name that is one of
// the entry's fields, as Loki does.
func attrLabels(attrs models.Attrs, m map[string]string) map[string]string {
	if attrs == "" {
		return m
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal([]byte(attrs), &obj) != nil {
		return m
	}
	if m == nil {
		m = make(map[string]string, len(obj))
	}
	flatten("", obj, m, 0)
	return m
}

func flatten(prefix string, obj map[string]json.RawMessage, m map[string]string, depth int) {
	for k, raw := range obj {
		name := labelName(prefix + k)
		if name == "" {
			continue
		}
		if len(raw) > 0 && raw[0] == '{' && depth < maxAttrDepth {
			var sub map[string]json.RawMessage
			if json.Unmarshal(raw, &sub) == nil {
				flatten(name+"_", sub, m, depth+1)
				continue
			}
		}
		if prefix == "" && isField(name) {
			name += "_extracted"
		}
		v := string(raw)
		var s string
		if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
			v = s
		}
		m[name] = v
	}
}

// labelName makes s a valid label name: letters, digits and "_", not
// starting with a digit.
func labelName(s string) string {
	var b strings.Builder
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c >= '0' && c <= '9' && i > 0:
			b.WriteRune(c)
		case c >= '0' && c <= '9':
			b.WriteString("_")
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// logfmtPairs yields the key=value pairs of a logfmt line: values bare or
// double-quoted with Go escapes; a key alone has the value "".
func logfmtPairs(s string) func(yield func(k, v string) bool) {
	return func(yield func(k, v string) bool) {
		for s != "" {
			s = strings.TrimLeft(s, " \t")
			i := strings.IndexAny(s, "= \t")
			if i < 0 {
				i = len(s)
			}
			key := s[:i]
			s = s[i:]
			val := ""
			if strings.HasPrefix(s, "=") {
				s = s[1:]
				if strings.HasPrefix(s, `"`) {
					end := 1
					for end < len(s) && s[end] != '"' {
						if s[end] == '\\' {
							end++
						}
						end++
					}
					end = min(end+1, len(s))
					if v, err := strconv.Unquote(s[:end]); err == nil {
						val = v
					} else {
						val = strings.Trim(s[:end], `"`)
					}
					s = s[end:]
				} else {
					j := strings.IndexAny(s, " \t")
					if j < 0 {
						j = len(s)
					}
					val, s = s[:j], s[j:]
				}
			}
			if key != "" && !yield(key, val) {
				return
			}
		}
	}
}

// Key is a canonical text of labels, to group by.
func Key(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0xff)
		b.WriteString(m[n])
		b.WriteByte(0xfe)
	}
	return b.String()
}

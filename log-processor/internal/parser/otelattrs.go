package parser

import "strconv"

// zeroTime reports whether a time value is OTLP's 0 (unset), as a number
// or a numeric string.
func zeroTime(b []byte) bool { return string(b) == "0" }

// keepOTel keeps the members of an OpenTelemetry resource or scope as
// attributes, one by one, under the prefix "resource." or "scope.": the
// resource's attributes (but service.name, which is the entry's service),
// and the scope's name, version and attributes.
func (s *scan) keepOTel(cont int, obj value) {
	prefix := uint8(pResource)
	if cont == cScope {
		prefix = pScope
	}
	s.members(obj, func(k []byte, kesc bool, v value) bool {
		switch {
		case keyIs(k, kesc, "attributes") && v.kind == '[':
			s.elements(v, func(el value) bool {
				if el.kind != '{' {
					return true
				}
				key, val := s.otelPair(el)
				if key.kind != '"' || val.kind == 0 || (cont == cResource && keyIs(s.data[key.start:key.end], key.escaped, "service.name")) {
					return true
				}
				ks, ke := key.rawSpan()
				vs, ve := val.rawSpan()
				s.keepPrefixed(prefix, ks, ke, vs, ve)
				return true
			})
		case cont == cScope && (keyIs(k, kesc, "name") || keyIs(k, kesc, "version")) && v.kind == '"' && v.end > v.start:
			ks := s.offset(k) - 1 // the key's opening quote
			s.keepPrefixed(prefix, ks, ks+len(k)+2, v.start-1, v.end+1)
		}
		return true
	})
}

// plainAnyValue appends an OpenTelemetry AnyValue (OTLP/JSON) as plain
// JSON: a string, number or boolean as itself, an array or key/value list
// as a JSON array or object, bytes as a base64 string. ok is false when it
// is none of these.
func (s *scan) plainAnyValue(dst []byte, v value) ([]byte, bool) {
	if v.kind != '{' {
		return dst, false
	}
	ok := false
	s.members(v, func(k []byte, kesc bool, mv value) bool {
		switch {
		case (keyIs(k, kesc, "stringValue") || keyIs(k, kesc, "string_value")) && mv.kind == '"':
			dst, ok = append(dst, s.data[mv.start-1:mv.end+1]...), true
		case (keyIs(k, kesc, "boolValue") || keyIs(k, kesc, "bool_value")) && (mv.kind == 't' || mv.kind == 'f'):
			dst, ok = append(dst, s.data[mv.start:mv.end]...), true
		case (keyIs(k, kesc, "intValue") || keyIs(k, kesc, "int_value")) && (numberKind(mv.kind) || mv.kind == '"'):
			n, err := strconv.ParseInt(string(s.data[mv.start:mv.end]), 10, 64)
			if err == nil {
				dst, ok = strconv.AppendInt(dst, n, 10), true
			}
		case (keyIs(k, kesc, "doubleValue") || keyIs(k, kesc, "double_value")) && numberKind(mv.kind):
			dst, ok = append(dst, s.data[mv.start:mv.end]...), true
		case (keyIs(k, kesc, "bytesValue") || keyIs(k, kesc, "bytes_value")) && mv.kind == '"':
			dst, ok = append(dst, s.data[mv.start-1:mv.end+1]...), true // base64 already, in OTLP/JSON
		case (keyIs(k, kesc, "arrayValue") || keyIs(k, kesc, "array_value")) && mv.kind == '{':
			dst, ok = append(dst, '['), true
			first := true
			vals := s.findValue(mv, "values")
			s.elements(vals, func(el value) bool {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				var good bool
				if dst, good = s.plainAnyValue(dst, el); !good {
					dst = append(dst, "null"...)
				}
				return true
			})
			dst = append(dst, ']')
		case (keyIs(k, kesc, "kvlistValue") || keyIs(k, kesc, "kvlist_value")) && mv.kind == '{':
			dst, ok = append(dst, '{'), true
			first := true
			vals := s.findValue(mv, "values")
			s.elements(vals, func(el value) bool {
				key, _ := s.otelPair(el)
				raw := s.findValue(el, "value")
				if key.kind != '"' {
					return true
				}
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst = append(append(dst, s.data[key.start-1:key.end+1]...), ':')
				var good bool
				if dst, good = s.plainAnyValue(dst, raw); !good {
					dst = append(dst, "null"...)
				}
				return true
			})
			dst = append(dst, '}')
		default:
			return true
		}
		return false
	})
	return dst, ok
}

// offset returns where b, a subslice of the frame, starts in it.
func (s *scan) offset(b []byte) int { return cap(s.data) - cap(b) }

// numberKind reports whether a value read by cursor.value (kind: its first
// byte) is a number.
func numberKind(k byte) bool { return k == '-' || k == '0' || ('1' <= k && k <= '9') }

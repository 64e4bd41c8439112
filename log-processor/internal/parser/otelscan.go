package parser

// The scan's own walk of an OpenTelemetry record's body and attribute
// list: it validates them as skip would and, in the same pass, finds the
// body's text and keeps each attribute {"key": "k", "value":
// {"stringValue": "v"}} as "k": "v". Depths follow skip's: the list is a
// member's value (2), its elements 3, their members' values 4, an
// AnyValue's members' values 5 (the body's, 3).

// attributes reads the list at s.i, which starts with '[', as the value of
// the member "attributes" that began at vs.
func (s *scan) attributes(vs int) Reason {
	if s.conts[cAttributes].kind != 0 {
		return DuplicateField
	}
	for more := s.open(']'); more; {
		var r Reason
		if s.data[s.i] == '{' {
			r = s.attrPair()
		} else {
			r = s.skip(3)
		}
		if r != OK {
			return r
		}
		if more, r = s.next(']'); r != OK {
			return r
		}
	}
	s.conts[cAttributes] = value{start: vs, end: s.i, kind: '['}
	s.anyCont = true
	return OK
}

// attrPair reads one element, an object, and keeps its key and value.
func (s *scan) attrPair() Reason {
	var key, val value
	for more := s.open('}'); more; {
		isKey, isValue, ok := s.pairKey()
		if !ok {
			return InvalidJSON
		}
		var r Reason
		switch {
		case isKey && s.data[s.i] == '"':
			st, en, esc, ok := s.str()
			key, r = value{start: st, end: en, kind: '"', escaped: esc}, okIf(ok)
		case isValue && s.data[s.i] == '{':
			val, r = s.anyValue("")
		default:
			r = s.skip(4)
		}
		if r != OK {
			return r
		}
		if more, r = s.next('}'); r != OK {
			return r
		}
	}
	if key.kind == '"' && val.kind != 0 {
		ks, ke := key.rawSpan()
		vs, ve := val.rawSpan()
		s.keepRaw(ks, ke, vs, ve)
	}
	return OK
}

// pairKey reads the key and colon of a member of a key/value element and
// says whether it is "key" or "value". The compact form writers use is
// matched as a whole, without reading the key as a string.
func (s *scan) pairKey() (isKey, isValue, ok bool) {
	switch {
	case s.literal(`"key":`):
		isKey = true
	case s.literal(`"value":`):
		isValue = true
	default:
		k, kesc, ok := s.key()
		return ok && keyIs(k, kesc, "key"), ok && keyIs(k, kesc, "value"), ok
	}
	s.ws()
	return isKey, isValue, s.i < len(s.data)
}

// anyValue reads an AnyValue object ({"intValue": "5"}) and returns the
// value of its member named want, or of its first member when want is "".
func (s *scan) anyValue(want string) (value, Reason) {
	var out value
	for more := s.open('}'); more; {
		var match bool
		if s.literal(`"stringValue":`) { // the usual kind, matched whole as in pairKey
			s.ws()
			if s.i >= len(s.data) {
				return value{}, InvalidJSON
			}
			match = want == "" || want == "stringValue"
		} else {
			k, kesc, ok := s.key()
			if !ok {
				return value{}, InvalidJSON
			}
			match = want == "" || keyIs(k, kesc, want) || (want == "stringValue" && keyIs(k, kesc, "string_value"))
		}
		vs := s.i
		var v value
		if s.data[vs] == '"' {
			st, en, esc, ok := s.str()
			if !ok {
				return value{}, InvalidJSON
			}
			v = value{start: st, end: en, kind: '"', escaped: esc}
		} else {
			if r := s.skip(5); r != OK {
				return value{}, r
			}
			v = value{start: vs, end: s.i, kind: s.data[vs]}
		}
		if out.kind == 0 && match {
			out = v
		}
		var r Reason
		if more, r = s.next('}'); r != OK {
			return value{}, r
		}
	}
	return out, OK
}

// body reads an OpenTelemetry record's body, an AnyValue object at s.i,
// and records its string value, if it has one, as the cBody container.
func (s *scan) body() Reason {
	if s.conts[cBody].kind != 0 {
		return DuplicateField
	}
	vs := s.i
	v, r := s.anyValue("stringValue")
	if r != OK {
		return r
	}
	if v.kind != '"' {
		v = value{start: vs, end: s.i, kind: '{'} // present, but not text
	}
	s.conts[cBody] = v
	s.anyCont = true
	return OK
}

// open steps over the opening byte of an object or array and reports
// whether a member or element follows; if not (the container is empty) it
// steps over the closer too. After true, s.i is at a byte of the frame.
func (s *cursor) open(closer byte) bool {
	s.i++
	s.ws()
	if s.i < len(s.data) && s.data[s.i] == closer {
		s.i++
		return false
	}
	return s.i < len(s.data)
}

// key reads an object member's key and colon, leaving s.i at the value.
func (s *cursor) key() (k []byte, escaped, ok bool) {
	if s.i >= len(s.data) || s.data[s.i] != '"' {
		return nil, false, false
	}
	ks, ke, escaped, ok := s.str()
	if !ok {
		return nil, false, false
	}
	s.ws()
	if s.i >= len(s.data) || s.data[s.i] != ':' {
		return nil, false, false
	}
	s.i++
	s.ws()
	if s.i >= len(s.data) {
		return nil, false, false
	}
	return s.data[ks:ke], escaped, true
}

// next steps over the comma before another member or element (true), or
// over the closer (false).
func (s *cursor) next(closer byte) (more bool, r Reason) {
	s.ws()
	if s.i >= len(s.data) {
		return false, InvalidJSON
	}
	switch s.data[s.i] {
	case ',':
		s.i++
		s.ws()
		return s.i < len(s.data), okIf(s.i < len(s.data))
	case closer:
		s.i++
		return false, OK
	}
	return false, InvalidJSON
}

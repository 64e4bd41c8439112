package loki

import (
	"errors"
	"fmt"
	"strconv"
)

// pair is a label or a structured metadata entry: a name and a value, in
// the request's memory (valid while the request is read).
type pair struct{ name, value []byte }

// errLabels: a stream's labels are not a label set.
var errLabels = errors.New("malformed labels")

// parseLabels reads a stream's labels in Prometheus's text form,
// {name="value", other="value"}, as Loki's clients write them (Go's
// quoting rules for values; names plain, or quoted as Prometheus 3 allows;
// a trailing comma allowed), appending them to dst. A value without
// escapes is not copied.
func parseLabels(s []byte, dst []pair) ([]pair, error) {
	i := skipSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return dst, fmt.Errorf("%w: %q does not start with {", errLabels, clip(s))
	}
	i = skipSpace(s, i+1)
	for i < len(s) && s[i] != '}' {
		var p pair
		var err error
		if s[i] == '"' {
			p.name, i, err = quoted(s, i)
		} else {
			start := i
			for i < len(s) && (s[i] == '_' || 'a' <= s[i]|0x20 && s[i]|0x20 <= 'z' || (i > start && '0' <= s[i] && s[i] <= '9')) {
				i++
			}
			p.name = s[start:i]
		}
		if err != nil {
			return dst, err
		}
		if len(p.name) == 0 {
			return dst, fmt.Errorf("%w: a label name is missing at byte %d of %q", errLabels, i, clip(s))
		}
		i = skipSpace(s, i)
		if i >= len(s) || s[i] != '=' {
			return dst, fmt.Errorf("%w: want = after %q in %q", errLabels, p.name, clip(s))
		}
		i = skipSpace(s, i+1)
		if p.value, i, err = quoted(s, i); err != nil {
			return dst, err
		}
		for _, q := range dst {
			if string(q.name) == string(p.name) {
				return dst, fmt.Errorf("%w: duplicate label name %q", errLabels, p.name)
			}
		}
		dst = append(dst, p)
		i = skipSpace(s, i)
		if i < len(s) && s[i] == ',' {
			i = skipSpace(s, i+1)
		} else if i < len(s) && s[i] != '}' {
			return dst, fmt.Errorf("%w: want , or } after %q in %q", errLabels, p.name, clip(s))
		}
	}
	if i >= len(s) || skipSpace(s, i+1) != len(s) {
		return dst, fmt.Errorf("%w: %q does not end with }", errLabels, clip(s))
	}
	return dst, nil
}

// quoted reads the quoted string at s[i] ("..." with Go's escapes, or a
// raw `...`) and returns its text and the index after it.
func quoted(s []byte, i int) ([]byte, int, error) {
	if i >= len(s) || (s[i] != '"' && s[i] != '`') {
		return nil, i, fmt.Errorf("%w: want a quoted value at byte %d of %q", errLabels, i, clip(s))
	}
	q := s[i]
	escaped := false
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == q:
			if !escaped {
				return s[i+1 : j], j + 1, nil
			}
			v, err := strconv.Unquote(string(s[i : j+1]))
			if err != nil {
				return nil, j, fmt.Errorf("%w: %q: %v", errLabels, s[i:j+1], err)
			}
			return []byte(v), j + 1, nil
		case c == '\\' && q == '"':
			escaped = true
			j++ // the escaped byte cannot end the string
		case c == '\n' && q == '"':
			return nil, j, fmt.Errorf("%w: a newline inside a quoted value of %q", errLabels, clip(s))
		}
	}
	return nil, len(s), fmt.Errorf("%w: an unterminated quoted value in %q", errLabels, clip(s))
}

func skipSpace(s []byte, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// clip shortens what an error quotes.
func clip(s []byte) []byte {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

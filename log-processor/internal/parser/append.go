package parser

import "unicode/utf8"

// AppendString appends s as a JSON string: control characters, quotes and
// backslashes escaped, bytes that are not UTF-8 as U+FFFD, the rest as
// they are. It is how the ingest protocols write what they pass on as
// JSON (attributes, OTLP/JSON frames, bulk answers).
func AppendString[T ~string | ~[]byte](dst []byte, s T) []byte {
	return append(AppendStringBody(append(dst, '"'), s), '"')
}

// AppendStringBody is AppendString without the quotes.
func AppendStringBody[T ~string | ~[]byte](dst []byte, s T) []byte {
	const hexDigits = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		var head [utf8.UTFMax]byte
		n := copy(head[:], s[i:])
		r, size := utf8.DecodeRune(head[:n])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

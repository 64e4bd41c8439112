package logql

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// kind is a token's kind.
type kind int

const (
	tEOF kind = iota
	tIdent
	tString
	tNumber
	tDuration
	tOp // punctuation and operators: { } ( ) [ ] , = != =~ !~ |= |~ | > >= < <= == + - * /
)

// token is one lexeme and where it starts (a byte offset).
type token struct {
	kind kind
	text string // for tString, the value unquoted
	pos  int
}

func (t token) String() string {
	if t.kind == tEOF {
		return "end of query"
	}
	return strconv.Quote(t.text)
}

// ops are the operators, longest first so that "!=" is not read as "!".
var ops = []string{"!=", "!~", "=~", "|=", "|~", ">=", "<=", "==", "{", "}", "(", ")", "[", "]", ",", "=", "|", ">", "<", "+", "-", "*", "/"}

// lex splits q into tokens, ending with tEOF.
func lex(q string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#': // a comment, to the end of the line
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '"' || c == '`':
			s, n, err := lexString(q[i:])
			if err != nil {
				return nil, &Error{Pos: i, Msg: err.Error()}
			}
			toks = append(toks, token{tString, s, i})
			i += n
		case isDigit(c) || (c == '.' && i+1 < len(q) && isDigit(q[i+1])):
			j := i
			for j < len(q) && (isDigit(q[j]) || q[j] == '.' || isLetter(q[j])) {
				j++
			}
			text := q[i:j]
			k := tNumber
			if strings.IndexFunc(text, func(r rune) bool { return r < utf8.RuneSelf && isLetter(byte(r)) }) >= 0 {
				k = tDuration
			}
			toks = append(toks, token{k, text, i})
			i = j
		case isLetter(c) || c == '_':
			j := i
			for j < len(q) && (isLetter(q[j]) || isDigit(q[j]) || q[j] == '_') {
				j++
			}
			toks = append(toks, token{tIdent, q[i:j], i})
			i = j
		default:
			op := ""
			for _, o := range ops {
				if strings.HasPrefix(q[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				r, _ := utf8.DecodeRuneInString(q[i:])
				return nil, &Error{Pos: i, Msg: fmt.Sprintf("unexpected character %q", r)}
			}
			toks = append(toks, token{tOp, op, i})
			i += len(op)
		}
	}
	return append(toks, token{tEOF, "", len(q)}), nil
}

// lexString reads the quoted string at the start of s: "..." with Go's
// escapes, or `...` as it stands. It returns the value and the bytes read.
func lexString(s string) (string, int, error) {
	quote := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == quote:
			if quote == '`' {
				return s[1:i], i + 1, nil
			}
			v, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", 0, fmt.Errorf("invalid string %s: %v", s[:i+1], err)
			}
			return v, i + 1, nil
		case s[i] == '\\' && quote == '"':
			i++ // the escaped character cannot end the string
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

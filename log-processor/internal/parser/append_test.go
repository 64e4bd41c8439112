package parser

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"plain":             `"plain"`,
		"q\"b\\n\nr\rt\t":   `"q\"b\\n\nr\rt\t"`,
		"\x00\x1f":          `"\u0000\u001f"`,
		"é ✓ 😀":             `"é ✓ 😀"`,
		"bad \xff byte":     `"bad \ufffd byte"`,
		"cut \xe2\x9c":      `"cut \ufffd\ufffd"`,
		"<html> & 'quotes'": `"<html> & 'quotes'"`,
	} {
		if got := string(AppendString(nil, in)); got != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
		if got := string(AppendString([]byte("x"), []byte(in))); got != "x"+want {
			t.Errorf("AppendString(bytes %q) = %s", in, got)
		}
	}
}

// FuzzAppendString: what AppendString writes is a JSON string, and for
// UTF-8 input it decodes back to the input.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff", "é\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q: %s is no JSON string: %v", s, out, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("%q came back as %q", s, back)
		}
	})
}

package parser

import (
	"strings"
	"testing"
)

// TestShape: frames parsed one after another with one Shape come out as
// Parse has them alone, whether their keys lie as the frame before's or
// not: the same keys in another order, keys that differ in a byte or in
// length, a key that is a prefix of the one before, escaped, non-ASCII
// and long keys, more members than a Shape holds, flawed frames between.
func TestShape(t *testing.T) {
	var many strings.Builder
	many.WriteString(`{"level":"warn","msg":"m","service":"s"`)
	for i := range 40 {
		many.WriteString(`,"k` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `":1`)
	}
	many.WriteString(`}`)
	frames := []string{
		valid,
		valid,
		strings.Replace(valid, `"level":"INFO"`, `"lvl":"INFO"`, 1),
		strings.Replace(valid, `"level":"INFO"`, `"levelname":"INFO"`, 1),
		strings.Replace(valid, `"level":"INFO"`, `"Level":"INFO"`, 1),
		strings.Replace(valid, `"service"`, `"servicf"`, 1),
		strings.Replace(valid, `"timestamp"`, `"timestamq"`, 1),
		strings.Replace(valid, `"service"`, `"serv\u0069ce"`, 1),
		strings.Replace(valid, `"service"`, `"sérvice"`, 1),
		strings.Replace(valid, `"service"`, `"sérvice"`, 1),
		strings.Replace(valid, `"service"`, "\"s\xffrvice\"", 1),
		strings.Replace(valid, `"service"`, "\"s\xffrvice\"", 1),
		strings.Replace(valid, `"component"`, `"a_key_of_twenty_bytes"`, 1),
		`{"message":"m","service":"s","timestamp":1764300000000,"level":"ERROR"}`,
		`{"message":"m","service":"s","timestamp":1764300000000,"level":"ERROR"}`,
		`{"message":"m","service":"s","timestamp":1764300000000,"level":"ERROR"`,
		`{"message" :"m", "service":"s","timestamp" : 1764300000000,"level":"ERROR"}`,
		`{"message":"m","service":"s","timestamp":1764300000000,"level":"ERROR","x":{"level":"x"}}`,
		many.String(),
		many.String(),
		`{"m":1}`,
		valid,
		strings.Replace(valid, `"level"`, `"level" `, 1),
		strings.Replace(valid, `"timestamp":`, `"timestamp":"2025-11-28T03:20:00Z","t":`, 1),
	}
	var sh Shape
	var p Parser
	for i, f := range frames {
		e1, r1 := p.ParseWith(&sh, []byte(f), now)
		e2, r2 := p.Parse([]byte(f), now)
		if e1 != e2 || r1 != r2 {
			t.Errorf("frame %d %q: with the shape %v %+v, alone %v %+v", i, f, r1, e1, r2, e2)
		}
	}
}

// FuzzShape: a frame parsed with a Shape, after its own shape or after a
// generator frame's, comes out as Parse has it alone.
func FuzzShape(f *testing.F) {
	for _, tc := range parseCases {
		if len(tc.in) <= 4<<10 {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var p Parser
		e, r := p.Parse(in, now)
		for _, before := range [][]byte{in, []byte(valid)} {
			var sh Shape
			p.ParseWith(&sh, before, now)
			for range 2 {
				if e1, r1 := p.ParseWith(&sh, in, now); e1 != e || r1 != r {
					t.Fatalf("%q after %q: with the shape %v %+v, alone %v %+v", in, before, r1, e1, r, e)
				}
			}
		}
	})
}

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
	frames = append(frames, messyFrames...)
	frames = append(frames, valid, `{"m":1}`, messyFrames[0], `{"timestamp":1764300000000,"level":"ERROR","message":"m"}`)
	for _, p := range []Parser{{}, {MaxAttrsBytes: 24}} {
		var sh Shape
		for i, f := range frames {
			e1, r1 := p.ParseWith(&sh, []byte(f), now)
			e2, r2 := p.Parse([]byte(f), now)
			if e1 != e2 || r1 != r2 {
				t.Errorf("MaxAttrsBytes %d, frame %d %q: with the shape %v %+v, alone %v %+v", p.MaxAttrsBytes, i, f, r1, e1, r2, e2)
			}
		}
	}
}

// messyFrames leave every part of a Shape's scan set: attributes past
// those held inline, containers, GELF's markers, an inner log, an
// OpenTelemetry export.
var messyFrames = []string{
	`{"version":"1.1","short_message":"s","host":"h","level":3,"resource":{"attributes":[{"key":"k","value":{"stringValue":"v"}}]},` +
		`"a1":1,"a2":2,"a3":3,"a4":4,"a5":5,"a6":6,"a7":7,"a8":8,"a9":9,"a10":10,"a11":11,"a12":12,"a13":13,"a14":"\u00e9"}`,
	`{"log":"{\"level\":\"warn\",\"msg\":\"inner\",\"k\":1}\n","stream":"stdout","kubernetes":{"pod":"p"}}`,
	`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"b"}}]}]}]}`,
	`{"severityNumber":9,"body":{"stringValue":"b"},"attributes":[{"key":"k","value":{"intValue":"1"}}],"traceId":"0102030405060708090a0b0c0d0e0f10"}`,
}

// FuzzShape: a frame parsed with a Shape, after its own shape, a generator
// frame's or a messy one's, comes out as Parse has it alone.
func FuzzShape(f *testing.F) {
	for _, tc := range parseCases {
		if len(tc.in) <= 4<<10 {
			f.Add([]byte(tc.in))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var p Parser
		e, r := p.Parse(in, now)
		befores := [][]byte{in, []byte(valid)}
		for _, m := range messyFrames {
			befores = append(befores, []byte(m))
		}
		for _, before := range befores {
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

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

// TestLayout: a Shape notes a simple frame's layout, and a frame laid out
// the same is scanned by it; a frame that breaks it is scanned as usual,
// and no layout is noted for the next layoutCool frames; frames that are
// not simple note none. Each frame comes out as Parse has it alone.
func TestLayout(t *testing.T) {
	other := `{"level":"WARN","message":"m","timestamp":1764300000000}`
	var p Parser
	var sh Shape
	parse := func(f string, wantN int) {
		t.Helper()
		e1, r1 := p.ParseWith(&sh, []byte(f), now)
		if e2, r2 := p.Parse([]byte(f), now); e1 != e2 || r1 != r2 {
			t.Fatalf("%q: with the shape %v %+v, alone %v %+v", f, r1, e1, r2, e2)
		}
		if sh.n != wantN {
			t.Fatalf("%q: layout of %d members, want %d", f, sh.n, wantN)
		}
	}
	parse(valid, 8)
	parse(valid, 8)
	parse(strings.Replace(valid, `"INFO"`, `"ERROR"`, 1), 8)
	// Escapes are no matter.
	parse(strings.Replace(valid, `"message":"request`, `"message":"caf\u00e9 \"request`, 1), 8)
	// A frame that breaks the layout: its scan and the next
	// layoutCool-1 note none.
	parse(other, 0)
	for range layoutCool - 1 {
		parse(valid, 0)
	}
	parse(valid, 8)
	// Whitespace after the object is no matter.
	parse(valid+"\n", 8)
	// Frames laid out almost as the layout, each flawed at a separator or a
	// value: scanned as usual, and found flawed.
	for _, f := range []string{
		strings.Replace(valid, `,"level"`, `;"level"`, 1),
		strings.Replace(valid, `,"level"`, `,,"level"`, 1),
		strings.TrimSuffix(valid, "}") + "]",
		valid + "}",
		strings.Replace(valid, `":1764300000000`, `":x764300000000`, 1),
		strings.Replace(valid, `":1764300000000`, `":"1764300000000"`, 1),
		strings.Replace(valid, `"level":"INFO"`, `"level":12345`, 1),
		strings.Replace(valid, `"level":"INFO"`, `"level":I"`, 1),
		strings.Replace(valid, `"timestamp"`, `"timestamq"`, 1), // a head that differs in its second word
		strings.Replace(valid, `"component"`, `"componenx"`, 1),
		strings.Replace(valid, `"component":"http"`, `"component":"ht\x"`, 1),
	} {
		sh = Shape{}
		parse(valid, 8)
		parse(f, 0)
	}
	// Frames that are not simple note no layout. Each ends in a member
	// long enough that every key before it is read whole (see shortKey).
	const tail = `,"service":"a-service-with-a-long-name"}`
	for _, f := range []string{
		`{"timestamp": 1764300000000,"level":"INFO","message":"m"` + tail,      // whitespace
		`{"timestamp":1764300000000,"level":"INFO","message":"m","x":1` + tail, // an attribute
		`{"timestamp":1764300000000,"level":"INFO","msg":"m","message":"n"` + tail,
		`{"timestamp":1764300000000,"level":"INFO","message":"m","msg":"n"` + tail, // a role twice, either way
		`{"timestamp":1764300000000,"level":"INFO","message":null` + tail,          // neither string nor number
		`{"timestamp":1764300000000,"level":"INFO","short_message":"m"` + tail,     // a GELF marker
		`{"timeUnixNano":"1764300000000000000","severityText":"INFO","body":"m"` + tail,
	} {
		sh = Shape{}
		parse(f, 0)
		parse(f, 0)
	}
	// A head of 16 bytes is no layout's: the value after it could be past
	// the frame's end.
	long := `{"timestamp":1764300000000,"message":"m","service":"a-service-with-a-long-name","severity_text":"INFO"}`
	sh = Shape{}
	parse(long, 0)
	parse(strings.TrimSuffix(long, `"INFO"}`), 0)
	// An OpenTelemetry time of "0" means none, so a layout that holds one
	// of another value would take it: none is noted.
	sh = Shape{}
	parse(`{"timeUnixNano":"1764300000000000000","severityText":"INFO","message":"m"`+tail, 0)
	parse(`{"timeUnixNano":"0","severityText":"INFO","message":"m"`+tail, 0)
}

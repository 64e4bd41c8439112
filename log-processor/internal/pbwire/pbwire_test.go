package pbwire

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestFields(t *testing.T) {
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 300)
	msg = protowire.AppendTag(msg, 2, protowire.BytesType)
	msg = protowire.AppendString(msg, "abc")
	msg = protowire.AppendTag(msg, 3, protowire.Fixed64Type)
	msg = protowire.AppendFixed64(msg, 7)
	msg = protowire.AppendTag(msg, 4, protowire.Fixed32Type)
	msg = protowire.AppendFixed32(msg, 9)
	var got []any
	if err := Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if typ == protowire.BytesType {
			got = append(got, num, string(v))
		} else {
			got = append(got, num, x)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []any{protowire.Number(1), uint64(300), protowire.Number(2), "abc", protowire.Number(3), uint64(7), protowire.Number(4), uint64(9)}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
	for _, bad := range [][]byte{{0x0a, 0x05, 'a'}, {0x08}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if err := Fields(bad, func(protowire.Number, protowire.Type, []byte, uint64) error { return nil }); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v, want ErrMalformed", bad, err)
		}
	}
	stop := errors.New("stop")
	if err := Fields(msg, func(protowire.Number, protowire.Type, []byte, uint64) error { return stop }); err != stop {
		t.Errorf("fn's error: %v", err)
	}
}

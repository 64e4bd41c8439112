// Package pbwire walks protocol buffer messages field by field, for the
// decoders of the ingest protocols: they read the few fields they need in
// place, with nothing allocated, instead of unmarshalling message types.
package pbwire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed: a message that is not well-formed protobuf.
var ErrMalformed = errors.New("malformed protobuf")

// Fields calls fn with each field of msg: its number, its wire type, and
// its bytes (a length-delimited field) or its value (a varint, fixed32 or
// fixed64). Groups are skipped. A malformed message is ErrMalformed, after
// the fields before the flaw were passed; an error of fn ends the walk and
// is returned as it is.
func Fields(msg []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		msg = msg[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(msg)
		case protowire.Fixed32Type:
			var x32 uint32
			x32, n = protowire.ConsumeFixed32(msg)
			x = uint64(x32)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(msg)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(msg)
		default:
			n = protowire.ConsumeFieldValue(num, typ, msg)
		}
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		msg = msg[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pbwire"
)

// Field numbers of the OTLP logs messages (opentelemetry-proto, v1).
const (
	fRequestResourceLogs = 1 // ExportLogsServiceRequest.resource_logs

	fResourceLogsResource  = 1 // ResourceLogs.resource
	fResourceLogsScopeLogs = 2 // ResourceLogs.scope_logs

	fResourceAttributes = 1 // Resource.attributes

	fScopeLogsScope   = 1 // ScopeLogs.scope
	fScopeLogsRecords = 2 // ScopeLogs.log_records

	fScopeName       = 1 // InstrumentationScope.name
	fScopeVersion    = 2
	fScopeAttributes = 3

	fRecordTime         = 1  // LogRecord.time_unix_nano, fixed64
	fRecordSeverity     = 2  // severity_number, enum
	fRecordSeverityText = 3  // severity_text
	fRecordBody         = 5  // body, AnyValue
	fRecordAttributes   = 6  // attributes, KeyValue
	fRecordFlags        = 8  // flags, fixed32
	fRecordTraceID      = 9  // trace_id, bytes
	fRecordSpanID       = 10 // span_id, bytes
	fRecordObserved     = 11 // observed_time_unix_nano, fixed64
	fRecordEventName    = 12 // event_name

	fKeyValueKey   = 1 // KeyValue.key
	fKeyValueValue = 2 // KeyValue.value, AnyValue

	fAnyString = 1 // AnyValue.string_value
	fAnyBool   = 2
	fAnyInt    = 3
	fAnyDouble = 4
	fAnyArray  = 5 // ArrayValue{values = 1}
	fAnyKVList = 6 // KeyValueList{values = 1}
	fAnyBytes  = 7
)

// maxDepth bounds the nesting of AnyValues (arrays and maps in arrays and
// maps), as the JSON parser bounds nesting.
const maxDepth = 24

// errMalformed: the request is not a well-formed ExportLogsServiceRequest.
var errMalformed = pbwire.ErrMalformed

// Records walks msg, an ExportLogsServiceRequest in protobuf wire format,
// and calls fn with each log record as a record of OTLP/JSON (the record's
// members with its resource's and scope's, as the JSON parser reads them),
// in order, until fn returns false. The frame passed to fn lives in buf and
// is valid until fn returns; Records returns buf for reuse. It allocates
// nothing in proportion to the records: each is written into buf in turn.
// A request that is not well-formed protobuf is an error, and so is a
// value nested deeper than maxDepth; records before it have been passed.
func Records(msg, buf []byte, fn func(frame []byte) bool) ([]byte, error) {
	var rerr error
	more := true
	err := pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fRequestResourceLogs || typ != protowire.BytesType || !more {
			return nil
		}
		buf, more, rerr = resourceLogs(v, buf, fn)
		return rerr
	})
	return buf, err
}

// resourceLogs walks one ResourceLogs.
func resourceLogs(msg, buf []byte, fn func([]byte) bool) ([]byte, bool, error) {
	var resource []byte // the last resource, as protobuf
	if err := pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == fResourceLogsResource && typ == protowire.BytesType {
			resource = v
		}
		return nil
	}); err != nil {
		return buf, false, err
	}
	more := true
	err := pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fResourceLogsScopeLogs || typ != protowire.BytesType || !more {
			return nil
		}
		var err error
		buf, more, err = scopeLogs(v, resource, buf, fn)
		return err
	})
	return buf, more, err
}

// scopeLogs walks one ScopeLogs. Each record is written after the
// members its resource and scope give every record of the scope, as the
// JSON parser would keep them from an OTLP/JSON "resource" and "scope":
// service.name, then the resource's other attributes under "resource.",
// then the scope's name, version and attributes under "scope.". Written
// once per scope, flat, they spare the parser reading the resource again
// for every record.
func scopeLogs(msg, resource, buf []byte, fn func([]byte) bool) ([]byte, bool, error) {
	var scope []byte
	if err := pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == fScopeLogsScope && typ == protowire.BytesType {
			scope = v
		}
		return nil
	}); err != nil {
		return buf, false, err
	}
	buf = append(buf[:0], '{')
	var err error
	if resource != nil {
		if buf, err = resourceMembers(buf, resource); err != nil {
			return buf, false, err
		}
	}
	if scope != nil {
		if buf, err = scopeMembers(buf, scope); err != nil {
			return buf, false, err
		}
	}
	// buf[:head] is the members every record starts with, without the
	// comma after the last (records write after it, so it is not kept).
	members := buf[len(buf)-1] == ','
	if members {
		buf = buf[:len(buf)-1]
	}
	head := len(buf)
	more := true
	err = pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fScopeLogsRecords || typ != protowire.BytesType || !more {
			return nil
		}
		var err error
		if buf, err = record(buf[:head], v, members); err != nil {
			return err
		}
		more = fn(buf)
		return nil
	})
	return buf, more, err
}

// resourceMembers appends a Resource's service.name (when a string) and
// its other attributes, each as "resource.KEY": its value, with commas.
func resourceMembers(buf, msg []byte) ([]byte, error) {
	err := pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fResourceAttributes || typ != protowire.BytesType {
			return nil
		}
		key, val, ok, err := splitKeyValue(v)
		if err != nil || !ok {
			return err
		}
		if string(key) == "service.name" {
			if s, isString := stringValue(val); isString {
				buf = append(parser.AppendString(append(buf, `"service.name":`...), s), ',')
			}
			return nil
		}
		buf, err = prefixed(buf, "resource.", key, val)
		return err
	})
	return buf, err
}

// scopeMembers appends an InstrumentationScope's name, version and
// attributes, each as "scope.KEY": its value, with commas.
func scopeMembers(buf, msg []byte) ([]byte, error) {
	err := pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fScopeName, fScopeVersion:
			if len(v) > 0 {
				name := `"scope.name":`
				if num == fScopeVersion {
					name = `"scope.version":`
				}
				buf = append(parser.AppendString(append(buf, name...), v), ',')
			}
		case fScopeAttributes:
			key, val, ok, err := splitKeyValue(v)
			if err != nil || !ok {
				return err
			}
			buf, err = prefixed(buf, "scope.", key, val)
			return err
		}
		return nil
	})
	return buf, err
}

// prefixed appends "PREFIXKEY": value, for an attribute of a resource or
// scope, its value as the OTLP/JSON parser keeps it (see innerValue); an
// attribute without a value is left out, as the parser leaves it out.
func prefixed(buf []byte, prefix string, key, val []byte) ([]byte, error) {
	n := len(buf)
	buf = append(append(buf, '"'), prefix...)
	buf = append(parser.AppendStringBody(buf, key), '"', ':')
	buf, ok, err := innerValue(buf, val)
	if err != nil || !ok {
		return buf[:n], err
	}
	return append(buf, ','), nil
}

// splitKeyValue returns a KeyValue's key and its AnyValue; ok is false
// when it has no value.
func splitKeyValue(msg []byte) (key, val []byte, ok bool, err error) {
	err = pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fKeyValueKey:
			key = v
		case fKeyValueValue:
			val, ok = v, true
		}
		return nil
	})
	return key, val, ok, err
}

// stringValue returns an AnyValue's string, when it holds one (its last
// field set is string_value).
func stringValue(msg []byte) ([]byte, bool) {
	var s []byte
	isString := false
	_ = pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num >= fAnyString && num <= fAnyBytes {
			isString = num == fAnyString && typ == protowire.BytesType
			s = v
		}
		return nil
	})
	return s, isString
}

// innerValue appends the value inside an AnyValue as OTLP/JSON writes it
// and the JSON parser keeps it: a string, an int as a quoted decimal, a
// bool, a double, bytes in base64, an array or map as {"values":[...]}.
// ok is false for an AnyValue with nothing set.
func innerValue(buf, msg []byte) ([]byte, bool, error) {
	n := len(buf)
	buf, err := anyValue(buf, msg, 1)
	if err != nil {
		return buf, false, err
	}
	// anyValue wrote {"xValue":V}: keep V.
	w := buf[n:]
	colon := 0
	for colon < len(w) && w[colon] != ':' {
		colon++
	}
	if colon >= len(w) { // {}: nothing set
		return buf[:n], false, nil
	}
	return append(buf[:n], w[colon+1:len(w)-1]...), true, nil
}

// record appends a LogRecord's members as OTLP/JSON, and the closing
// brace, to buf, which holds "{" and, when members is set, the members of
// its resource and scope. Zero values are left out, as the JSON mapping
// does.
func record(buf, msg []byte, members bool) ([]byte, error) {
	n := len(buf) // a comma before every member but the first
	if members {
		n = -1 // every member needs one
	}
	var body []byte
	hasBody, hasAttrs := false, false
	err := pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == fRecordAttributes:
			hasAttrs = true
		case (num == fRecordTime || num == fRecordObserved) && typ == protowire.Fixed64Type && x != 0:
			name := `"timeUnixNano":"`
			if num == fRecordObserved {
				name = `"observedTimeUnixNano":"`
			}
			buf = append(strconv.AppendUint(append(comma(buf, n), name...), x, 10), '"')
		case num == fRecordSeverity && typ == protowire.VarintType && x != 0:
			buf = strconv.AppendInt(append(comma(buf, n), `"severityNumber":`...), int64(int32(x)), 10)
		case num == fRecordSeverityText && typ == protowire.BytesType && len(v) > 0:
			buf = parser.AppendString(append(comma(buf, n), `"severityText":`...), v)
		case num == fRecordBody && typ == protowire.BytesType:
			body, hasBody = v, true // the last wins
		case num == fRecordFlags && typ == protowire.Fixed32Type && x != 0:
			buf = strconv.AppendUint(append(comma(buf, n), `"flags":`...), x, 10)
		case (num == fRecordTraceID || num == fRecordSpanID) && typ == protowire.BytesType && len(v) > 0:
			name := `"traceId":"`
			if num == fRecordSpanID {
				name = `"spanId":"`
			}
			buf = append(hex.AppendEncode(append(comma(buf, n), name...), v), '"')
		case num == fRecordEventName && typ == protowire.BytesType && len(v) > 0:
			buf = parser.AppendString(append(comma(buf, n), `"eventName":`...), v)
		}
		return nil
	})
	if err != nil {
		return buf, err
	}
	if hasBody {
		if buf, err = anyValue(append(comma(buf, n), `"body":`...), body, 0); err != nil {
			return buf, err
		}
	}
	if hasAttrs {
		buf = append(comma(buf, n), `"attributes":`...)
		if buf, err = keyValues(buf, msg, fRecordAttributes, 0); err != nil {
			return buf, err
		}
	}
	return append(buf, '}'), nil
}

// keyValues appends, as an OTLP/JSON array, the KeyValues that are field
// num of msg.
func keyValues(buf, msg []byte, num protowire.Number, depth int) ([]byte, error) {
	buf = append(buf, '[')
	n := len(buf)
	err := pbwire.Fields(msg, func(f protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if f != num || typ != protowire.BytesType {
			return nil
		}
		var err error
		buf, err = keyValue(comma(buf, n), v, depth)
		return err
	})
	return append(buf, ']'), err
}

// keyValue appends a KeyValue: {"key":"k","value":{...}}.
func keyValue(buf, msg []byte, depth int) ([]byte, error) {
	var key, val []byte
	hasVal := false
	err := pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fKeyValueKey:
			key = v
		case fKeyValueValue:
			val, hasVal = v, true
		}
		return nil
	})
	if err != nil {
		return buf, err
	}
	buf = parser.AppendString(append(buf, `{"key":`...), key)
	buf = append(buf, `,"value":`...)
	if !hasVal {
		return append(buf, "{}}"...), nil
	}
	buf, err = anyValue(buf, val, depth+1)
	return append(buf, '}'), err
}

// anyValue appends an AnyValue as OTLP/JSON: {"stringValue":"..."}, ...
func anyValue(buf, msg []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return buf, fmt.Errorf("%w: values nested more than %d deep", errMalformed, maxDepth)
	}
	// One of its fields is set: the last one present wins.
	var (
		last   protowire.Number
		lastV  []byte
		lastX  uint64
		lastOK bool
	)
	err := pbwire.Fields(msg, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		want := protowire.BytesType
		switch num {
		case fAnyBool, fAnyInt:
			want = protowire.VarintType
		case fAnyDouble:
			want = protowire.Fixed64Type
		}
		if num >= fAnyString && num <= fAnyBytes && typ == want {
			last, lastV, lastX, lastOK = num, v, x, true
		}
		return nil
	})
	if err != nil || !lastOK {
		return append(buf, "{}"...), err
	}
	switch last {
	case fAnyString:
		buf = parser.AppendString(append(buf, `{"stringValue":`...), lastV)
	case fAnyBool:
		buf = append(buf, `{"boolValue":`...)
		buf = strconv.AppendBool(buf, lastX != 0)
	case fAnyInt:
		buf = append(strconv.AppendInt(append(buf, `{"intValue":"`...), int64(lastX), 10), '"')
	case fAnyDouble:
		f := math.Float64frombits(lastX)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			buf = append(buf, `{"doubleValue":null`...) // not a JSON number
		} else {
			buf = strconv.AppendFloat(append(buf, `{"doubleValue":`...), f, 'g', -1, 64)
		}
	case fAnyBytes:
		buf = append(base64.StdEncoding.AppendEncode(append(buf, `{"bytesValue":"`...), lastV), '"')
	case fAnyArray, fAnyKVList:
		name := `{"arrayValue":{"values":[`
		if last == fAnyKVList {
			name = `{"kvlistValue":{"values":[`
		}
		buf = append(buf, name...)
		n := len(buf)
		err = pbwire.Fields(lastV, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if num != 1 || typ != protowire.BytesType {
				return nil
			}
			var err error
			if last == fAnyArray {
				buf, err = anyValue(comma(buf, n), v, depth+1)
			} else {
				buf, err = keyValue(comma(buf, n), v, depth+1)
			}
			return err
		})
		buf = append(buf, "]}"...)
	}
	return append(buf, '}'), err
}

// comma appends a comma unless buf has nothing past n (the first member
// or element).
func comma(buf []byte, n int) []byte {
	if len(buf) > n {
		return append(buf, ',')
	}
	return buf
}

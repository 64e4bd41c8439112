package parser

// Reason says what became of one frame. OK and Control are the two outcomes
// that are not errors; every other value is a rejection reason, counted per
// source under its String name.
type Reason uint8

const (
	// OK: the frame is a valid log entry.
	OK Reason = iota
	// Control: a JSON object with neither a level nor a message (under
	// any of their names), such as the generator's handshake. Counted as
	// ignored, not as an error.
	Control
	// BelowMinLevel: a valid entry below the level floor (DEBUG and TRACE by
	// default). Counted apart, not as an error.
	BelowMinLevel
	// DefaultLevel: a valid entry that named no level, given
	// Parser.DefaultLevel. It is stored like OK, and counted apart so that
	// a source without levels shows as such.
	DefaultLevel
	// Multi: an OpenTelemetry export holding many records; ParseEach reads
	// them. Never counted itself.
	Multi

	// Structural rejections: the frame is not a well-formed JSON object.
	InvalidJSON    // not JSON, truncated, or trailing bytes after the object
	InvalidUTF8    // bytes that are not UTF-8
	NotObject      // valid JSON, but an array, string, number, true, false or null
	TooDeep        // nesting deeper than MaxDepth
	DuplicateField // a known field given twice

	// Field rejections: a well-formed object that is not a valid log entry.
	InvalidLevel        // a level that is none of the known names or numbers
	InvalidTimestamp    // a time that is neither a number nor a known date format
	TimestampOutOfRange // a time outside the allowed skew from now
	MissingService      // service absent, null or empty
	MissingMessage      // message absent, null or empty
	InvalidField        // a string field (service, message, component, ids) holds another type
	FieldTooLong        // a string field is longer than its bound (see Parser)
	NulCharacter        // a string field holds U+0000, which not every backend can store

	// Frame rejections, decided by the receiver before the parser runs.
	BinaryFrame // a binary WebSocket message where text JSON is expected
	TooLarge    // a message longer than the receiver's read limit

	// NumReasons is the number of Reason values; arrays of counters indexed
	// by Reason have this length.
	NumReasons
)

var reasonNames = [NumReasons]string{
	OK:                  "ok",
	Control:             "control",
	BelowMinLevel:       "below_min_level",
	DefaultLevel:        "default_level",
	Multi:               "multi",
	InvalidJSON:         "invalid_json",
	InvalidUTF8:         "invalid_utf8",
	NotObject:           "not_object",
	TooDeep:             "too_deep",
	DuplicateField:      "duplicate_field",
	InvalidLevel:        "invalid_level",
	InvalidTimestamp:    "invalid_timestamp",
	TimestampOutOfRange: "timestamp_out_of_range",
	MissingService:      "missing_service",
	MissingMessage:      "missing_message",
	InvalidField:        "invalid_field",
	FieldTooLong:        "field_too_long",
	NulCharacter:        "nul_character",
	BinaryFrame:         "binary_frame",
	TooLarge:            "too_large",
}

// String returns the reason's snake_case name, as used in /stats and logs.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// IsError reports whether r is a rejection (anything but OK, Control,
// BelowMinLevel, DefaultLevel and Multi).
func (r Reason) IsError() bool { return r > Multi && r < NumReasons }

// IsEntry reports whether r comes with a valid entry to store: OK or
// DefaultLevel.
func (r Reason) IsEntry() bool { return r == OK || r == DefaultLevel }

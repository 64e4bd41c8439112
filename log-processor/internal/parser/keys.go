package parser

// Roles: the fields of an entry, each looked for under several names.
const (
	rTime = iota
	rLevel
	// rSeverity is OpenTelemetry's severity number: when it is 1-24 it
	// decides the level, whatever the level text says.
	rSeverity
	rMessage
	rService
	rComponent
	rTrace
	rSpan
	rParent
	numRoles
)

// roleNames name the roles in the precedence table (Precedence).
var roleNames = [numRoles]string{rTime: "time", rLevel: "level", rSeverity: "severity number", rMessage: "message",
	rService: "service", rComponent: "component", rTrace: "trace id", rSpan: "span id", rParent: "parent id"}

// Containers: members whose object (or array) value holds fields of the
// entry.
const (
	cLog        = iota // ECS: "log": {"level": ..., "logger": ...}
	cService           // ECS: "service": {"name": ...}
	cTrace             // ECS: "trace": {"id": ...}
	cSpan              // ECS: "span": {"id": ...}
	cBody              // OpenTelemetry: "body": {"stringValue": ...}
	cAttributes        // OpenTelemetry: "attributes": [{"key": ..., "value": {...}}]
	cResource          // OpenTelemetry: "resource": {"attributes": [...]}
	cScope             // OpenTelemetry: "scope": {"name": ..., "version": ..., "attributes": [...]}
	numContainers
)

// containerKinds is the JSON kind ('{' or '[') each container's value has.
var containerKinds = [numContainers]byte{cLog: '{', cService: '{', cTrace: '{', cSpan: '{', cBody: '{', cAttributes: '[', cResource: '{', cScope: '{'}

// keepContainer says which containers are also kept whole as attributes,
// because they hold more than the entry takes from them. An OpenTelemetry
// resource's and scope's members are kept one by one, under a prefix
// (keepOTel).
var keepContainer = [numContainers]bool{cLog: true, cService: true}

// containerFallbacks are what the precedence table says a role falls back
// to after its keys.
var containerFallbacks = [numRoles]string{
	rLevel:   "ECS's nested log.level",
	rMessage: "OpenTelemetry's body.stringValue",
	rService: "ECS's nested service.name, then OpenTelemetry's resource attribute service.name",
	rTrace:   "ECS's nested trace.id",
	rSpan:    "ECS's nested span.id",
}

// GELF markers: a message with both is GELF, whose numeric levels are
// syslog's.
const (
	gelfVersion      = 1 << iota // "version"
	gelfShortMessage             // "short_message"
	gelfBoth         = gelfVersion | gelfShortMessage
)

// Flags of a key.
const (
	kNanos       = 1 << iota // a time whose numbers are nanoseconds (OTLP's timeUnixNano)
	kSeverityNum             // a level whose numbers are OpenTelemetry severity numbers
)

// keyInfo is what a member's key means.
type keyInfo struct {
	role   int8  // one of the roles, or -1
	rank   uint8 // precedence within the role: the lowest present wins; set from the table's order
	flags  uint8
	cont   int8  // the container its object or array value is, or -1
	marker uint8 // GELF markers
	multi  bool  // resourceLogs: an OpenTelemetry export
	plain  bool  // a role, and no container, marker or multi: set from the table
}

// unknownKey is what a key without a meaning is.
var unknownKey = &keyInfo{role: -1, cont: -1}

// knownKey is a key and its meaning.
type knownKey struct {
	name string
	info keyInfo
}

// knownKeys is the one table of the keys with a meaning. Within a role,
// the order of the rows is the precedence: when a frame has several of a
// role's keys, the first listed wins and the others are kept as
// attributes. lookupKey and the documentation's table (Precedence) are
// made from it.
var knownKeys = rank([]knownKey{
	{"timestamp", role(rTime)},
	{"@timestamp", role(rTime)},
	{"time", role(rTime)},
	{"ts", role(rTime)},
	{"t", role(rTime)},
	{"date", role(rTime)},
	{"timeUnixNano", withFlags(role(rTime), kNanos)},
	{"time_unix_nano", withFlags(role(rTime), kNanos)},
	{"observedTimeUnixNano", withFlags(role(rTime), kNanos)},
	{"observed_time_unix_nano", withFlags(role(rTime), kNanos)},

	{"level", role(rLevel)},
	{"severity_text", role(rLevel)},
	{"severityText", role(rLevel)},
	{"severity", withFlags(role(rLevel), kSeverityNum)},
	{"lvl", role(rLevel)},
	{"levelname", role(rLevel)},
	{"log.level", role(rLevel)},
	{"detected_level", role(rLevel)},

	{"severity_number", role(rSeverity)},
	{"severityNumber", role(rSeverity)},

	{"message", role(rMessage)},
	{"msg", role(rMessage)},
	{"short_message", withMarker(role(rMessage), gelfShortMessage)},
	{"text", role(rMessage)},
	{"body", withCont(role(rMessage), cBody)},
	{"log", withCont(role(rMessage), cLog)}, // a string: Docker and Fluent Bit; an object: ECS

	{"service", withCont(role(rService), cService)},
	{"service.name", role(rService)},
	{"service_name", role(rService)},
	{"_service", role(rService)},
	{"app", role(rService)},
	{"application", role(rService)},
	{"_app", role(rService)},
	{"name", role(rService)},
	{"logger", role(rService)},

	{"component", role(rComponent)},

	{"trace_id", role(rTrace)},
	{"traceId", role(rTrace)},
	{"trace.id", role(rTrace)},

	{"span_id", role(rSpan)},
	{"spanId", role(rSpan)},
	{"span.id", role(rSpan)},

	{"parent_id", role(rParent)},
	{"parentSpanId", role(rParent)},
	{"parent_span_id", role(rParent)},

	{"trace", keyInfo{role: -1, cont: cTrace}},
	{"span", keyInfo{role: -1, cont: cSpan}},
	{"attributes", keyInfo{role: -1, cont: cAttributes}},
	{"resource", keyInfo{role: -1, cont: cResource}},
	{"scope", keyInfo{role: -1, cont: cScope}},
	{"resourceLogs", keyInfo{role: -1, cont: -1, multi: true}},
	{"resource_logs", keyInfo{role: -1, cont: -1, multi: true}},
	{"version", keyInfo{role: -1, cont: -1, marker: gelfVersion}},
})

func role(r int) keyInfo                    { return keyInfo{role: int8(r), cont: -1} }
func withFlags(k keyInfo, f uint8) keyInfo  { k.flags = f; return k }
func withMarker(k keyInfo, m uint8) keyInfo { k.marker = m; return k }
func withCont(k keyInfo, c int8) keyInfo    { k.cont = c; return k }

// rank sets each key's rank from its row's place among its role's rows,
// and plain on the keys that are a role's and nothing more.
func rank(keys []knownKey) []knownKey {
	var next [numRoles]uint8
	for i := range keys {
		k := &keys[i].info
		if k.role >= 0 {
			k.rank = next[k.role]
			next[k.role]++
		}
		// A nanosecond time (OTLP's) is looked at first: 0 means unset.
		k.plain = k.role >= 0 && k.cont < 0 && k.marker == 0 && !k.multi && k.flags&kNanos == 0
	}
	return keys
}

// lookupKey (keys_lookup.go) maps a member's key to its meaning: it is
// generated from knownKeys by TestLookupKeyGenerated, as a switch on the
// key's length and then its bytes (about 3 ns a key; a hash table took
// 12).
//go:generate go test -run ^TestLookupKeyGenerated$ -update

// Precedence returns, for each role that has keys, its keys in order of
// precedence and what it falls back to: the table the documentation
// shows (a test keeps them in step).
func Precedence() []RoleKeys {
	out := make([]RoleKeys, 0, numRoles)
	for r := range numRoles {
		rk := RoleKeys{Role: roleNames[r], Then: containerFallbacks[r]}
		for _, k := range knownKeys {
			if int(k.info.role) == r {
				rk.Keys = append(rk.Keys, k.name)
			}
		}
		out = append(out, rk)
	}
	return out
}

// RoleKeys is one row of the precedence table: a field of the entry, the
// keys it is read from (the first present wins) and what it falls back to.
type RoleKeys struct {
	Role string
	Keys []string
	Then string
}

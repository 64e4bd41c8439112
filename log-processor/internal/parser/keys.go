package parser

// Roles: the fields of an entry, each looked for under several names.
const (
	rTime = iota
	rLevel
	rMessage
	rService
	rComponent
	rTrace
	rSpan
	rParent
	numRoles
)

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
	numContainers
)

// containerKinds is the JSON kind ('{' or '[') each container's value has.
var containerKinds = [numContainers]byte{cLog: '{', cService: '{', cTrace: '{', cSpan: '{', cBody: '{', cAttributes: '[', cResource: '{'}

// keepContainer says which containers are also kept whole as attributes,
// because they hold more than the entry takes from them.
var keepContainer = [numContainers]bool{cLog: true, cService: true, cResource: true}

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
	rank   uint8 // precedence within the role: the lowest present wins
	flags  uint8
	cont   int8  // the container its object or array value is, or -1
	marker uint8 // GELF markers
	multi  bool  // resourceLogs: an OpenTelemetry export
	plain  bool  // a role, and no container, marker or multi: set by keyInfos
}

// unknownKey is what a key without a meaning is.
var unknownKey = &keyInfo{role: -1, cont: -1}

func role(r, rank int) keyInfo { return keyInfo{role: int8(r), rank: uint8(rank), cont: -1} }

// lookupKey maps a member's key to its meaning. The precedence within each
// role, first first (the README has the same table):
//
//	time:      timestamp, @timestamp, time, ts, t, date, timeUnixNano, observedTimeUnixNano
//	level:     level, severity_text, severityText, severity, lvl, levelname, log.level,
//	           severity_number, severityNumber (then ECS's nested log.level)
//	message:   message, msg, short_message, text, body, log
//	service:   service, service.name, _service, app, application, _app, name, logger
//	           (then ECS's nested service.name, then OpenTelemetry's resource attribute)
//	component: component
//	trace id:  trace_id, traceId, trace.id (then ECS's nested trace.id)
//	span id:   span_id, spanId, span.id (then ECS's nested span.id)
//	parent id: parent_id, parentSpanId
func lookupKey(key []byte, escaped bool) *keyInfo {
	if escaped {
		key = []byte(unescape(key))
	}
	// By length, then by bytes: about 3 ns a key (a hash table took 12).
	// TestKnownKeys keeps the indexes in step with knownKeys.
	switch len(key) {
	case 1:
		switch string(key) {
		case "t":
			return &knownKeys[4].info
		}
	case 2:
		switch string(key) {
		case "ts":
			return &knownKeys[3].info
		}
	case 3:
		switch string(key) {
		case "lvl":
			return &knownKeys[12].info
		case "msg":
			return &knownKeys[18].info
		case "app":
			return &knownKeys[25].info
		case "log":
			return &knownKeys[39].info
		}
	case 4:
		switch string(key) {
		case "time":
			return &knownKeys[2].info
		case "date":
			return &knownKeys[5].info
		case "text":
			return &knownKeys[20].info
		case "body":
			return &knownKeys[21].info
		case "_app":
			return &knownKeys[27].info
		case "name":
			return &knownKeys[28].info
		case "span":
			return &knownKeys[41].info
		}
	case 5:
		switch string(key) {
		case "level":
			return &knownKeys[8].info
		case "trace":
			return &knownKeys[40].info
		}
	case 6:
		switch string(key) {
		case "logger":
			return &knownKeys[29].info
		case "spanId":
			return &knownKeys[35].info
		}
	case 7:
		switch string(key) {
		case "message":
			return &knownKeys[17].info
		case "service":
			return &knownKeys[22].info
		case "traceId":
			return &knownKeys[32].info
		case "span_id":
			return &knownKeys[34].info
		case "span.id":
			return &knownKeys[36].info
		case "version":
			return &knownKeys[45].info
		}
	case 8:
		switch string(key) {
		case "severity":
			return &knownKeys[11].info
		case "_service":
			return &knownKeys[24].info
		case "trace_id":
			return &knownKeys[31].info
		case "trace.id":
			return &knownKeys[33].info
		case "resource":
			return &knownKeys[43].info
		}
	case 9:
		switch string(key) {
		case "timestamp":
			return &knownKeys[0].info
		case "levelname":
			return &knownKeys[13].info
		case "log.level":
			return &knownKeys[14].info
		case "component":
			return &knownKeys[30].info
		case "parent_id":
			return &knownKeys[37].info
		}
	case 10:
		switch string(key) {
		case "@timestamp":
			return &knownKeys[1].info
		case "attributes":
			return &knownKeys[42].info
		}
	case 11:
		switch string(key) {
		case "application":
			return &knownKeys[26].info
		}
	case 12:
		switch string(key) {
		case "timeUnixNano":
			return &knownKeys[6].info
		case "severityText":
			return &knownKeys[10].info
		case "service.name":
			return &knownKeys[23].info
		case "parentSpanId":
			return &knownKeys[38].info
		case "resourceLogs":
			return &knownKeys[44].info
		}
	case 13:
		switch string(key) {
		case "severity_text":
			return &knownKeys[9].info
		case "short_message":
			return &knownKeys[19].info
		}
	case 14:
		switch string(key) {
		case "severityNumber":
			return &knownKeys[16].info
		}
	case 15:
		switch string(key) {
		case "severity_number":
			return &knownKeys[15].info
		}
	case 20:
		switch string(key) {
		case "observedTimeUnixNano":
			return &knownKeys[7].info
		}
	}
	return unknownKey
}

// knownKeys lists every key with a meaning, in the order of the table in
// lookupKey's comment.
var knownKeys = markPlain([]knownKey{
	{"timestamp", role(rTime, 0)},
	{"@timestamp", role(rTime, 1)},
	{"time", role(rTime, 2)},
	{"ts", role(rTime, 3)},
	{"t", role(rTime, 4)},
	{"date", role(rTime, 5)},
	{"timeUnixNano", withFlags(role(rTime, 6), kNanos)},
	{"observedTimeUnixNano", withFlags(role(rTime, 7), kNanos)},
	{"level", role(rLevel, 0)},
	{"severity_text", role(rLevel, 1)},
	{"severityText", role(rLevel, 2)},
	{"severity", withFlags(role(rLevel, 3), kSeverityNum)},
	{"lvl", role(rLevel, 4)},
	{"levelname", role(rLevel, 5)},
	{"log.level", role(rLevel, 6)},
	{"severity_number", withFlags(role(rLevel, 7), kSeverityNum)},
	{"severityNumber", withFlags(role(rLevel, 8), kSeverityNum)},
	{"message", role(rMessage, 0)},
	{"msg", role(rMessage, 1)},
	{"short_message", withMarker(role(rMessage, 2), gelfShortMessage)},
	{"text", role(rMessage, 3)},
	{"body", withCont(role(rMessage, 4), cBody)},
	{"service", withCont(role(rService, 0), cService)},
	{"service.name", role(rService, 1)},
	{"_service", role(rService, 2)},
	{"app", role(rService, 3)},
	{"application", role(rService, 4)},
	{"_app", role(rService, 5)},
	{"name", role(rService, 6)},
	{"logger", role(rService, 7)},
	{"component", role(rComponent, 0)},
	{"trace_id", role(rTrace, 0)},
	{"traceId", role(rTrace, 1)},
	{"trace.id", role(rTrace, 2)},
	{"span_id", role(rSpan, 0)},
	{"spanId", role(rSpan, 1)},
	{"span.id", role(rSpan, 2)},
	{"parent_id", role(rParent, 0)},
	{"parentSpanId", role(rParent, 1)},
	{"log", withCont(role(rMessage, 5), cLog)}, // a string: Docker and Fluent Bit; an object: ECS
	{"trace", keyInfo{role: -1, cont: cTrace}},
	{"span", keyInfo{role: -1, cont: cSpan}},
	{"attributes", keyInfo{role: -1, cont: cAttributes}},
	{"resource", keyInfo{role: -1, cont: cResource}},
	{"resourceLogs", keyInfo{role: -1, cont: -1, multi: true}},
	{"version", keyInfo{role: -1, cont: -1, marker: gelfVersion}},
})

// knownKey is a key and its meaning.
type knownKey struct {
	name string
	info keyInfo
}

// markPlain sets plain on the keys that are a role's and nothing more.
func markPlain(keys []knownKey) []knownKey {
	for i := range keys {
		k := &keys[i].info
		k.plain = k.role >= 0 && k.cont < 0 && k.marker == 0 && !k.multi
	}
	return keys
}

func withFlags(k keyInfo, f uint8) keyInfo  { k.flags = f; return k }
func withMarker(k keyInfo, m uint8) keyInfo { k.marker = m; return k }
func withCont(k keyInfo, c int8) keyInfo    { k.cont = c; return k }

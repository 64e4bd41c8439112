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
}

var unknownKey = keyInfo{role: -1, cont: -1}

func role(r, rank int) keyInfo { return keyInfo{role: int8(r), rank: uint8(rank), cont: -1} }

// lookupKey maps a member's key to its meaning. The precedence within each
// role, first first (the README has the same table):
//
//	time:      timestamp, @timestamp, time, ts, t, date, timeUnixNano, observedTimeUnixNano
//	level:     level, severity_text, severityText, severity, lvl, levelname, log.level,
//	           severity_number, severityNumber (then ECS's nested log.level)
//	message:   message, msg, short_message, text, body
//	service:   service, service.name, _service, app, application, _app, name, logger
//	           (then ECS's nested service.name, then OpenTelemetry's resource attribute)
//	component: component
//	trace id:  trace_id, traceId, trace.id (then ECS's nested trace.id)
//	span id:   span_id, spanId, span.id (then ECS's nested span.id)
//	parent id: parent_id, parentSpanId
func lookupKey(key []byte, escaped bool) keyInfo {
	if escaped {
		key = []byte(unescape(key))
	}
	switch string(key) {
	case "timestamp":
		return role(rTime, 0)
	case "@timestamp":
		return role(rTime, 1)
	case "time":
		return role(rTime, 2)
	case "ts":
		return role(rTime, 3)
	case "t":
		return role(rTime, 4)
	case "date":
		return role(rTime, 5)
	case "timeUnixNano":
		k := role(rTime, 6)
		k.flags = kNanos
		return k
	case "observedTimeUnixNano":
		k := role(rTime, 7)
		k.flags = kNanos
		return k

	case "level":
		return role(rLevel, 0)
	case "severity_text":
		return role(rLevel, 1)
	case "severityText":
		return role(rLevel, 2)
	case "severity":
		k := role(rLevel, 3)
		k.flags = kSeverityNum
		return k
	case "lvl":
		return role(rLevel, 4)
	case "levelname":
		return role(rLevel, 5)
	case "log.level":
		return role(rLevel, 6)
	case "severity_number":
		k := role(rLevel, 7)
		k.flags = kSeverityNum
		return k
	case "severityNumber":
		k := role(rLevel, 8)
		k.flags = kSeverityNum
		return k

	case "message":
		return role(rMessage, 0)
	case "msg":
		return role(rMessage, 1)
	case "short_message":
		k := role(rMessage, 2)
		k.marker = gelfShortMessage
		return k
	case "text":
		return role(rMessage, 3)
	case "body":
		k := role(rMessage, 4)
		k.cont = cBody
		return k

	case "service":
		k := role(rService, 0)
		k.cont = cService
		return k
	case "service.name":
		return role(rService, 1)
	case "_service":
		return role(rService, 2)
	case "app":
		return role(rService, 3)
	case "application":
		return role(rService, 4)
	case "_app":
		return role(rService, 5)
	case "name":
		return role(rService, 6)
	case "logger":
		return role(rService, 7)

	case "component":
		return role(rComponent, 0)

	case "trace_id":
		return role(rTrace, 0)
	case "traceId":
		return role(rTrace, 1)
	case "trace.id":
		return role(rTrace, 2)
	case "span_id":
		return role(rSpan, 0)
	case "spanId":
		return role(rSpan, 1)
	case "span.id":
		return role(rSpan, 2)
	case "parent_id":
		return role(rParent, 0)
	case "parentSpanId":
		return role(rParent, 1)

	case "log":
		return keyInfo{role: -1, cont: cLog}
	case "trace":
		return keyInfo{role: -1, cont: cTrace}
	case "span":
		return keyInfo{role: -1, cont: cSpan}
	case "attributes":
		return keyInfo{role: -1, cont: cAttributes}
	case "resource":
		return keyInfo{role: -1, cont: cResource}
	case "resourceLogs":
		return keyInfo{role: -1, cont: -1, multi: true}
	case "version":
		return keyInfo{role: -1, cont: -1, marker: gelfVersion}
	}
	return unknownKey
}

package ws

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Bounds on query values.
const (
	maxIntervalMs = 3_600_000 // one hour
	maxCount      = 1_000_000_000
	maxServiceLen = 128
	maxRate       = 10_000_000 // messages per second
	maxPad        = 16 << 20   // bytes of padding per message
	maxMsgBytes   = 1 << 20    // bytes of a sized message
	maxServices   = 10_000_000 // distinct generated service names
	// randomIntervalMin and randomIntervalMax bound the interval picked for
	// a connection when the interval is 0.
	randomIntervalMin = 10
	randomIntervalMax = 1000
)

// defaultWeights is the INFO/WARN/ERROR mix when none is asked for.
var defaultWeights = [len(models.Levels)]int{70, 20, 10}

// params are one connection's settings, from the server's defaults and the
// query string.
type params struct {
	interval time.Duration // between messages; unused when flood
	flood    bool          // send as fast as the connection takes
	rate     int           // messages per second, paced; 0 = use interval
	count    int           // messages to send before going quiet; -1 = no limit
	service  string        // fixed service; "" = random from the built-in list
	weights  [len(models.Levels)]int
	debug    bool // log every frame sent

	// Size and spread, for load and hostile-source tests.
	pad       int // bytes of an unknown "pad" field between message and service; 0 = none
	msgBytes  int // message length in bytes; 0 = a built-in sentence
	nServices int // cycle through this many distinct service names; 0 = the built-in five

	// Fault injection, for testing consumers.
	malformedPct int    // share of frames, in percent, sent malformed
	dropAfter    int    // close the TCP connection abruptly after this many frames; -1 = never
	seed         uint64 // seeds the connection's randomness when hasSeed
	hasSeed      bool
}

// parseParams applies the query string q over the defaults. The error is a
// one-line reason meant for the client. An interval of zero is left for the
// caller to pick at random.
func parseParams(q url.Values, defInterval time.Duration) (params, error) {
	p := params{interval: defInterval, count: -1, dropAfter: -1, weights: defaultWeights}
	for key, vals := range q {
		if len(vals) != 1 {
			return p, fmt.Errorf("query parameter %q given %d times", key, len(vals))
		}
		v := vals[0]
		var err error
		switch key {
		case "interval_ms":
			var ms int
			ms, err = intIn(v, 0, maxIntervalMs)
			p.interval = time.Duration(ms) * time.Millisecond
		case "count":
			p.count, err = intIn(v, 0, maxCount)
		case "service":
			if v == "" || len(v) > maxServiceLen {
				err = fmt.Errorf("want 1 to %d characters", maxServiceLen)
			}
			p.service = v
		case "level":
			l := models.LevelIndex(strings.ToUpper(v))
			if l < 0 {
				err = fmt.Errorf("%q is not INFO, WARN or ERROR", v)
				break
			}
			p.weights = [len(models.Levels)]int{}
			p.weights[l] = 1
		case "level_weights":
			p.weights, err = parseWeights(v)
		case "debug":
			p.debug, err = boolParam(v)
		case "flood":
			p.flood, err = boolParam(v)
		case "rate":
			p.rate, err = intIn(v, 1, maxRate)
		case "malformed_pct":
			p.malformedPct, err = intIn(v, 0, 100)
		case "drop_after":
			p.dropAfter, err = intIn(v, 0, maxCount)
		case "pad":
			p.pad, err = intIn(v, 0, maxPad)
		case "message_bytes":
			p.msgBytes, err = intIn(v, 1, maxMsgBytes)
		case "services":
			p.nServices, err = intIn(v, 1, maxServices)
		case "seed":
			p.seed, err = strconv.ParseUint(v, 10, 64)
			if err != nil {
				err = fmt.Errorf("not an unsigned integer")
			}
			p.hasSeed = true
		default:
			return p, fmt.Errorf("unknown query parameter %q", key)
		}
		if err != nil {
			return p, fmt.Errorf("invalid %s=%q: %w", key, v, err)
		}
	}
	if q.Has("service") && q.Has("services") {
		return p, fmt.Errorf("give service or services, not both")
	}
	if q.Has("level") && q.Has("level_weights") {
		return p, fmt.Errorf("give level or level_weights, not both")
	}
	if n := btoi(q.Has("rate")) + btoi(q.Has("flood")) + btoi(q.Has("interval_ms")); n > 1 {
		return p, fmt.Errorf("give one of interval_ms, rate and flood")
	}
	return p, nil
}

// intervalMs is the interval the handshake reports: none with rate or
// flood, which set the pace instead.
func (p params) intervalMs() int64 {
	if p.rate > 0 || p.flood {
		return 0
	}
	return p.interval.Milliseconds()
}

// pace describes how fast the connection sends, for its log line.
func (p params) pace() string {
	switch {
	case p.flood:
		return "flood"
	case p.rate > 0:
		return fmt.Sprintf("%d/s", p.rate)
	}
	return "every " + p.interval.String()
}

// newRand returns the connection's source of randomness: seeded by p.seed
// when given, so that a test can replay a stream, else at random.
func newRand(p params) *rand.Rand {
	if p.hasSeed {
		return rand.New(rand.NewPCG(p.seed, p.seed^0x9e3779b97f4a7c15))
	}
	return rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
}

// randomInterval picks an interval for a connection that asked for none.
func randomInterval(rng *rand.Rand) time.Duration {
	return time.Duration(randomIntervalMin+rng.IntN(randomIntervalMax-randomIntervalMin+1)) * time.Millisecond
}

func intIn(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("not an integer")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("want %d to %d", lo, hi)
	}
	return n, nil
}

// boolParam accepts a bare key (?flood) as true.
func boolParam(s string) (bool, error) {
	if s == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("not a boolean")
	}
	return b, nil
}

// parseWeights parses "INFO:50,WARN:30,ERROR:20"; levels left out weigh 0.
func parseWeights(s string) ([len(models.Levels)]int, error) {
	var w [len(models.Levels)]int
	var seen [len(models.Levels)]bool
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		name, num, ok := strings.Cut(part, ":")
		if !ok {
			return w, fmt.Errorf("%q is not LEVEL:WEIGHT", part)
		}
		l := models.LevelIndex(strings.ToUpper(strings.TrimSpace(name)))
		if l < 0 {
			return w, fmt.Errorf("%q is not INFO, WARN or ERROR", name)
		}
		if seen[l] {
			return w, fmt.Errorf("level %s given twice", models.Levels[l])
		}
		seen[l] = true
		n, err := intIn(strings.TrimSpace(num), 0, 1_000_000)
		if err != nil {
			return w, fmt.Errorf("weight of %s: %w", models.Levels[l], err)
		}
		w[l] = n
		total += n
	}
	if total == 0 {
		return w, fmt.Errorf("weights add up to zero")
	}
	return w, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

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
	count    int           // messages to send before going quiet; -1 = no limit
	service  string        // fixed service; "" = random from the built-in list
	weights  [len(models.Levels)]int
	debug    bool // log every frame sent
}

// parseParams applies the query string q over the defaults. The error is a
// one-line reason meant for the client.
func parseParams(q url.Values, defInterval time.Duration, rng *rand.Rand) (params, error) {
	p := params{interval: defInterval, count: -1, weights: defaultWeights}
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
		default:
			return p, fmt.Errorf("unknown query parameter %q", key)
		}
		if err != nil {
			return p, fmt.Errorf("invalid %s=%q: %w", key, v, err)
		}
	}
	if q.Has("level") && q.Has("level_weights") {
		return p, fmt.Errorf("give level or level_weights, not both")
	}
	if p.interval == 0 {
		p.interval = time.Duration(randomIntervalMin+rng.IntN(randomIntervalMax-randomIntervalMin+1)) * time.Millisecond
	}
	return p, nil
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

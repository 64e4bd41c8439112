package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// Bounds on /logs query values.
const (
	maxServiceLen  = 256
	maxContainsLen = 1024
	maxAttrKeyLen  = 128
)

// ParseFilter reads the /logs query string: service, level, since, until,
// contains, limit and attr.NAME (an attribute's value, as text). The error is a one-line reason for the client.
func ParseFilter(q url.Values) (storage.Filter, error) {
	var f storage.Filter
	for key, vals := range q {
		if len(vals) != 1 {
			return f, fmt.Errorf("query parameter %q given %d times", key, len(vals))
		}
		v := vals[0]
		var err error
		switch key {
		case "service":
			if v == "" || len(v) > maxServiceLen {
				err = fmt.Errorf("want 1 to %d characters", maxServiceLen)
			}
			f.Service = v
		case "level":
			f.Level = strings.ToUpper(v)
			if models.StoredLevelIndex(f.Level) < 0 {
				err = fmt.Errorf("want DEBUG, INFO, WARN or ERROR")
			}
		case "since":
			f.Since, err = parseTime(v)
		case "until":
			f.Until, err = parseTime(v)
		case "contains":
			if v == "" || len(v) > maxContainsLen {
				err = fmt.Errorf("want 1 to %d characters", maxContainsLen)
			}
			f.Contains = v
		case "limit":
			f.Limit, err = strconv.Atoi(v)
			if err != nil || f.Limit < 1 || f.Limit > storage.MaxLimit {
				err = fmt.Errorf("want an integer from 1 to %d", storage.MaxLimit)
			}
		default:
			name, ok := strings.CutPrefix(key, "attr.")
			if !ok {
				return f, fmt.Errorf("unknown query parameter %q (want service, level, since, until, contains, limit, attr.NAME)", key)
			}
			switch {
			case name == "" || len(name) > maxAttrKeyLen || strings.ContainsAny(name, "\"\\"):
				err = fmt.Errorf("want an attribute name of 1 to %d characters, without quotes or backslashes", maxAttrKeyLen)
			case len(v) > maxContainsLen:
				err = fmt.Errorf("want at most %d characters", maxContainsLen)
			case len(f.Attrs) == storage.MaxAttrFilters:
				err = fmt.Errorf("at most %d attr. conditions", storage.MaxAttrFilters)
			}
			f.Attrs = append(f.Attrs, storage.AttrFilter{Key: name, Value: v})
		}
		if err != nil {
			return f, fmt.Errorf("invalid %s=%q: %w", key, v, err)
		}
	}
	if f.Since != 0 && f.Until != 0 && f.Since > f.Until {
		return f, fmt.Errorf("since is after until")
	}
	return f, nil
}

// parseTime accepts RFC 3339 or Unix milliseconds.
func parseTime(v string) (int64, error) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		if ms <= 0 {
			return 0, fmt.Errorf("want a positive Unix time in milliseconds")
		}
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("want RFC 3339 (2026-11-28T10:00:00Z) or Unix milliseconds")
	}
	if t.UnixMilli() <= 0 {
		return 0, fmt.Errorf("time before 1970")
	}
	return t.UnixMilli(), nil
}

// ParseRejectedFilter reads GET /logs/rejected's query: reason, source,
// id (a comma-separated list, at most storage.MaxLimit), before (an id: the
// page after the one whose last id it is) and limit.
func ParseRejectedFilter(q url.Values) (storage.RejectedFilter, error) {
	var f storage.RejectedFilter
	for key, vals := range q {
		if len(vals) != 1 {
			return f, fmt.Errorf("query parameter %q given %d times", key, len(vals))
		}
		v := vals[0]
		switch key {
		case "reason":
			f.Reason = v
		case "source":
			f.Source = v
		case "id":
			ids := strings.Split(v, ",")
			if len(ids) > storage.MaxLimit {
				return f, fmt.Errorf("id: %d ids, at most %d at a time", len(ids), storage.MaxLimit)
			}
			for _, s := range ids {
				n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
				if err != nil || n <= 0 {
					return f, fmt.Errorf("id=%q: want positive integers, comma-separated", v)
				}
				f.IDs = append(f.IDs, n)
			}
		case "before", "limit":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return f, fmt.Errorf("%s=%q: want a positive integer", key, v)
			}
			if key == "before" {
				f.Before = n
			} else {
				f.Limit = int(min(n, storage.MaxLimit))
			}
		default:
			return f, fmt.Errorf("unknown query parameter %q (want reason, source, id, before or limit)", key)
		}
	}
	if len(f.IDs) > 0 && f.Limit == 0 {
		f.Limit = min(len(f.IDs), storage.MaxLimit)
	}
	return f, nil
}

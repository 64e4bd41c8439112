// Package storage holds what every storage backend shares: the shape of the
// aggregate counts they report. Each backend lives in its own sub-package so
// that using one never links another's driver.
package storage

// OtherService is the service name under which entries are counted once a
// store has seen its maximum number of distinct services, so that a source
// inventing service names cannot grow memory without bound.
const OtherService = "(other)"

// Counts are a store's own totals of the entries it holds or has held.
type Counts struct {
	Total     uint64            `json:"total"`
	ByLevel   map[string]uint64 `json:"by_level"`
	ByService map[string]uint64 `json:"by_service"`
}

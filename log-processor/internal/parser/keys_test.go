package parser

import "testing"

// TestKnownKeys: lookupKey finds every known key's own entry, and nothing
// for others.
func TestKnownKeys(t *testing.T) {
	for i := range knownKeys {
		if got := lookupKey([]byte(knownKeys[i].name), false); got != &knownKeys[i].info {
			t.Errorf("lookupKey(%q) = %+v, want entry %d %+v", knownKeys[i].name, got, i, knownKeys[i].info)
		}
	}
	for _, k := range []string{"", "Level", "levels", "x", "service.nam"} {
		if got := lookupKey([]byte(k), false); got != unknownKey {
			t.Errorf("lookupKey(%q) = %+v, want unknown", k, got)
		}
	}
	if got := lookupKey([]byte(`\u006cevel`), true); got.role != rLevel || got.rank != 0 {
		t.Errorf("escaped level = %+v", got)
	}
}

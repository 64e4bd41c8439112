package storage

import (
	"fmt"
	"strings"
	"testing"

	"github.com/logpipeline/log-processing-service/pkg/models"
)

// TestTallyManyServices: more distinct services in one batch than the
// local table holds, and more in all than the tally names.
func TestTallyManyServices(t *testing.T) {
	tl := NewTally(30)
	var batch []models.LogEntry
	for i := range 40 {
		batch = append(batch, models.LogEntry{Level: models.Levels[i%3], Service: fmt.Sprint("s", i%25)})
	}
	tl.Add(batch)
	tl.Add(batch)
	c := tl.Counts(0)
	if c.Total != 80 || c.ByLevel["INFO"] != 28 || c.ByService["s0"] != 4 || c.ByService["s24"] != 2 || len(c.ByService) != 25 {
		t.Errorf("counts = %+v", c)
	}
	tl.Add([]models.LogEntry{{Service: "x1"}, {Service: "x2"}, {Service: "x3"}, {Service: "x4"}, {Service: "x5"}, {Service: "x6"}})
	c = tl.Counts(0)
	if len(c.ByService) != 31 || c.ByService[OtherService] != 1 {
		t.Errorf("past the limit: %d services, %d other", len(c.ByService), c.ByService[OtherService])
	}
}

func BenchmarkTallyAdd(b *testing.B) {
	tl := NewTally(0)
	batch := make([]models.LogEntry, 64)
	for i := range batch {
		batch[i] = models.LogEntry{Level: models.Levels[i%3], Service: fmt.Sprint("service-", i%5)}
	}
	b.ReportAllocs()
	for b.Loop() {
		tl.Add(batch)
	}
}

// TestLevelCountsSQLReadsStoredLevels: the counts query names exactly the
// levels an entry may be stored with, and no others.
func TestLevelCountsSQLReadsStoredLevels(t *testing.T) {
	for _, l := range models.StoredLevels {
		if !strings.Contains(LevelCountsSQL, "'"+l+"'") {
			t.Errorf("LevelCountsSQL leaves out %s: %s", l, LevelCountsSQL)
		}
	}
	if n := strings.Count(LevelCountsSQL, "'"); n != 2*len(models.StoredLevels) {
		t.Errorf("LevelCountsSQL names %d levels, want %d", n/2, len(models.StoredLevels))
	}
}

package memory

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage/storagetest"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, storagetest.Options{
		Open:  func(*testing.T) storage.Store { return New(Config{}) },
		Dedup: true,
	})
}

// TestRingBounded: only the newest MaxEntries entries are kept for
// queries, while the counts cover everything saved.
func TestRingBounded(t *testing.T) {
	s := New(Config{MaxEntries: 10})
	for i := range 25 {
		_ = s.Save(context.Background(), []models.LogEntry{{Timestamp: int64(i + 1), Level: models.LevelInfo, Service: "s", Message: "m"}})
	}
	rs, _ := s.Query(context.Background(), storage.Filter{Limit: 1000})
	if len(rs) != 10 || rs[0].Timestamp != 25 || rs[9].Timestamp != 16 {
		t.Errorf("ring holds %d entries, newest %d, oldest %d; want 10, 25, 16", len(rs), rs[0].Timestamp, rs[len(rs)-1].Timestamp)
	}
	if c, _ := s.Counts(context.Background(), 0); c.Total != 25 {
		t.Errorf("counted %d, want 25", c.Total)
	}
}

// TestRingBoundedInBytes: large entries are evicted by bytes long before
// the entry bound, and Query sees only what is kept.
func TestRingBoundedInBytes(t *testing.T) {
	big := models.LogEntry{Level: models.LevelInfo, Service: "s", Message: strings.Repeat("m", 60<<10)}
	s := New(Config{MaxEntries: 1000, MaxBytes: 10 * int64(big.Size())})
	for i := range 25 {
		big.Timestamp = int64(i + 1)
		_ = s.Save(context.Background(), []models.LogEntry{big})
	}
	rs, _ := s.Query(context.Background(), storage.Filter{Limit: 1000})
	if len(rs) != 10 || rs[0].Timestamp != 25 || rs[9].Timestamp != 16 {
		t.Errorf("ring holds %d entries, newest %d; want the newest 10", len(rs), rs[0].Timestamp)
	}
	if s.bytes != 10*int64(big.Size()) {
		t.Errorf("bytes held = %d, want %d", s.bytes, 10*big.Size())
	}
}

func TestServicesBounded(t *testing.T) {
	s := New(Config{MaxServices: 3})
	for i := range 10 {
		_ = s.Save(context.Background(), []models.LogEntry{{Level: models.LevelInfo, Service: fmt.Sprint("svc", i)}})
	}
	c, _ := s.Counts(context.Background(), 0)
	if len(c.ByService) != 4 || c.ByService[storage.OtherService] != 7 {
		t.Errorf("by_service = %v, want 3 named and 7 under %q", c.ByService, storage.OtherService)
	}
}

func BenchmarkSave(b *testing.B) {
	for _, size := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := New(Config{})
			batch := make([]models.LogEntry, size)
			for i := range batch {
				batch[i] = models.LogEntry{Level: models.Levels[i%3], Service: fmt.Sprint("svc", i%5), Message: "m"}
			}
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Save(context.Background(), batch)
			}
			b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

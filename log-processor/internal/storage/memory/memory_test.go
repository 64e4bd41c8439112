package memory

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

func TestCounts(t *testing.T) {
	s := New(Config{})
	batch := []models.LogEntry{
		{Level: models.LevelInfo, Service: "a"},
		{Level: models.LevelWarn, Service: "a"},
		{Level: models.LevelError, Service: "b"},
		{Level: models.LevelInfo, Service: "b"},
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if err := s.Save(context.Background(), batch); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	c := s.Counts()
	if c.Total != 3200 {
		t.Errorf("total = %d, want 3200", c.Total)
	}
	want := map[string]uint64{"INFO": 1600, "WARN": 800, "ERROR": 800}
	for l, n := range want {
		if c.ByLevel[l] != n {
			t.Errorf("by_level[%s] = %d, want %d", l, c.ByLevel[l], n)
		}
	}
	if c.ByService["a"] != 1600 || c.ByService["b"] != 1600 || len(c.ByService) != 2 {
		t.Errorf("by_service = %v", c.ByService)
	}
	// Counts is a copy: changing it does not change the store.
	c.ByService["a"] = 0
	if s.Counts().ByService["a"] != 1600 {
		t.Error("Counts shares its map with the store")
	}
}

func TestServicesBounded(t *testing.T) {
	s := New(Config{MaxServices: 3})
	for i := range 10 {
		_ = s.Save(context.Background(), []models.LogEntry{{Level: models.LevelInfo, Service: fmt.Sprint("svc", i)}})
	}
	c := s.Counts()
	if len(c.ByService) != 4 || c.ByService[storage.OtherService] != 7 {
		t.Errorf("by_service = %v, want 3 named and 7 under %q", c.ByService, storage.OtherService)
	}
}

func BenchmarkSave(b *testing.B) {
	s := New(Config{})
	batch := make([]models.LogEntry, 64)
	for i := range batch {
		batch[i] = models.LogEntry{Level: models.Levels[i%3], Service: fmt.Sprint("svc", i%5)}
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = s.Save(context.Background(), batch)
		}
	})
	b.SetBytes(0)
	b.ReportMetric(float64(len(batch)), "entries/op")
}

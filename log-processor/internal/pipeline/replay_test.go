package pipeline

import (
	"fmt"
	"testing"
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/parser"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/models"
)

// TestReplayed: each kind of dead letter is parsed or checked as the
// rules stand, and what is stored has the identity of its dead letter.
func TestReplayed(t *testing.T) {
	now := time.Now()
	ts := now.UnixMilli()
	at := now.Add(-time.Minute).UTC()
	entry := models.LogEntry{Timestamp: ts, Level: "WARN", Service: "db", Message: "refused by the database once", Source: "ws://a", ReceivedAt: 7}
	export := fmt.Sprintf(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[
		{"timeUnixNano":"%d000000","severityNumber":9,"body":{"stringValue":"one"}},
		{"timeUnixNano":"%d000000","severityNumber":13,"body":{"stringValue":"two"}}]}]}]}`, ts, ts)
	tests := []struct {
		name    string
		r       storage.Rejected
		status  string
		reason  string
		entries int
	}{
		{"record", storage.Rejected{Record: fmt.Sprintf(`{"timestamp":%d,"level":"ERROR","message":"m"}`, ts), Service: "svc", Source: "push:svc"}, ReplayStored, "", 1},
		{"record without its path's service", storage.Rejected{Record: fmt.Sprintf(`{"timestamp":%d,"level":"ERROR","message":"m"}`, ts)}, ReplayRefused, "missing_service", 0},
		{"record still refused", storage.Rejected{Record: `{"level":"LOUD","message":"m","service":"s"}`}, ReplayRefused, "invalid_level", 0},
		{"record not JSON", storage.Rejected{Record: `{"level":`}, ReplayRefused, "invalid_json", 0},
		{"record below the minimum level", storage.Rejected{Record: fmt.Sprintf(`{"timestamp":%d,"level":"DEBUG","message":"m","service":"s"}`, ts)}, ReplayIgnored, "below_min_level", 0},
		{"truncated record", storage.Rejected{Record: `{"level":"INFO","message":"m","service":"s"`, Truncated: true}, ReplayTruncated, "", 0},
		{"export", storage.Rejected{Record: export, Service: "otel"}, ReplayStored, "", 2},
		{"entry", storage.Rejected{Entry: &entry}, ReplayStored, "", 1},
		{"entry out of the time window", storage.Rejected{Entry: &models.LogEntry{Timestamp: 1, Level: "INFO", Service: "s", Message: "m"}}, ReplayRefused, "timestamp_out_of_range", 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			r.ID, r.At = int64(100+i), at
			item, es := replayed(parser.Parser{}, &r, now)
			if item.ID != r.ID || item.Status != tc.status || item.Reason != tc.reason || item.Entries != tc.entries || len(es) != tc.entries {
				t.Fatalf("replayed = %+v with %d entries, want %s %q with %d", item, len(es), tc.status, tc.reason, tc.entries)
			}
			epoch := models.KeyEpoch(fmt.Sprintf("dead letter %d", r.ID))
			for k, e := range es {
				if e.Bus != (models.BusID{Epoch: epoch, Pos: int64(k)}) {
					t.Errorf("entry %d's identity = %+v, want its dead letter's at %d", k, e.Bus, k)
				}
				switch {
				case r.Entry != nil && (e.Source != r.Entry.Source || e.ReceivedAt != r.Entry.ReceivedAt || e.Message != r.Entry.Message):
					t.Errorf("entry %+v, want the dead letter's as it was", e)
				case r.Entry == nil && (e.Source != r.Source || e.ReceivedAt != at.UnixMilli() || e.Service != r.Service):
					t.Errorf("entry %+v, want the dead letter's source, service and time", e)
				}
			}
		})
	}
}

package pipeline

import (
	"time"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
)

// Readiness says whether every source takes logs and storage is writing.
type Readiness struct {
	// Status is ready; degraded when some sources are down, storage is
	// failing or the bus unreachable; or down when no source is up.
	Status  string            `json:"status"`
	Storage StorageReadiness  `json:"storage"`
	Bus     *BusReadiness     `json:"bus,omitempty"`
	Sources []SourceReadiness `json:"sources"`
}

// BusReadiness is the part of the bus's status a probe needs.
type BusReadiness struct {
	Role      Role   `json:"role"`
	Connected bool   `json:"connected"`
	LastError string `json:"last_error,omitempty"`
	// The stream's disk use and backlog, on a processor that stores.
	StreamBytes int64 `json:"stream_bytes,omitempty"`
	ConsumerLag int64 `json:"consumer_lag,omitempty"`
}

// StorageReadiness is the part of the store's status a probe needs.
type StorageReadiness struct {
	Backend   string `json:"backend"`
	State     string `json:"state"`
	LastError string `json:"last_error,omitempty"`
}

// SourceReadiness is the part of a source's state a probe needs; /stats
// has the counters.
type SourceReadiness struct {
	Name           string    `json:"name"`
	URL            string    `json:"url"`
	Kind           string    `json:"kind"`
	State          string    `json:"state"`
	Owner          string    `json:"owner,omitempty"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
}

// Ready reports the pipeline's readiness. A source another processor of
// the cluster reads (standby) counts neither way; a processor that only
// stores is ready while storage writes.
func (p *Pipeline) Ready() Readiness {
	st := p.store.Status()
	rd := Readiness{Storage: StorageReadiness{Backend: st.Backend, State: st.State, LastError: st.LastError},
		Sources: make([]SourceReadiness, 0, len(p.readers.sources))}
	var owners []string
	if p.cluster != nil {
		owners = p.cluster.Owners()
	}
	up, mine, j := 0, 0, 0
	for i, src := range p.readers.sources {
		h := src.Health()
		sr := SourceReadiness{Name: h.Name, URL: h.URL, Kind: h.Kind, State: h.State, ConnectedSince: h.ConnectedSince, LastError: h.LastError}
		if _, leased := src.(Leased); leased {
			if p.cluster != nil {
				if j < len(owners) {
					sr.Owner = owners[j]
				}
				if !p.readers.isRunning(i) {
					sr.State = intake.StateStandby
				}
			}
			j++
		}
		rd.Sources = append(rd.Sources, sr)
		if sr.State == intake.StateStandby {
			continue // another processor's to read
		}
		mine++
		if intake.Up(sr.State) {
			up++
		}
	}
	if mine == 0 && (p.cfg.Role == RoleStore || p.cluster != nil) {
		up = 1 // storing only, or every source read elsewhere: ready while storage writes
	}
	busDown := false
	if p.cfg.Bus != nil {
		bs := p.cfg.Bus.Status()
		rd.Bus = &BusReadiness{Role: p.cfg.Role, Connected: bs.Connected, LastError: bs.LastError}
		if p.consumer != nil {
			cs := p.consumer.ConsumeStats()
			rd.Bus.StreamBytes, rd.Bus.ConsumerLag = cs.StreamBytes, cs.ConsumerLag
		}
		busDown = !bs.Connected
	}
	switch {
	case up == 0:
		rd.Status = "down"
	case up < mine || st.State != storage.StateOK || busDown:
		rd.Status = "degraded"
	default:
		rd.Status = "ready"
	}
	return rd
}

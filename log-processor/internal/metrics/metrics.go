// Package metrics exposes the processor's counters in the Prometheus text
// format. It reads the same snapshot as /stats at every scrape, so the two
// never disagree, and registers on a registry of its own, never the global
// one. Labels are bounded: a source's name (never a URL with credentials),
// a rejection or drop reason; never a service.
package metrics

import (
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
	"github.com/logpipeline/log-processing-service/log-processor/internal/storage"
	"github.com/logpipeline/log-processing-service/pkg/buildinfo"
)

// Namespace prefixes every metric of the processor.
const Namespace = "logproc"

// Source is what the metrics read.
type Source interface {
	Stats() pipeline.Stats
}

// NewRegistry returns a registry holding the processor's metrics read from
// p, the build's info, and (with runtime) the Go runtime's and the
// process's own.
func NewRegistry(p Source, build buildinfo.Info, runtime bool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(p))
	build.Register(reg, Namespace, runtime)
	return reg
}

// Handler serves reg's metrics.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, MaxRequestsInFlight: 4})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

type collector struct {
	p Source

	frames, submitted, dropped, connected, reconnects, pushers, defaulted, unconfirmed *prometheus.Desc
	ingestRequests, ingestBytes, ingestRefused                                         *prometheus.Desc
	processed, stored, rejected, writeErrors, storageUp, writeDuration                 *prometheus.Desc
	queue, queueCap, queueBytes, queueCapBytes, workers, tailClients                   *prometheus.Desc

	// With --bus jetstream and --cluster.
	busConnected, busPublished, busPending, busPublishErrors, busAcked *prometheus.Desc
	busRedelivered, busCorrupt, busLag, sourceOwned, clusterMembers    *prometheus.Desc
	busStreamBytes, busStreamMsgs                                      *prometheus.Desc
	busInvalid                                                         *prometheus.Desc
}

func newCollector(p Source) *collector {
	return &collector{
		p:              p,
		frames:         desc("frames_received_total", "Frames (log lines) received, by source and outcome: ok, ignored (control frames), below_min_level, or the rejection reason.", "source", "outcome"),
		submitted:      desc("entries_submitted_total", "Valid entries the queue accepted, by source.", "source"),
		dropped:        desc("entries_dropped_total", "Valid entries dropped because the queue stayed full, by source and reason.", "source", "reason"),
		connected:      desc("source_connected", "Whether a dialed source is connected now (1) or not (0).", "source"),
		reconnects:     desc("source_reconnects_total", "Connections made to a dialed source after the first.", "source"),
		pushers:        desc("pushers_connected", "Pushers connected now over a stream (WebSocket), by source (push:TOKEN:PROTOCOL); 0 for request paths.", "source"),
		defaulted:      desc("entries_default_level_total", "Valid entries that named no level and were given --default-level (part of the ok frames), by source.", "source"),
		unconfirmed:    desc("entries_unconfirmed_total", "Submitted entries whose push request was answered retry because they were not confirmed stored within --ack-timeout (--ack stored), by source.", "source"),
		ingestRequests: desc("ingest_inflight_requests", "Push requests and frames being handled now."),
		ingestBytes:    desc("ingest_inflight_bytes", "Bytes the push requests and frames hold now (--ingest-max-inflight-bytes bounds them)."),
		ingestRefused:  desc("ingest_busy_refusals_total", "Push requests refused, to be retried, for want of room in the in-flight budget."),
		processed:      desc("entries_processed_total", "Entries that left the queue: handed to storage, which returned."),
		stored:         desc("entries_stored_total", "Entries storage committed in this run."),
		rejected:       desc("storage_rejected_entries_total", "Entries the database refused for their content, set aside."),
		writeErrors:    desc("storage_write_errors_total", "Database writes that failed (retried, or split when content was refused)."),
		storageUp:      desc("storage_up", "Whether storage is writing (1) or failing (0)."),
		writeDuration:  desc("storage_write_duration_seconds", "The duration of each database write (one transaction)."),
		queue:          desc("queue_entries", "Entries waiting in the queue or in the workers' hands now."),
		queueCap:       desc("queue_capacity_entries", "The queue's capacity in entries (--queue-size)."),
		queueBytes:     desc("queue_bytes", "Bytes of the entries in the queue and in the workers' hands now."),
		queueCapBytes:  desc("queue_capacity_bytes", "The bound on those bytes (--queue-max-bytes)."),
		workers:        desc("workers", "Workers taking entries from the queue."),
		tailClients:    desc("tail_clients", "Clients following GET /logs/tail now."),

		busConnected:     desc("bus_connected", "Whether the NATS connection is up (1) or not (0)."),
		busPublished:     desc("bus_published_entries_total", "Entries the JetStream stream acknowledged."),
		busPending:       desc("bus_publish_pending_entries", "Entries accepted and not yet acknowledged by the stream."),
		busPublishErrors: desc("bus_publish_errors_total", "Publish attempts that failed and were retried."),
		busAcked:         desc("bus_acknowledged_entries_total", "Entries this processor stored, then acknowledged to the stream."),
		busRedelivered:   desc("bus_redelivered_messages_total", "Stream messages this processor received more than once."),
		busCorrupt:       desc("bus_corrupt_messages_total", "Stream messages that did not decode, terminated."),
		busInvalid:       desc("bus_invalid_entries_total", "Entries from the stream that failed validation, not stored, by reason.", "reason"),
		busLag:           desc("bus_consumer_lag_messages", "Messages of the shared consumer no writer has acknowledged yet."),
		busStreamBytes:   desc("bus_stream_bytes", "Bytes the stream holds (its disk use, within --bus-max-bytes)."),
		busStreamMsgs:    desc("bus_stream_messages", "Messages the stream holds: the backlog not yet stored."),
		sourceOwned:      desc("source_owned", "Whether this processor reads the source (1) or another of its cluster does (0).", "source"),
		clusterMembers:   desc("cluster_members", "Live processors of the cluster, as last seen."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.p.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, src := range s.Sources {
		name := src.Name // short and stable: never a URL's query string
		counter(c.frames, src.OK, name, "ok")
		counter(c.frames, src.Ignored, name, "ignored")
		counter(c.frames, src.BelowMinLevel, name, "below_min_level")
		for _, reason := range sortedKeys(src.ParseErrors) {
			counter(c.frames, src.ParseErrors[reason], name, reason)
		}
		counter(c.defaulted, src.DefaultLevel, name)
		counter(c.submitted, src.Submitted, name)
		if src.Kind == intake.KindPush {
			counter(c.unconfirmed, src.Unconfirmed, name)
		}
		for _, reason := range sortedKeys(src.DropReasons) {
			counter(c.dropped, src.DropReasons[reason], name, reason)
		}
		if src.Kind == intake.KindPush {
			gauge(c.pushers, float64(src.Clients), name)
			continue
		}
		up := 0.0
		if src.State == intake.StateConnected {
			up = 1
		}
		gauge(c.connected, up, name)
		counter(c.reconnects, src.Reconnects, name)
		if s.Cluster != nil {
			owned := 0.0
			if src.Owner == s.Cluster.ID {
				owned = 1
			}
			gauge(c.sourceOwned, owned, name)
		}
	}
	if s.Cluster != nil {
		gauge(c.clusterMembers, float64(len(s.Cluster.Members)))
	}
	if g := s.Ingest; g != nil {
		gauge(c.ingestRequests, float64(g.Requests))
		gauge(c.ingestBytes, float64(g.InflightBytes))
		counter(c.ingestRefused, g.Refused)
	}
	if b := s.Bus; b != nil {
		up := 0.0
		if b.Connected {
			up = 1
		}
		gauge(c.busConnected, up)
		if ps := b.PublishStats; ps != nil {
			counter(c.busPublished, ps.Published)
			gauge(c.busPending, float64(ps.Pending))
			counter(c.busPublishErrors, ps.PublishErrors)
		}
		if cs := b.ConsumeStats; cs != nil {
			counter(c.busAcked, cs.Acknowledged)
			counter(c.busRedelivered, cs.Redelivered)
			counter(c.busCorrupt, cs.Corrupt)
			for _, reason := range sortedKeys(cs.Invalid) {
				counter(c.busInvalid, cs.Invalid[reason], reason)
			}
			gauge(c.busLag, float64(cs.ConsumerLag))
			gauge(c.busStreamBytes, float64(cs.StreamBytes))
			gauge(c.busStreamMsgs, float64(cs.StreamMessages))
		}
	}
	counter(c.processed, s.Processed)
	counter(c.stored, s.Stored)
	counter(c.rejected, s.Storage.Rejected)
	counter(c.writeErrors, s.Storage.WriteErrors)
	up := 0.0
	if s.Storage.State == storage.StateOK {
		up = 1
	}
	gauge(c.storageUp, up)
	if w := s.Storage.Writes; w != nil {
		buckets := make(map[float64]uint64, len(storage.LatencyBuckets))
		for i, b := range storage.LatencyBuckets {
			buckets[b] = w.Cumulative[i]
		}
		ch <- prometheus.MustNewConstHistogram(c.writeDuration, w.Count, w.Sum, buckets)
	}
	gauge(c.queue, float64(s.Queue))
	gauge(c.queueCap, float64(s.QueueCapacity))
	gauge(c.queueBytes, float64(s.QueueBytes))
	gauge(c.queueCapBytes, float64(s.QueueMaxBytes))
	gauge(c.workers, float64(s.Workers))
	gauge(c.tailClients, float64(s.TailClients))
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

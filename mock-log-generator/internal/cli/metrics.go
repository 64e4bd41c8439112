package cli

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/logpipeline/log-processing-service/mock-log-generator/internal/ws"
	"github.com/logpipeline/log-processing-service/pkg/buildinfo"
)

// namespace prefixes the generator's metrics.
const namespace = "mockgen"

// handler serves the generator's routes: /ws/logs, and /healthz and
// /metrics beside it.
func handler(wss *ws.Server, runtime bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ws/logs", wss.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(newRegistry(wss, buildinfo.Read(), runtime), promhttp.HandlerOpts{MaxRequestsInFlight: 4}))
	return mux
}

// newRegistry returns a registry of the generator's own metrics, read from
// wss at each scrape.
func newRegistry(wss *ws.Server, build buildinfo.Info, runtime bool) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(genCollector{wss: wss,
		clients: prometheus.NewDesc(namespace+"_clients_connected", "WebSocket clients connected now.", nil, nil),
		frames:  prometheus.NewDesc(namespace+"_frames_sent_total", "Frames sent after the handshakes, malformed ones included.", nil, nil),
		faults:  prometheus.NewDesc(namespace+"_faults_injected_total", "Malformed frames sent (malformed_pct), by kind.", []string{"kind"}, nil),
	})
	build.Register(reg, namespace, runtime)
	return reg
}

type genCollector struct {
	wss                     *ws.Server
	clients, frames, faults *prometheus.Desc
}

func (c genCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c genCollector) Collect(ch chan<- prometheus.Metric) {
	t := c.wss.Totals()
	ch <- prometheus.MustNewConstMetric(c.clients, prometheus.GaugeValue, float64(t.Clients))
	ch <- prometheus.MustNewConstMetric(c.frames, prometheus.CounterValue, float64(t.Frames))
	for kind, n := range t.Faults {
		ch <- prometheus.MustNewConstMetric(c.faults, prometheus.CounterValue, float64(n), kind)
	}
}

package cli

import (
	"log/slog"
	"net"
	"net/http"

	"github.com/logpipeline/log-processing-service/log-processor/internal/esbulk"
	"github.com/logpipeline/log-processing-service/log-processor/internal/ingest"
	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/loki"
	"github.com/logpipeline/log-processing-service/log-processor/internal/otlp"
	"github.com/logpipeline/log-processing-service/log-processor/internal/pipeline"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/receiver"
)

// pushSource is a source served on the ingest listener: a push path of
// our own dialect or of an ingest protocol.
type pushSource interface {
	pipeline.Source
	Mount(mux *http.ServeMux)
}

// buildSources makes a source of every kind the flags ask for: a receiver
// per dialed source, and the push paths, mounted on the ingest listener's
// mux (nil without --ingest-addr). Adding a source kind is a line here and
// its flags.
// OTLP/gRPC, on its own listener (grpcLn, nil without --otlp-grpc-addr),
// shares their tokens and budget.
func buildSources(cfg *config, sink *intake.Sink, grpcLn net.Listener, logger *slog.Logger) ([]pipeline.Source, *http.ServeMux) {
	var out []pipeline.Source
	for _, rc := range cfg.dialed {
		out = append(out, receiver.New(rc, sink, logger))
	}
	if cfg.ingestAddr == "" && grpcLn == nil {
		return out, nil
	}
	env := push.Env{Sink: sink, Auth: &push.Auth{Tokens: cfg.tokens}, Gate: push.NewGate(cfg.gate)}
	cfg.pipeline.Gate = env.Gate
	if grpcLn != nil {
		out = append(out, otlp.NewGRPC(cfg.otlp, env, grpcLn, cfg.ingestTLS, logger))
	}
	if cfg.ingestAddr == "" {
		return out, nil
	}
	mux := http.NewServeMux()
	for _, ps := range []pushSource{
		ingest.NewHTTP(cfg.ingest, env, logger),
		ingest.NewWS(cfg.ingest, env, logger),
		otlp.NewHTTP(cfg.otlp, env, logger),
		esbulk.New(cfg.es, env, logger),
		loki.New(cfg.loki, env, logger),
	} {
		ps.Mount(mux)
		out = append(out, ps)
	}
	return out, mux
}

// pushPaths are the routes the ingest listener serves, for the log line and
// --check-config.
var pushPaths = []string{"POST " + ingest.PathHTTP, "GET " + ingest.PathWS, "POST " + otlp.Path, "POST " + esbulk.Path, "POST " + loki.Path}

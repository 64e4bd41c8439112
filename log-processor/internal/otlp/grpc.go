package otlp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/logpipeline/log-processing-service/log-processor/internal/intake"
	"github.com/logpipeline/log-processing-service/log-processor/internal/push"
	"github.com/logpipeline/log-processing-service/log-processor/internal/queue"
)

// stopGrace is how long the gRPC server waits for calls in flight at
// shutdown before it cuts them.
const stopGrace = 5 * time.Second

// retryDelay is the RetryInfo of a retryable refusal.
const retryDelay = time.Second

// GRPC is the OTLP/gRPC source, on a listener of its own
// (--otlp-grpc-addr). Run, Stats and Health make it a pipeline source.
type GRPC struct {
	*exporter
	ln  net.Listener
	srv *grpc.Server
	log *slog.Logger
}

// NewGRPC returns the OTLP/gRPC source serving on ln, over TLS when tlsCfg
// is set.
func NewGRPC(cfg Config, env push.Env, ln net.Listener, tlsCfg *tls.Config, logger *slog.Logger) *GRPC {
	log := logger.With("component", "otlp")
	g := &GRPC{exporter: newExporter(cfg, env, "grpc "+serviceName+"/Export", "otlp-grpc", log), ln: ln, log: log}
	opts := []grpc.ServerOption{
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.MaxRecvMsgSize(g.cfg.GRPCMaxMessageBytes),
		grpc.MaxConcurrentStreams(g.cfg.GRPCMaxStreams),
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	g.srv = grpc.NewServer(opts...)
	g.srv.RegisterService(&serviceDesc, g)
	return g
}

// Addr is where it listens.
func (g *GRPC) Addr() net.Addr { return g.ln.Addr() }

// Run serves until ctx ends, then refuses new calls, finishes those in
// flight (cutting them after a grace period) and returns.
func (g *GRPC) Run(ctx context.Context) error {
	served := make(chan error, 1) // sent once by the serving goroutine
	go func() { served <- g.srv.Serve(g.ln) }()
	select {
	case err := <-served:
		g.path.Close()
		return fmt.Errorf("serve OTLP/gRPC: %w", err)
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() { g.srv.GracefulStop(); close(stopped) }()
	t := time.NewTimer(stopGrace)
	select {
	case <-stopped:
		t.Stop()
	case <-t.C:
		g.srv.Stop()
		<-stopped
	}
	<-served
	g.path.Close()
	g.path.LogSummary()
	return nil
}

// Stats returns a row per token.
func (g *GRPC) Stats() []intake.Stats { return g.path.Stats() }

// Health says whether it takes calls.
func (g *GRPC) Health() intake.Health { return g.path.Health() }

// serviceName is the OTLP logs service.
const serviceName = "opentelemetry.proto.collector.logs.v1.LogsService"

// exportServer is the handler type of the service description.
type exportServer interface {
	exportRPC(ctx context.Context, msg []byte) (proto.Message, error)
}

// serviceDesc describes LogsService with a raw request: the handler gets
// the request's bytes and walks them itself (see Records).
var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*exportServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req rawMessage
			if err := dec(&req); err != nil {
				return nil, err
			}
			return srv.(exportServer).exportRPC(ctx, req.b)
		},
	}},
	Metadata: "opentelemetry/proto/collector/logs/v1/logs_service.proto",
}

// exportRPC handles one Export call.
func (g *GRPC) exportRPC(ctx context.Context, msg []byte) (proto.Message, error) {
	auth := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("authorization"); len(v) > 0 {
			auth = v[0]
		}
	}
	token, ok := g.env.Auth.CheckHeader(auth, "", push.Basic)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "send the authorization metadata: Bearer <ingest token>")
	}
	if !g.path.Enter() {
		return nil, retryable("shutting down")
	}
	defer g.path.Leave()
	remote := ""
	if p, ok := peer.FromContext(ctx); ok {
		remote = p.Addr.String()
	}
	slot, err := g.env.Gate.Enter()
	if err != nil {
		g.path.Done(token, true)
		return nil, retryable(err.Error())
	}
	defer slot.Leave()
	// gRPC has read the message already (within --otlp-grpc-max-message-bytes):
	// it is held from now on.
	if !slot.Take(int64(len(msg))) {
		g.path.Done(token, true)
		return nil, retryable(push.ErrBusy.Error())
	}
	o, err := g.export(ctx, msg, false, token, remote, slot)
	switch {
	case err == nil:
		g.path.Done(token, false)
		return o.response(), nil
	case errors.Is(err, push.ErrBusy), errors.Is(err, intake.ErrBusy), errors.Is(err, queue.ErrFull):
		g.path.Done(token, true)
		return nil, retryable("no room for the request now (the queue or the in-flight budget is full); retry")
	case errors.Is(err, queue.ErrUnconfirmed):
		g.path.Done(token, true)
		return nil, retryable(notStored)
	case errors.Is(err, intake.ErrTooMany):
		return nil, status.Errorf(codes.InvalidArgument, "more than %d log records in one request (--otlp-max-records): send smaller batches", g.cfg.MaxRecords)
	case errors.Is(err, queue.ErrTooLarge):
		return nil, status.Error(codes.InvalidArgument, "more records than the queue holds at once: send smaller batches")
	}
	return nil, status.Error(codes.InvalidArgument, err.Error())
}

// retryable is an Unavailable status with a RetryInfo, which OTLP clients
// wait on before they retry.
func retryable(msg string) error {
	st, err := status.New(codes.Unavailable, msg).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryDelay)})
	if err != nil {
		return status.Error(codes.Unavailable, msg)
	}
	return st.Err()
}

// rawMessage is a request as it came: its protobuf bytes.
type rawMessage struct{ b []byte }

// rawCodec hands requests over as bytes (rawMessage) and marshals
// responses as protobuf. It is named "proto", the content subtype every
// gRPC client sends.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("otlp: cannot marshal %T", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("otlp: cannot unmarshal into %T", v)
	}
	r.b = data.Materialize()
	return nil
}

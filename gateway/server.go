package gateway

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/sealgate/sealgate/gateway/auth"
)

// Message size limits. Upload chunks of up to 1 MiB are recommended; 4 MiB
// leaves room for clients that send bigger ones, and bounds memory per message.
const (
	MaxRecvMsgSize = 4<<20 + 1024
	MaxSendMsgSize = 4<<20 + 1024
)

// MaxStreamsPerConn bounds the concurrent calls of one client connection;
// the caps per principal and account (package limits) bound them across
// connections.
const MaxStreamsPerConn = 256

// Flow-control windows for streams of large artifacts: the 64 KiB defaults
// make a sender wait for acknowledgements every few chunks. Clients that move
// large artifacts should use the same sizes (ClientWindowOptions).
const (
	StreamWindow = 4 << 20
	ConnWindow   = 16 << 20
)

// Socket buffer sizes of each connection (see NewServer).
const (
	connReadBuffer  = 128 << 10
	connWriteBuffer = 256 << 10
)

// ClientWindowOptions returns the dial options that match the server's
// flow-control windows.
func ClientWindowOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(StreamWindow), grpc.WithInitialConnWindowSize(ConnWindow),
		grpc.WithReadBufferSize(connReadBuffer), grpc.WithWriteBufferSize(connWriteBuffer), grpc.WithSharedWriteBuffer(true)}
}

// Server is a gRPC server with sealgate's services, health and reflection.
type Server struct {
	*grpc.Server
	Health *health.Server
	// Metrics are the per-RPC Prometheus metrics (grpc_server_*): register
	// them with a registry to export them.
	Metrics *grpcprom.ServerMetrics
}

// NewServer returns a gRPC server that serves g behind the interceptor chain:
// logging (method, code, duration; never payloads), bearer-token auth on every
// method but health and reflection, and panic recovery that answers INTERNAL
// without the panic text.
func NewServer(g *Gateway, v *auth.Verifier, log *slog.Logger, opts ...grpc.ServerOption) *Server {
	lg := logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		log.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in handler", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})}
	match := selector.MatchFunc(auth.NotExempt)
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300})))
	all := append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.MaxSendMsgSize(MaxSendMsgSize),
		grpc.ForceServerCodecV2(newChunkCodec()),
		experimental.BufferPool(transportPool),
		// Larger socket reads and writes than gRPC's 32 KiB: a quarter of
		// the system calls per byte streamed. Write buffers return to a
		// pool while a connection is idle; read buffers stay with their
		// connection (128 KiB each).
		grpc.ReadBufferSize(connReadBuffer),
		grpc.WriteBufferSize(connWriteBuffer),
		grpc.SharedWriteBuffer(true),
		// Dead peers are found by keepalive pings, which cancel their
		// streams (an upload in flight then stores nothing), and one
		// connection cannot hold an unbounded number of streams.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.MaxConcurrentStreams(MaxStreamsPerConn),
		grpc.InitialWindowSize(StreamWindow),
		grpc.InitialConnWindowSize(ConnWindow),
		grpc.ChainUnaryInterceptor(
			metrics.UnaryServerInterceptor(),
			logging.UnaryServerInterceptor(lg, logOpts...),
			selector.UnaryServerInterceptor(grpcauth.UnaryServerInterceptor(g.AuthFunc(v)), match),
			recovery.UnaryServerInterceptor(recoverOpts...),
		),
		grpc.ChainStreamInterceptor(
			metrics.StreamServerInterceptor(),
			logging.StreamServerInterceptor(lg, logOpts...),
			selector.StreamServerInterceptor(grpcauth.StreamServerInterceptor(g.AuthFunc(v)), match),
			recovery.StreamServerInterceptor(recoverOpts...),
		),
	}, opts...)
	s := grpc.NewServer(all...)
	g.Register(s)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	metrics.InitializeMetrics(s)
	return &Server{Server: s, Health: hs, Metrics: metrics}
}

// Package gatewaytest starts a complete in-process gateway on the embedded
// defaults (file stores, local keys) for tests: a loopback listener, a
// client connection, tokens for any account and roles, and the captured log.
package gatewaytest

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/chunks"
	"github.com/sealgate/sealgate/gateway/config"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// Env is a running gateway and a client for it.
type Env struct {
	Addr      string
	DataDir   string
	Runtime   *config.Runtime
	Conn      *grpc.ClientConn
	Artifacts sealgatev1.ArtifactServiceClient
	Accounts  sealgatev1.AccountServiceClient
	Keys      sealgatev1.KeyServiceClient
	Log       *SyncBuffer
}

// Start runs a gateway with the embedded defaults under t.TempDir(), with the
// dev account "demo", until the test ends. mutate, when not nil, edits the
// config first.
func Start(t testing.TB, mutate func(*config.Config)) *Env {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Embedded(dir)
	cfg.Listen, cfg.LogLevel = "127.0.0.1:0", "debug"
	if mutate != nil {
		mutate(cfg)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &SyncBuffer{}
	log := cfg.NewLogger(logs)
	ctx := context.Background()
	rt, err := config.Build(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.EnsureDevAccount(ctx); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	// Stop waits for handlers, so a test's temporary folder is removed only
	// after every call (a cancelled upload cleaning up, say) has returned.
	srv := gateway.NewServer(rt.Gateway, rt.Verifier, log, grpc.WaitForHandlers(true))
	go srv.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), append(gateway.ClientWindowOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(gateway.MaxSendMsgSize), grpc.ForceCodecV2(chunks.ClientCodec())))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		rt.Close()
	})
	return &Env{
		Addr: lis.Addr().String(), DataDir: dir, Runtime: rt, Conn: conn, Log: logs,
		Artifacts: sealgatev1.NewArtifactServiceClient(conn),
		Accounts:  sealgatev1.NewAccountServiceClient(conn),
		Keys:      sealgatev1.NewKeyServiceClient(conn),
	}
}

// Token returns a bearer token for account with roles (every role when none
// is given).
func (e *Env) Token(t testing.TB, account string, roles ...string) string {
	return e.TokenAs(t, account, "test", roles...)
}

// TokenAs returns a bearer token for subject in account with roles (every
// role when none is given).
func (e *Env) TokenAs(t testing.TB, account, subject string, roles ...string) string {
	t.Helper()
	if len(roles) == 0 {
		roles = auth.AllRoles()
	}
	tok, err := e.Runtime.Issuer.Issue(auth.Principal{Subject: subject, Account: account, Roles: roles}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Ctx returns a context carrying a bearer token for account with roles.
func (e *Env) Ctx(t testing.TB, account string, roles ...string) context.Context {
	return WithToken(context.Background(), e.Token(t, account, roles...))
}

// WithToken adds "authorization: Bearer tok" to ctx.
func WithToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// Upload sends header and then r in chunks of chunk bytes, and returns the
// created artifact or the call's error.
func (e *Env) Upload(ctx context.Context, h *sealgatev1.UploadHeader, r io.Reader, chunk int) (*sealgatev1.Artifact, error) {
	stream, err := e.Artifacts.UploadArtifact(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: h}}); err != nil {
		return stream.CloseAndRecv()
	}
	buf := make([]byte, chunk)
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			msg := &sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: buf[:n]}}
			if err := stream.Send(msg); err != nil {
				return stream.CloseAndRecv() // the server ended the call: get its status
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	return stream.CloseAndRecv()
}

// Read streams an artifact's plaintext into w and returns the first
// message's artifact.
func (e *Env) Read(ctx context.Context, name string, w io.Writer) (*sealgatev1.Artifact, error) {
	stream, err := e.Artifacts.ReadArtifact(ctx, &sealgatev1.ReadArtifactRequest{Name: name})
	if err != nil {
		return nil, err
	}
	var a *sealgatev1.Artifact
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return a, nil
		}
		if err != nil {
			return a, err
		}
		if msg.GetArtifact() != nil {
			a = msg.GetArtifact()
		}
		_, err = w.Write(msg.GetChunk())
		chunks.Release(msg.GetChunk())
		if err != nil {
			return a, err
		}
	}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

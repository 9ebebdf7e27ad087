package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sealgate/sealgate/gateway/gatewaytest"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

func client(t *testing.T, addr string) sealgatev1.ArtifactServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return sealgatev1.NewArtifactServiceClient(conn)
}

// startUpload opens an upload stream and sends its header and n chunks.
func startUpload(t *testing.T, c sealgatev1.ArtifactServiceClient, ctx context.Context, chunk []byte, n int) sealgatev1.ArtifactService_UploadArtifactClient {
	t.Helper()
	s, err := c.UploadArtifact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: &sealgatev1.UploadHeader{
		Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west"}}})
	for i := 0; i < n; i++ {
		if err := s.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: chunk}}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestShutdownFinishesInFlightUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary")
	}
	bin := binaries(t)
	dataDir := t.TempDir()
	p := startProc(t, dataDir, dataDir, bin+"/sealgate", "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	ctx := gatewaytest.WithToken(context.Background(), p.token(t))
	chunk := bytes.Repeat([]byte("in flight "), 100<<10)
	s := startUpload(t, client(t, p.Addr), ctx, chunk, 3)

	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond) // the server is draining now
	for i := 0; i < 3; i++ {
		if err := s.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: chunk}}); err != nil {
			t.Fatalf("send after SIGTERM: %v", err)
		}
	}
	a, err := s.CloseAndRecv()
	if err != nil {
		t.Fatalf("in-flight upload after SIGTERM: %v, want it finished", err)
	}
	if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		t.Fatalf("gateway exit: %v, want 0", err)
	}
	// Restart on the same data and read the upload back.
	p2 := startProc(t, dataDir, dataDir, bin+"/sealgate", "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	env := &gatewaytest.Env{Artifacts: client(t, p2.Addr)}
	var got bytes.Buffer
	if _, err := env.Read(gatewaytest.WithToken(context.Background(), p2.token(t)), a.GetName(), &got); err != nil {
		t.Fatal(err)
	}
	if want := bytes.Repeat(chunk, 6); !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read back %d bytes, want the %d sent across the shutdown", got.Len(), len(want))
	}
}

func TestShutdownGraceOverFailsUploadCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary")
	}
	bin := binaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sealgate.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s/data\nshutdown_grace: 1s\ndev:\n  account: demo\n", dir)), 0o600)
	initConfig(t, bin, cfg)
	p := startProc(t, dir, dir+"/data", bin+"/sealgate", "serve", "--config", cfg)
	ctx := gatewaytest.WithToken(context.Background(), p.token(t))
	s := startUpload(t, client(t, p.Addr), ctx, make([]byte, 512<<10), 2)

	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	// The client stalls past the grace period: the server must cancel the call.
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("gateway exit: %v, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gateway still running 20s after SIGTERM with a 1s grace")
	}
	if _, err := s.CloseAndRecv(); err == nil {
		t.Fatal("stalled upload succeeded after the grace period, want an error")
	}
	var objects []string
	filepath.Walk(filepath.Join(dir, "data", "regions"), func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			objects = append(objects, path)
		}
		return nil
	})
	if len(objects) != 0 {
		t.Fatalf("cancelled upload left %v, want nothing stored", objects)
	}
}

package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// procStatus returns a field of /proc/PID/status in bytes (VmRSS, VmHWM).
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func bearer(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// TestStalledStreamsCannotExhaustTheGateway runs the real binary on its
// embedded defaults. One principal opens 500 reads that stall after one
// message (gRPC's smallest windows) and 500 uploads that go quiet after
// their header. The gateway's RSS must grow by less than 256 MiB, streams
// beyond the caps must be refused with RESOURCE_EXHAUSTED, and meanwhile a
// principal of another account uploads and reads 4 MiB byte-exact.
func TestStalledStreamsCannotExhaustTheGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary")
	}
	bin := binaries(t)
	dataDir := t.TempDir()
	p := startProc(t, dataDir, dataDir, bin+"/sealgate", "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	pid := p.cmd.Process.Pid
	demo := p.token(t)
	out, err := exec.Command(bin+"/sealgate", "token", "issue", "--account", "globex", "--roles", "admin,uploader,reader",
		"--subject", "globex-svc", "--data-dir", dataDir).Output()
	if err != nil {
		t.Fatalf("sealgate token issue: %v", err)
	}
	globex := strings.TrimSpace(string(out))

	// Connections with gRPC's smallest flow-control windows (64 KiB, which
	// also turns off its window growth).
	conns := make([]sealgatev1.ArtifactServiceClient, 8)
	for i := range conns {
		c, err := grpc.NewClient(p.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = sealgatev1.NewArtifactServiceClient(c)
	}
	big := make([]byte, 32<<20)
	for i := range big {
		big[i] = byte(rand.Uint32())
	}
	header := &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west"}
	ctx := bearer(context.Background(), demo)
	a, err := uploadVia(ctx, conns[0], header, big)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readVia(ctx, conns[0], a.GetName()); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("warm-up read: %v", err)
	}
	time.Sleep(time.Second)
	base := procStatus(t, pid, "VmRSS")

	holdCtx, release := context.WithCancel(ctx)
	defer release()
	var readsOpen, readsRefused, uploadsRefused, other atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		c := conns[i%len(conns)]
		wg.Add(2)
		go func() {
			defer wg.Done()
			s, err := c.ReadArtifact(holdCtx, &sealgatev1.ReadArtifactRequest{Name: a.GetName()})
			if err == nil {
				_, err = s.Recv()
			}
			switch {
			case err == nil:
				readsOpen.Add(1) // and never read again
			case status.Code(err) == codes.ResourceExhausted:
				readsRefused.Add(1)
			default:
				other.Add(1)
				t.Logf("read: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			s, err := c.UploadArtifact(holdCtx)
			if err == nil {
				err = s.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: header}})
			}
			if err == nil {
				// Quiet from here on. A refused upload ends at once; an
				// admitted one stays open until the test releases it.
				err = s.RecvMsg(new(sealgatev1.Artifact))
			}
			switch {
			case status.Code(err) == codes.ResourceExhausted:
				uploadsRefused.Add(1)
			case status.Code(err) == codes.Canceled:
			default:
				other.Add(1)
				t.Logf("upload: %v", err)
			}
		}()
	}
	// Let every stream reach its state.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && (readsOpen.Load()+readsRefused.Load() < 500 || uploadsRefused.Load() < 500-32) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)

	// Another account works meanwhile.
	gctx := bearer(context.Background(), globex)
	acct := sealgatev1.NewAccountServiceClient(mustConn(t, p.Addr))
	if _, err := acct.UpdateAccountSettings(gctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings: &sealgatev1.AccountSettings{Name: "accounts/globex/settings", HomeRegion: "us"}}); err != nil {
		t.Fatalf("globex settings: %v", err)
	}
	four := big[:4<<20]
	gc := sealgatev1.NewArtifactServiceClient(mustConn(t, p.Addr))
	ga, err := uploadVia(gctx, gc, header, four)
	if err != nil {
		t.Fatalf("globex upload while demo is stalled: %v", err)
	}
	if got, err := readVia(gctx, gc, ga.GetName()); err != nil || !bytes.Equal(got, four) {
		t.Fatalf("globex read while demo is stalled: %v (byte-exact: %v)", err, bytes.Equal(got, four))
	}

	peak, now := procStatus(t, pid, "VmHWM"), procStatus(t, pid, "VmRSS")
	open := readsOpen.Load() + (500 - uploadsRefused.Load())
	t.Logf("RSS %0.1f MiB before, %0.1f MiB with %d reads and %d uploads held open (peak %0.1f MiB): %.0f KiB per open stream; refused %d reads, %d uploads",
		float64(base)/(1<<20), float64(now)/(1<<20), readsOpen.Load(), 500-uploadsRefused.Load(), float64(peak)/(1<<20),
		float64(now-base)/1024/float64(max(open, 1)), readsRefused.Load(), uploadsRefused.Load())
	if other.Load() != 0 {
		t.Fatalf("%d streams ended with an unexpected error", other.Load())
	}
	if readsOpen.Load() == 0 || readsRefused.Load() == 0 || uploadsRefused.Load() == 0 || uploadsRefused.Load() == 500 {
		t.Fatalf("reads open %d refused %d, uploads refused %d: want the caps to admit some and refuse the rest",
			readsOpen.Load(), readsRefused.Load(), uploadsRefused.Load())
	}
	if growth := now - base; growth >= 256<<20 {
		t.Fatalf("RSS grew %d MiB, want under 256 MiB", growth>>20)
	}
	release()
	wg.Wait()
}

func mustConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func uploadVia(ctx context.Context, c sealgatev1.ArtifactServiceClient, h *sealgatev1.UploadHeader, data []byte) (*sealgatev1.Artifact, error) {
	s, err := c.UploadArtifact(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: h}}); err != nil {
		return s.CloseAndRecv()
	}
	for off := 0; off < len(data); off += 1 << 20 {
		if err := s.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Chunk{Chunk: data[off:min(off+1<<20, len(data))]}}); err != nil {
			return s.CloseAndRecv()
		}
	}
	return s.CloseAndRecv()
}

func readVia(ctx context.Context, c sealgatev1.ArtifactServiceClient, name string) ([]byte, error) {
	s, err := c.ReadArtifact(ctx, &sealgatev1.ReadArtifactRequest{Name: name})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for {
		m, err := s.Recv()
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
		out.Write(m.GetChunk())
	}
}

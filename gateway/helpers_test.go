package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/sealgate/sealgate/gateway/gatewaytest"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

func callHeader(zone string) *sealgatev1.UploadHeader {
	return &sealgatev1.UploadHeader{
		Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: zone,
		ContentType: "audio/wav", EngagementId: "eng-1",
	}
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustUpload(t *testing.T, env *gatewaytest.Env, ctx context.Context, h *sealgatev1.UploadHeader, data []byte) *sealgatev1.Artifact {
	t.Helper()
	a, err := env.Upload(ctx, h, bytes.NewReader(data), 64<<10)
	if err != nil {
		t.Fatalf("upload of %d bytes: %v", len(data), err)
	}
	return a
}

func mustRead(t *testing.T, env *gatewaytest.Env, ctx context.Context, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := env.Read(ctx, name, &buf); err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return buf.Bytes()
}

// wantStatus checks an error's code and ErrorInfo reason ("" skips the reason).
func wantStatus(t *testing.T, what string, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("%s: got %v (%v), want code %v", what, st.Code(), err, code)
	}
	if reason != "" {
		if got := errorReason(st); got != reason {
			t.Fatalf("%s: got reason %q, want %q", what, got, reason)
		}
	}
	return st
}

func errorReason(st *status.Status) string {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

func fieldViolations(st *status.Status) []*errdetails.BadRequest_FieldViolation {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br.GetFieldViolations()
		}
	}
	return nil
}

// objectFiles returns every artifact object file under the data dir.
func objectFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dataDir, "regions")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// objectPath returns the file of an artifact's staged object.
func objectPath(dataDir string, a *sealgatev1.Artifact) string {
	parts := strings.Split(a.GetName(), "/")
	return filepath.Join(dataDir, "regions", a.GetStagingRegion(), "staging", parts[1], parts[3])
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// eventually polls cond for up to 10 seconds.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// createAccount writes settings for a new account through the API.
func createAccount(t *testing.T, env *gatewaytest.Env, account, home string) {
	t.Helper()
	_, err := env.Accounts.UpdateAccountSettings(env.Ctx(t, account, "admin"), &sealgatev1.UpdateAccountSettingsRequest{
		Settings: &sealgatev1.AccountSettings{Name: "accounts/" + account + "/settings", HomeRegion: home},
	})
	if err != nil {
		t.Fatalf("create account %s: %v", account, err)
	}
}

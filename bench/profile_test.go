package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// profileSeconds is how long each profile of SEALGATE_BENCH_PROFILE runs.
const profileSeconds = 10

// profileGateway saves CPU profiles of the gateway process into dir while
// it uploads data over and over (upload.pprof), then while it reads one
// artifact of data over and over (download.pprof). Read them with
// `go tool pprof -top <binary> dir/upload.pprof`.
func (h *harness) profileGateway(t *testing.T, g *gatewayProc, data []byte, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSuffix(g.metricsURL, "/metrics")
	for _, dir2 := range []string{"upload", "download"} {
		done := make(chan error, 1)
		out := filepath.Join(dir, dir2+".pprof")
		go func() {
			resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, profileSeconds))
			if err != nil {
				done <- err
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(out)
			if err != nil {
				done <- err
				return
			}
			_, err = io.Copy(f, resp.Body)
			f.Close()
			done <- err
		}()
		deadline := time.Now().Add(profileSeconds * time.Second)
		if dir2 == "upload" {
			for time.Now().Before(deadline) {
				name, err := h.gatewayUpload(g, data)
				if err != nil {
					t.Fatal(err)
				}
				if err := h.removeStaged(g, name); err != nil {
					t.Fatal(err)
				}
			}
		} else {
			name, err := h.gatewayUpload(g, data)
			if err != nil {
				t.Fatal(err)
			}
			for time.Now().Before(deadline) {
				var w countingWriter
				if _, err := g.client.Read(g.ctx, name, &w); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.removeStaged(g, name); err != nil {
				t.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("profile %s: %v", dir2, err)
		}

		t.Logf("gateway CPU profile while %sing: %s", dir2, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "sealgate"), mustRead(t, h.bin), 0o755); err != nil {
		t.Fatal(err)
	}
}

// gatewayUpload uploads data through g with its size declared and returns
// the artifact's name.
func (h *harness) gatewayUpload(g *gatewayProc, data []byte) (string, error) {
	size := int64(len(data))
	a, err := g.client.Upload(g.ctx, &sealgatev1.UploadHeader{
		Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VIDEO_RECORDING, SipZone: "us-west",
		ContentType: "video/mp4", SizeBytes: &size,
	}, bytes.NewReader(data), uploadChunk)
	if err != nil {
		return "", err
	}
	return a.GetName(), nil
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Package integration holds end-to-end tests that run the real binaries and
// tools: the gateway started with `make run`, grpcurl with reflection only,
// and (in later issues) MinIO, local-kms and Vault as local processes.
package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// grpcurl runs the grpcurl binary against addr with stdin as request data.
func grpcurl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(tool(t, "grpcurl"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestMakeRunAndGrpcurlRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("starts make run and grpcurl")
	}
	dataDir := t.TempDir()
	p := startProc(t, repoRoot(t), dataDir, "make", "-s", "run",
		fmt.Sprintf("ARGS=--listen 127.0.0.1:0 --data-dir %s", dataDir))
	auth := "authorization: Bearer " + p.token(t)

	// Reflection only: no .proto files are given to grpcurl.
	out, err := grpcurl(t, "", "-plaintext", p.Addr, "list")
	if err != nil {
		t.Fatalf("grpcurl list: %v\n%s", err, out)
	}
	for _, svc := range []string{"grpc.health.v1.Health", "sealgate.v1.ArtifactService", "sealgate.v1.AccountService", "sealgate.v1.KeyService"} {
		if !strings.Contains(out, svc+"\n") {
			t.Errorf("grpcurl list = %q, want it to list %s", out, svc)
		}
	}
	out, err = grpcurl(t, "", "-plaintext", p.Addr, "grpc.health.v1.Health/Check")
	if err != nil || !strings.Contains(out, "SERVING") {
		t.Fatalf("health check: %v %s, want SERVING", err, out)
	}

	// Upload in three chunks through grpcurl, then read back.
	const marker = "SSN-078-05-1120"
	var data []byte
	for i := 0; i < 3000; i++ {
		data = append(data, fmt.Sprintf("line %d: caller gave %s\n", i, marker)...)
	}
	var reqs strings.Builder
	reqs.WriteString(`{"header":{"type":"ARTIFACT_TYPE_CALL_TRANSCRIPT","sip_zone":"us-east","content_type":"text/plain"}}`)
	for _, part := range [][]byte{data[:1000], data[1000:50000], data[50000:]} {
		fmt.Fprintf(&reqs, "\n{\"chunk\":%q}", base64.StdEncoding.EncodeToString(part))
	}
	out, err = grpcurl(t, reqs.String(), "-plaintext", "-H", auth, "-d", "@", p.Addr, "sealgate.v1.ArtifactService/UploadArtifact")
	if err != nil {
		t.Fatalf("grpcurl upload: %v\n%s", err, out)
	}
	var art struct {
		Name      string `json:"name"`
		SizeBytes string `json:"sizeBytes"`
	}
	if err := json.Unmarshal([]byte(out), &art); err != nil || !strings.HasPrefix(art.Name, "accounts/demo/artifacts/") {
		t.Fatalf("upload answer %q: %v, want an artifact", out, err)
	}
	if art.SizeBytes != fmt.Sprint(len(data)) {
		t.Errorf("size_bytes = %s, want %d", art.SizeBytes, len(data))
	}
	out, err = grpcurl(t, "", "-plaintext", "-H", auth, "-d", fmt.Sprintf(`{"name":%q}`, art.Name), p.Addr, "sealgate.v1.ArtifactService/ReadArtifact")
	if err != nil {
		t.Fatalf("grpcurl read: %v\n%s", err, out[:min(len(out), 2000)])
	}
	if got := joinChunks(t, out); !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes through grpcurl, want the %d uploaded", len(got), len(data))
	}

	// Errors carry the stable reason in google.rpc.ErrorInfo.
	out, _ = grpcurl(t, "", "-plaintext", "-d", fmt.Sprintf(`{"name":%q}`, art.Name), p.Addr, "sealgate.v1.ArtifactService/GetArtifact")
	if !strings.Contains(out, "Unauthenticated") || !strings.Contains(out, "TOKEN_MISSING") {
		t.Errorf("call without token: %s, want Unauthenticated with TOKEN_MISSING", out)
	}
	out, _ = grpcurl(t, `{"header":{"type":"ARTIFACT_TYPE_CALL_RECORDING","sip_zone":"mars"}}`, "-plaintext", "-H", auth, "-d", "@", p.Addr, "sealgate.v1.ArtifactService/UploadArtifact")
	if !strings.Contains(out, "InvalidArgument") || !strings.Contains(out, "UNKNOWN_SIP_ZONE") {
		t.Errorf("unknown SIP zone: %s, want InvalidArgument with UNKNOWN_SIP_ZONE", out)
	}

	// Stop cleanly, then look for the marker at rest and in every log line.
	// make itself dies of the signal; the gateway must log a clean stop.
	if err := p.stop(syscall.SIGTERM, 30*time.Second); err == context.DeadlineExceeded {
		t.Errorf("SIGTERM: still running after 30s")
	}
	if !strings.Contains(p.Stderr.String(), `msg=stopped`) {
		t.Errorf("gateway did not log a clean stop after SIGTERM:\n%s", p.Stderr)
	}
	assertNoPlaintext(t, dataDir, marker)
	for name, s := range map[string]string{"stdout": p.Stdout.String(), "stderr": p.Stderr.String()} {
		if strings.Contains(s, marker) {
			t.Errorf("gateway %s holds plaintext", name)
		}
	}
	if !strings.Contains(p.Stderr.String(), art.Name) {
		t.Errorf("gateway log never mentions the upload; want operational logging")
	}
}

// joinChunks decodes a stream of ReadArtifactResponse JSON objects as grpcurl
// prints them and concatenates the chunks.
func joinChunks(t *testing.T, out string) []byte {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var all []byte
	for {
		var msg struct {
			Chunk string `json:"chunk"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			return all
		} else if err != nil {
			t.Fatalf("grpcurl output is not JSON messages: %v", err)
		}
		b, err := base64.StdEncoding.DecodeString(msg.Chunk)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
}

// assertNoPlaintext fails when any file under dir contains marker.
func assertNoPlaintext(t *testing.T, dir, marker string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Errorf("%s holds plaintext", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no files under %s: the check proves nothing", dir)
	}
}

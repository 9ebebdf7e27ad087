package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/gatewaytest"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// exampleConfig copies docs/sealgate.minio-3-regions.example.yaml to
// root/docs/, pointed at this test's MinIO servers and free ports.
func exampleConfig(t *testing.T, rs *regionSet, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "sealgate.minio-3-regions.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for r, port := range map[string]string{"us": "127.0.0.1:9000", "de": "127.0.0.1:9100", "jp": "127.0.0.1:9200"} {
		s = strings.ReplaceAll(s, port, rs.minio[r].Endpoint)
		s = strings.ReplaceAll(s, "sealgate-"+r+"\n", bucketOf(r)+"\n")
	}
	s = strings.ReplaceAll(s, "127.0.0.1:9464", "127.0.0.1:0")
	s = strings.ReplaceAll(s, "127.0.0.1:7443", "127.0.0.1:0")
	if err := os.MkdirAll(filepath.Join(root, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "docs", "sealgate.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExampleConfigUsesOneDataDir starts the example config from two working
// directories and by absolute path: every start must use the same data
// directory (next to docs/, as the file says), and so the same keys.
func TestExampleConfigUsesOneDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO and the gateway binary")
	}
	rs := startRegions(t)
	bin := binaries(t)
	root := t.TempDir()
	cfg := exampleConfig(t, rs, root)
	dataDir := filepath.Join(root, ".sealgate-minio")
	runIn := func(dir string, args ...string) ([]byte, error) {
		cmd := exec.Command(bin+"/sealgate", args...)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	if out, err := runIn(root, "init", "--config", "docs/sealgate.yaml"); err != nil {
		t.Fatalf("sealgate init: %v\n%s", err, out)
	}
	if out, err := runIn(root, "check-config", "--config", "docs/sealgate.yaml"); err != nil {
		t.Fatalf("sealgate check-config: %v\n%s", err, out)
	}
	data := bytes.Repeat([]byte("one data dir "), 10000)
	var name string
	for i, start := range []struct{ dir, cfg string }{
		{root, "docs/sealgate.yaml"},
		{filepath.Join(root, "docs"), "sealgate.yaml"},
		{"/", cfg},
	} {
		p := startProc(t, start.dir, dataDir, bin+"/sealgate", "serve", "--config", start.cfg)
		ctx := gatewaytest.WithToken(context.Background(), p.token(t))
		c := sealgatev1.NewArtifactServiceClient(mustConn(t, p.Addr))
		if i == 0 {
			a, err := uploadVia(ctx, c, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, SipZone: "de-fra"}, data)
			if err != nil {
				t.Fatalf("upload: %v", err)
			}
			name = a.GetName()
		}
		got, err := readVia(ctx, c, name)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("start %d (in %s with %s): read of the first start's artifact: %v", i, start.dir, start.cfg, err)
		}
		if err := p.stop(syscall.SIGTERM, 30*time.Second); err != nil {
			t.Fatalf("stop: %v", err)
		}
	}
	var dirs []string
	filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && strings.HasPrefix(fi.Name(), ".sealgate") {
			dirs = append(dirs, path)
		}
		return nil
	})
	if len(dirs) != 1 || dirs[0] != dataDir {
		t.Fatalf("data dirs %v, want only %s", dirs, dataDir)
	}
}

// TestMissingProviderKeyStopsStartUp: with a config file, a missing key is
// never created by serve; start-up fails and names the path.
func TestMissingProviderKeyStopsStartUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the gateway binary")
	}
	bin := binaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sealgate.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\ndata_dir: data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin+"/sealgate", "serve", "--config", cfg)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	keyPath := filepath.Join(dir, "data", "keys", "provider.keyset.json")
	if err == nil || !strings.Contains(string(out), keyPath) || !strings.Contains(string(out), "sealgate init") {
		t.Fatalf("serve without a provider key: %v\n%s\nwant a failure naming %s and sealgate init", err, out, keyPath)
	}
	if _, err := os.Stat(keyPath); !os.IsNotExist(err) {
		t.Fatalf("serve created %s: %v", keyPath, err)
	}
	var created []string
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.Contains(path, "key") {
			created = append(created, path)
		}
		return nil
	})
	if len(created) != 0 {
		t.Fatalf("serve created key files %v", created)
	}
}

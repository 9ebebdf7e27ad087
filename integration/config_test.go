package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

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

// TestTwoGatewaysLoseNoSettingsUpdate: two gateway processes over one
// control store on MinIO take 50 concurrent read-modify-write updates each,
// every one with the etag it read and retrying on ABORTED; at the end every
// update is there.
func TestTwoGatewaysLoseNoSettingsUpdate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MinIO and two gateway binaries")
	}
	rs := startRegions(t)
	bin := binaries(t)
	dir := t.TempDir()
	cfg := rs.yaml(t, dir+"/data", fmt.Sprintf("control: {endpoint: %q, bucket: sealgate-control, access_key_env: MINIO_US_ACCESS_KEY, secret_key_env: MINIO_US_SECRET_KEY}\n", rs.minio["us"].Endpoint))
	initConfig(t, bin, cfg)
	var accts []sealgatev1.AccountServiceClient
	var tok string
	for i := 0; i < 2; i++ {
		p := startProc(t, dir, dir+"/data", bin+"/sealgate", "serve", "--config", cfg, "--roles", "api")
		tok = p.token(t)
		accts = append(accts, sealgatev1.NewAccountServiceClient(mustConn(t, p.Addr)))
	}
	ctx := gatewaytest.WithToken(context.Background(), tok)
	const n = 50
	var wg sync.WaitGroup
	var retries atomic.Int64
	for g := range accts {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(c sealgatev1.AccountServiceClient, q string) {
				defer wg.Done()
				for attempt := 0; attempt < 200; attempt++ {
					cur, err := c.GetAccountSettings(ctx, &sealgatev1.GetAccountSettingsRequest{Name: "accounts/demo/settings"})
					if err != nil {
						t.Errorf("get: %v", err)
						return
					}
					queues := cur.GetQueueStorageRegions()
					if queues == nil {
						queues = map[string]string{}
					}
					queues[q] = "de"
					_, err = c.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
						Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", QueueStorageRegions: queues, Etag: cur.GetEtag()},
						UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"queue_storage_regions"}},
					})
					if status.Code(err) == codes.Aborted {
						retries.Add(1)
						continue
					}
					if err != nil {
						t.Errorf("update %s: %v", q, err)
					}
					return
				}
				t.Errorf("update %s: still ABORTED after 200 attempts", q)
			}(accts[g], fmt.Sprintf("g%d-q%02d", g, i))
		}
	}
	wg.Wait()
	got, err := accts[0].GetAccountSettings(ctx, &sealgatev1.GetAccountSettingsRequest{Name: "accounts/demo/settings"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d updates through two gateways, %d retried after ABORTED", 2*n, retries.Load())
	if len(got.GetQueueStorageRegions()) != 2*n {
		t.Fatalf("queues after %d updates: %d, want every one", 2*n, len(got.GetQueueStorageRegions()))
	}
}

package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// TestUploadRetriedOnAnotherGatewayAfterAKill: an upload's gateway is
// SIGKILLed after the store write and before its answer; `sealctl upload`
// retried with the same request id on a second gateway (over the same
// stores) ends with exactly one artifact: the first one when the first
// gateway had marked the request stored, a new one (and nothing of the
// first) when it had not.
func TestUploadRetriedOnAnotherGatewayAfterAKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two gateway binaries")
	}
	bin := binaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sealgate.yaml")
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s/data\nupload_request_lease: 2s\n"+
		"regions: {us: {path: %s/data/regions/us}, de: {path: %s/data/regions/de}}\nsip_zones: {us-west: us, de-fra: de}\ndev: {account: demo}\n", dir, dir, dir)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	initConfig(t, bin, cfg)
	data := bytes.Repeat([]byte("idempotent upload "), 100000)
	file := filepath.Join(dir, "call.raw")
	os.WriteFile(file, data, 0o600)
	paused := regexp.MustCompile(`paused at (\S+) (\S+)`)

	for _, step := range []string{gateway.UploadStepWritten, gateway.UploadStepStored} {
		engagement := "kill-" + step
		requestID := "3f1d5c1e-0000-4000-8000-" + fmt.Sprintf("%012d", len(step))
		first, m := startProcUntil(t, dir, dir+"/data", readyRE, []string{"SEALGATE_UPLOAD_PAUSE_AT=" + step},
			bin+"/sealgate", "serve", "--config", cfg, "--roles", "api")
		first.Addr = m[1]
		sealctl := func(addr string, args ...string) *exec.Cmd {
			cmd := exec.Command(bin+"/sealctl", append([]string{"upload", "--addr", addr, "--type", "CALL_RECORDING",
				"--sip-zone", "de-fra", "--engagement", engagement, "--request-id", requestID, "--progress=false"}, args...)...)
			cmd.Env = append(os.Environ(), "SEALGATE_TOKEN="+first.token(t))
			return cmd
		}
		// The first attempt pauses where the kill will hit it.
		attempt := sealctl(first.Addr, "--retries", "0", file)
		if err := attempt.Start(); err != nil {
			t.Fatal(err)
		}
		var name string
		for deadline := time.Now().Add(30 * time.Second); name == ""; time.Sleep(20 * time.Millisecond) {
			if m := paused.FindStringSubmatch(first.Stdout.String()); m != nil && m[1] == step {
				name = m[2]
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the first gateway did not pause\n%s", step, first.Stderr)
			}
		}
		first.kill()
		<-first.done
		attempt.Wait()

		second := startProc(t, dir, dir+"/data", bin+"/sealgate", "serve", "--config", cfg, "--roles", "api,mover,sweeper")
		out, err := sealctl(second.Addr, file).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: retry on the second gateway: %v\n%s", step, err, out)
		}
		got := strings.TrimSpace(string(out)[strings.LastIndex(strings.TrimSpace(string(out)), "\n")+1:])
		if step == gateway.UploadStepStored && got != name {
			t.Errorf("%s: the retry stored %s, want the first artifact %s", step, got, name)
		}
		ctx := bearer(context.Background(), second.token(t))
		conn := mustConn(t, second.Addr)
		resp, err := sealgatev1.NewArtifactServiceClient(conn).ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo", EngagementId: engagement})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetArtifacts()) != 1 || resp.GetArtifacts()[0].GetName() != got {
			t.Fatalf("%s: artifacts %v, want only %s", step, resp.GetArtifacts(), got)
		}
		if b, err := readVia(ctx, sealgatev1.NewArtifactServiceClient(conn), got); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("%s: read %d bytes, %v", step, len(b), err)
		}
		// Nothing of a first attempt that was not kept is left on disk.
		id := strings.TrimPrefix(name, "accounts/demo/artifacts/")
		if got != name {
			filepath.Walk(filepath.Join(dir, "data"), func(p string, fi os.FileInfo, err error) error {
				if err == nil && strings.Contains(p, id) {
					t.Errorf("%s: the first attempt left %s", step, p)
				}
				return nil
			})
		}
		conn.Close()
		second.kill()
		<-second.done
	}
}

package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeExamples returns the grpcurl examples of README.md: the shell block
// after the grpcurl-examples marker, as paragraphs (commands separated by
// blank lines).
func readmeExamples(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- grpcurl-examples")
	if !ok {
		t.Fatal("README.md has no grpcurl-examples marker")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	block, _, ok2 := strings.Cut(rest, "\n```")
	if !ok || !ok2 {
		t.Fatal("README.md: no sh block after the grpcurl-examples marker")
	}
	var out []string
	for _, p := range strings.Split(block, "\n\n") {
		if strings.Contains(p, "grpcurl") || strings.Contains(p, "TOKEN=") {
			out = append(out, p)
		}
	}
	return out
}

// TestReadmeGrpcurlExamples runs every grpcurl example of the README against
// the gateway `make run` starts, in order, as a user would paste them.
func TestReadmeGrpcurlExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("starts make run and grpcurl")
	}
	examples := readmeExamples(t)
	if len(examples) < 6 {
		t.Fatalf("found %d examples in the README, want at least 6", len(examples))
	}
	work := t.TempDir()
	dataDir := filepath.Join(work, ".sealgate")
	p := startProc(t, repoRoot(t), dataDir, "make", "-s", "run", "ARGS=--listen 127.0.0.1:0 --data-dir "+dataDir)
	grpcurlDir := filepath.Dir(tool(t, "grpcurl"))
	id := ""
	seen := map[string]bool{}
	for _, ex := range examples {
		script := strings.ReplaceAll(ex, "127.0.0.1:7443", p.Addr)
		if strings.Contains(script, "<ID>") && !strings.Contains(ex, "UploadArtifact") {
			if id == "" {
				t.Fatalf("example needs <ID> before any upload printed one:\n%s", ex)
			}
		}
		script = strings.ReplaceAll(script, "<ID>", id) // in comments too
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "PATH="+grpcurlDir+":"+os.Getenv("PATH"), "TOKEN="+p.token(t))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README example failed: %v\n%s\noutput:\n%s", err, ex, out)
		}
		for _, m := range []string{"UploadArtifact", "ReadArtifact", "ListArtifacts", "GetAccountSettings", "UpdateAccountSettings", "CheckKeyAccess", " list"} {
			if strings.Contains(ex, m) {
				seen[m] = true
			}
		}
		if strings.Contains(ex, "UploadArtifact") {
			var a struct{ Name string }
			if err := json.Unmarshal(out, &a); err != nil || !strings.HasPrefix(a.Name, "accounts/demo/artifacts/") {
				t.Fatalf("upload example printed %q, want an artifact", out)
			}
			id = strings.TrimPrefix(a.Name, "accounts/demo/artifacts/")
		}
		if strings.Contains(ex, "UpdateAccountSettings") && !strings.Contains(string(out), `"storageRegion": "de"`) {
			t.Fatalf("UpdateAccountSettings example did not change the storage region:\n%s", out)
		}
		if strings.Contains(ex, "TestBlockingRule") && !strings.Contains(string(out), `"matched": true`) {
			t.Fatalf("TestBlockingRule example did not match its sample:\n%s", out)
		}
		if strings.Contains(ex, "privacy_policy") && strings.Contains(ex, "UpdateAccountSettings") && !strings.Contains(string(out), `"id": "no-cards"`) {
			t.Fatalf("the privacy example did not save its rule:\n%s", out)
		}
	}
	for _, m := range []string{"UploadArtifact", "ReadArtifact", "ListArtifacts", "GetAccountSettings", "UpdateAccountSettings", "CheckKeyAccess", " list"} {
		if !seen[m] {
			t.Errorf("the README has no grpcurl example of %s", m)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/local"
)

func sealFile(t *testing.T, keyDir, path string, plain []byte) {
	t.Helper()
	w, err := local.Open(keyDir, "provider")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc, _, err := keys.Seal(context.Background(), &buf, keys.SealParams{
		Context: keys.EncryptionContext{keys.ContextAccount: "demo", keys.ContextArtifact: "x1", keys.ContextType: "CALL_RECORDING", keys.ContextRegion: "us"},
		Mode:    keys.ModeProvider, KEKs: []keys.Wrapper{w},
	})
	if err != nil {
		t.Fatal(err)
	}
	enc.Write(plain)
	enc.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDecryptOffline(t *testing.T) {
	dir := t.TempDir()
	keyDir, obj := filepath.Join(dir, "keys"), filepath.Join(dir, "obj")
	plain := bytes.Repeat([]byte("offline decrypt "), 50000)
	sealFile(t, keyDir, obj, plain)

	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	if code := a.main(context.Background(), []string{"decrypt", "--key-dir", keyDir, "--expect", "accounts/demo/artifacts/x1", obj}); code != exitOK {
		t.Fatalf("decrypt exit %d, stderr %s; want 0", code, stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), plain) {
		t.Fatalf("decrypt wrote %d bytes, want the %d sealed", stdout.Len(), len(plain))
	}
	if !strings.Contains(stderr.String(), `account "demo"`) {
		t.Errorf("stderr %q does not describe the object", stderr.String())
	}

	// Another artifact's name, and a tampered object: exit 1, no output file.
	stdout.Reset()
	if code := a.main(context.Background(), []string{"decrypt", "--key-dir", keyDir, "--expect", "accounts/demo/artifacts/x2", obj}); code != exitError {
		t.Fatalf("decrypt with the wrong --expect: exit %d, want 1", code)
	}
	b, _ := os.ReadFile(obj)
	b[len(b)-5] ^= 1
	os.WriteFile(obj, b, 0o600)
	out := filepath.Join(dir, "plain")
	if code := a.main(context.Background(), []string{"decrypt", "--key-dir", keyDir, "-o", out, obj}); code != exitError {
		t.Fatalf("decrypt of a tampered object: exit %d, want 1", code)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("tampered decrypt left %s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*.partial-*")); len(left) != 0 {
		t.Fatalf("tampered decrypt left %v", left)
	}
}

// namedAs is a local key that claims another key URI, so that a test can
// write an object whose header names any host.
type namedAs struct {
	keys.Wrapper
	uri string
}

func (n namedAs) KeyURI() string { return n.uri }

// Wrap makes a share that looks like a Vault ciphertext.
func (n namedAs) Wrap(ctx context.Context, pt []byte, ec keys.EncryptionContext) ([]byte, error) {
	return []byte("vault:v1:" + strings.Repeat("A", 40)), nil
}

func TestDecryptCallsOnlyEndpointsItWasGiven(t *testing.T) {
	var hits atomic.Int64
	var tokens sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		tokens.Store(r.Header.Get("X-Vault-Token"), true)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	dir := t.TempDir()
	w, err := local.Open(dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	var buf bytes.Buffer
	enc, _, err := keys.Seal(context.Background(), &buf, keys.SealParams{
		Context: keys.EncryptionContext{keys.ContextAccount: "demo", keys.ContextArtifact: "x1", keys.ContextType: "CALL_RECORDING", keys.ContextRegion: "us"},
		Mode:    keys.ModeCustomer, KEKs: []keys.Wrapper{namedAs{w, "hcvault://" + host + "/transit/keys/x"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	enc.Write([]byte("content"))
	enc.Close()
	obj := filepath.Join(dir, "obj")
	if err := os.WriteFile(obj, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	a, _, stderr := testApp(map[string]string{"VAULT_TOKEN": "s.operator-token", "VAULT_ADDR": srv.URL})
	if code := a.main(context.Background(), []string{"decrypt", "--key-dir", dir, obj}); code != exitError {
		t.Fatalf("decrypt of an object naming an unlisted Vault host: exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "not allowed") && !strings.Contains(stderr.String(), "not registered") {
		t.Errorf("stderr %q, want it to say the endpoint is not allowed", stderr)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the host named in the header got %d requests, want none", n)
	}
	// Named by flag, the server is called, with the operator's token.
	a, _, stderr = testApp(map[string]string{"VAULT_TOKEN": "s.operator-token"})
	a.main(context.Background(), []string{"decrypt", "--key-dir", dir, "--vault", srv.URL, obj})
	if _, ok := tokens.Load("s.operator-token"); hits.Load() == 0 || !ok {
		t.Fatalf("with --vault %s: %d requests (%s), want the operator's token sent there", srv.URL, hits.Load(), stderr)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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
	if _, err := os.Stat(out + ".partial"); err == nil {
		t.Fatalf("tampered decrypt left %s.partial", out)
	}
}

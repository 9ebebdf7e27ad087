package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestLoadOrCreateSigningKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "keys")
	path := filepath.Join(dir, "signing.pem")

	created, err := LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatalf("create: got error %v, want nil", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("key file mode: got %o, want 600", got)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("key directory mode: got %o, want 700", got)
	}

	reloaded, err := LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatalf("reload: got error %v, want nil", err)
	}
	if !created.Equal(reloaded) {
		t.Errorf("reloaded key: got a different key, want the one created")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("key directory: got %d entries, want 1 (no temporary files left)", len(entries))
	}

	pub, err := LoadPublicKey(path)
	if err != nil {
		t.Fatalf("LoadPublicKey(private PEM): got error %v, want nil", err)
	}
	if !pub.Equal(created.Public()) {
		t.Errorf("LoadPublicKey(private PEM): got a different key, want the derived public key")
	}
}

func TestLoadOrCreateSigningKeyConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signing.pem")
	const n = 8
	keys := make([]ed25519.PrivateKey, n)
	errs := make([]error, n)
	var start, wg sync.WaitGroup
	start.Add(1)
	for i := range n {
		wg.Go(func() {
			start.Wait()
			keys[i], errs[i] = LoadOrCreateSigningKey(path)
		})
	}
	start.Done()
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("goroutine %d: got error %v, want nil", i, errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Errorf("goroutine %d: got a different key from goroutine 0, want the same", i)
		}
	}
	onDisk, err := LoadOrCreateSigningKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !onDisk.Equal(keys[0]) {
		t.Errorf("key on disk: got a different key, want the one all goroutines returned")
	}
}

func TestPublicKeyFile(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "signing.pub")
	if err := WritePublicKey(path, pub); err != nil {
		t.Fatalf("WritePublicKey: got error %v, want nil", err)
	}
	got, err := LoadPublicKey(path)
	if err != nil {
		t.Fatalf("LoadPublicKey: got error %v, want nil", err)
	}
	if !got.Equal(pub) {
		t.Errorf("LoadPublicKey: got a different key, want the one written")
	}

	// A verifier built from the file accepts tokens of the matching issuer.
	iss, err := NewIssuer(priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(got)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Issue(Principal{Subject: "svc", Account: "demo", Roles: AllRoles()}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("Verify with loaded key: got %v, want nil", err)
	}

	if err := WritePublicKey(path, pub[:10]); err == nil {
		t.Errorf("WritePublicKey(short key): got nil error, want one")
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		load func() error
	}{
		{"signing key garbage", func() error { _, err := LoadOrCreateSigningKey(garbage); return err }},
		{"public key garbage", func() error { _, err := LoadPublicKey(garbage); return err }},
		{"public key missing", func() error { _, err := LoadPublicKey(filepath.Join(dir, "nope.pem")); return err }},
	}
	for _, tt := range tests {
		err := tt.load()
		if err == nil {
			t.Errorf("%s: got nil error, want one", tt.name)
			continue
		}
		if got := err.Error(); len(got) < 6 || got[:6] != "auth: " {
			t.Errorf("%s: got error %q, want prefix %q", tt.name, got, "auth: ")
		}
	}
}

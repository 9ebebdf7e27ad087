package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/policy"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sealgate.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	c := Default()
	if c.Listen != "127.0.0.1:7443" || c.Keys.ProviderKeyURI != "local://provider" || c.Keys.RevocationBound != 30*time.Second {
		t.Fatalf("defaults = %+v", c)
	}
	if len(c.Regions) != len(policy.Regions) || c.Dev.Account != "demo" {
		t.Fatalf("default regions %d, dev account %q; want all %d regions and demo", len(c.Regions), c.Dev.Account, len(policy.Regions))
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
}

func TestLoadIsStrictAndResolvesPaths(t *testing.T) {
	p := writeConfig(t, "listen: 127.0.0.1:0\ndata_dir: data\nregions:\n  us: {path: us}\n  de: {path: /abs/de}\nsip_zones:\n  us-west: us\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if c.DataDir != filepath.Join(dir, "data") || c.Regions["us"].Path != filepath.Join(dir, "us") || c.Regions["de"].Path != "/abs/de" {
		t.Fatalf("paths not resolved against the config's folder: %+v", c)
	}
	if len(c.Regions) != 2 {
		t.Fatalf("regions = %v, want only the two configured", c.Regions)
	}
	for body, want := range map[string]string{
		"listn: x\n":                  "field listn not found",
		"regions:\n  xx: {path: a}\n": `"xx" is not a region`,
		"regions:\n  us: {path: a}\nsip_zones:\n  z: de\n": `region "de" is not configured`,
		"log_level: loud\n": "log_level",
	} {
		_, err := Load(writeConfig(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: got %v, want an error containing %q", body, err, want)
		}
	}
}

func TestBuildAndDevAccount(t *testing.T) {
	c := Embedded(t.TempDir())
	c.ApplyDefaults()
	ctx := context.Background()
	rt, err := Build(ctx, c, c.NewLogger(os.Stderr))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	tok, err := rt.EnsureDevAccount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := rt.Verifier.Verify(tok)
	if err != nil || p.Account != "demo" || len(p.Roles) != 5 {
		t.Fatalf("dev token: %+v, %v; want account demo with every role", p, err)
	}
	fi, err := os.Stat(c.Dev.TokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev token file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	s, err := rt.Settings.Get(ctx, "demo")
	if err != nil || s.GetHomeRegion() != "us" {
		t.Fatalf("demo settings %v, %v; want home region us", s, err)
	}
	// A second start keeps the same signing key: old tokens stay valid.
	rt2, err := Build(ctx, c, c.NewLogger(os.Stderr))
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	if _, err := rt2.Verifier.Verify(tok); err != nil {
		t.Fatalf("token from the first start rejected after restart: %v", err)
	}
}

func TestExampleConfigsLoad(t *testing.T) {
	c, err := Load("../../docs/sealgate.minio-3-regions.example.yaml")
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	if len(c.Regions) != 3 || c.Regions["de"].Endpoint != "127.0.0.1:9100" || c.SIPZones["jp-tyo"] != "jp" || c.Control.Bucket != "sealgate-control" {
		t.Fatalf("example config parsed as %+v", c)
	}
}

func TestStoreNeedsOneKind(t *testing.T) {
	for body, want := range map[string]string{
		"regions:\n  us: {path: a, endpoint: 'h:1'}\n":   "either path or endpoint",
		"regions:\n  us: {endpoint: 'h:1', bucket: b}\n": "access_key_env",
		"regions:\n  us: {bucket: b}\n":                  "a path or an endpoint",
		"control: {endpoint: 'h:1', bucket: b}\n":        "access_key_env",
	} {
		_, err := Load(writeConfig(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: got %v, want an error containing %q", body, err, want)
		}
	}
}

// A Vault server several accounts share needs a key prefix naming the
// account, since its one token opens every key on it.
func TestSharedVaultServerNeedsAKeyPrefix(t *testing.T) {
	for body, want := range map[string]string{
		"keys:\n  vault:\n    - {address: 'https://v:8200', accounts: ['*']}\n":                               "needs key_prefix",
		"keys:\n  vault:\n    - {address: 'https://v:8200', accounts: [acme, globex]}\n":                      "needs key_prefix",
		"keys:\n  vault:\n    - {address: 'https://v:8200', accounts: ['*'], key_prefix: 'sg-'}\n":            "key_prefix",
		"keys:\n  vault:\n    - {address: 'https://v:8200', accounts: ['*'], key_prefix: '{account}-'}\n":     "key_prefix",
		"keys:\n  vault:\n    - {address: 'https://v:8200', accounts: ['*'], key_prefix: '{account}.'}\n":     "",
		"keys:\n  vault:\n    - {address: 'https://v:8200', accounts: [acme], key_prefix: 'sg_{account}_'}\n": "",
		"keys:\n  vault:\n    - {address: 'https://v:8200', accounts: [acme]}\n":                              "",
	} {
		_, err := Load(writeConfig(t, body))
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("config %q: got %v, want an error containing %q", body, err, want)
		}
	}
}

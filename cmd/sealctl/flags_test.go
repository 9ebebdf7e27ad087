package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// testApp returns an app whose streams are buffers and whose environment is
// env.
func testApp(env map[string]string) (*app, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return &app{
		stdin:  strings.NewReader(""),
		stdout: &stdout,
		stderr: &stderr,
		getenv: func(k string) string { return env[k] },
	}, &stdout, &stderr
}

// fakeJWT returns an unsigned token whose payload is the JSON payload.
func fakeJWT(payload string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString([]byte("signature"))
}

// padPayload adds base64 padding to the payload of token, as some issuers
// wrongly do.
func padPayload(token string) string {
	parts := strings.Split(token, ".")
	parts[1] += strings.Repeat("=", (4-len(parts[1])%4)%4)
	return strings.Join(parts, ".")
}

func TestParseArtifactType(t *testing.T) {
	tests := []struct {
		in      string
		want    sealgatev1.ArtifactType
		wantErr bool
	}{
		{in: "CALL_RECORDING", want: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING},
		{in: "ARTIFACT_TYPE_CALL_RECORDING", want: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING},
		{in: "call_recording", want: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING},
		{in: "artifact_type_sms_message", want: sealgatev1.ArtifactType_ARTIFACT_TYPE_SMS_MESSAGE},
		{in: "audio-survey", want: sealgatev1.ArtifactType_ARTIFACT_TYPE_AUDIO_SURVEY},
		{in: "UNSPECIFIED", wantErr: true},
		{in: "ARTIFACT_TYPE_UNSPECIFIED", wantErr: true},
		{in: "", wantErr: true},
		{in: "RECORDING", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseArtifactType(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("parseArtifactType(%q) = %v, want an error", tt.in, got)
			} else if !strings.Contains(err.Error(), "CALL_RECORDING") {
				t.Errorf("parseArtifactType(%q) error = %q, want it to list the valid types", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseArtifactType(%q) = %v, %v; want %v, nil", tt.in, got, err, tt.want)
		}
	}
}

func TestLabelsFlag(t *testing.T) {
	a, _, _ := testApp(nil)
	fs, _ := a.newFlagSet("upload", "upload")
	labels := labelsFlag{}
	fs.Var(labels, "label", "")
	if _, err := parseArgs(fs, []string{"--label", "k=v", "--label=site=a=b", "--label", "empty="}); err != nil {
		t.Fatalf("parseArgs: %v", err)
	}
	want := map[string]string{"k": "v", "site": "a=b", "empty": ""}
	if len(labels) != len(want) {
		t.Fatalf("labels = %v, want %v", labels, want)
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("labels[%q] = %q, want %q", k, labels[k], v)
		}
	}
	if got, want := labels.String(), "empty=,k=v,site=a=b"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, bad := range []string{"novalue", "=v", "k=again"} {
		if err := labels.Set(bad); err == nil {
			t.Errorf("Set(%q) = nil, want an error", bad)
		}
	}
}

func TestJWTAccount(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		want    string
		wantErr bool
	}{
		{name: "claim", token: fakeJWT(`{"sub":"dev","account":"demo","roles":["admin"]}`), want: "demo"},
		{name: "padded payload", token: padPayload(fakeJWT(`{"account":"acmes"}`)), want: "acmes"},
		{name: "no claim", token: fakeJWT(`{"sub":"dev"}`), wantErr: true},
		{name: "not a JWT", token: "opaque-token", wantErr: true},
		{name: "bad base64", token: "a.!!!.c", wantErr: true},
		{name: "not JSON", token: "a." + base64.RawURLEncoding.EncodeToString([]byte("[1]")) + ".c", wantErr: true},
	}
	for _, tt := range tests {
		got, err := jwtAccount(tt.token)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%s: jwtAccount = %q, want an error", tt.name, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: jwtAccount = %q, %v; want %q, nil", tt.name, got, err, tt.want)
		}
	}
}

func TestClientAccount(t *testing.T) {
	c := &client{token: fakeJWT(`{"account":"demo"}`)}
	if got, err := c.account(); err != nil || got != "demo" {
		t.Errorf("account() = %q, %v; want demo, nil", got, err)
	}
	if got, err := c.artifactName("abc-usus"); err != nil || got != "accounts/demo/artifacts/abc-usus" {
		t.Errorf("artifactName(bare id) = %q, %v; want accounts/demo/artifacts/abc-usus", got, err)
	}
	c.acct = "acme"
	if got, err := c.account(); err != nil || got != "acme" {
		t.Errorf("account() with --account = %q, %v; want acme, nil", got, err)
	}
	opaque := &client{token: "opaque"}
	if got, err := opaque.artifactName("accounts/x/artifacts/y"); err != nil || got != "accounts/x/artifacts/y" {
		t.Errorf("artifactName(full name) = %q, %v; want it unchanged without decoding the token", got, err)
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantOut string
	}{
		{args: []string{"NAME", "-o", "FILE"}, wantPos: []string{"NAME"}, wantOut: "FILE"},
		{args: []string{"-o", "FILE", "NAME"}, wantPos: []string{"NAME"}, wantOut: "FILE"},
		{args: []string{"-"}, wantPos: []string{"-"}},
		{args: []string{"--", "-o", "x"}, wantPos: []string{"-o", "x"}},
		{args: []string{"A", "--", "-o"}, wantPos: []string{"A", "-o"}},
	}
	for _, tt := range tests {
		a, _, _ := testApp(nil)
		fs, _ := a.newFlagSet("read", "read")
		out := fs.String("o", "", "")
		pos, err := parseArgs(fs, tt.args)
		if err != nil {
			t.Errorf("parseArgs(%q): %v", tt.args, err)
			continue
		}
		if !slices.Equal(pos, tt.wantPos) || *out != tt.wantOut {
			t.Errorf("parseArgs(%q) = %q, -o %q; want %q, -o %q", tt.args, pos, *out, tt.wantPos, tt.wantOut)
		}
	}
}

func TestResolveToken(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env-token")
	flagFile := filepath.Join(dir, "flag-token")
	os.WriteFile(envFile, []byte("from-env-file\n"), 0o600)
	os.WriteFile(flagFile, []byte("  from-flag-file  \n"), 0o600)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "flag", env: map[string]string{envToken: "env"}, args: []string{"--token", "flag"}, want: "flag"},
		{name: "env token", env: map[string]string{envToken: "env", envTokenFile: envFile}, want: "env"},
		{name: "env file", env: map[string]string{envTokenFile: envFile}, want: "from-env-file"},
		{name: "flag file beats env token", env: map[string]string{envToken: "env"},
			args: []string{"--token-file", flagFile}, want: "from-flag-file"},
	}
	for _, tt := range tests {
		a, _, _ := testApp(tt.env)
		fs, g := a.newFlagSet("stat", "stat")
		if _, err := parseArgs(fs, tt.args); err != nil {
			t.Fatalf("%s: parseArgs: %v", tt.name, err)
		}
		got, err := g.resolveToken()
		if err != nil || got != tt.want {
			t.Errorf("%s: resolveToken = %q, %v; want %q, nil", tt.name, got, err, tt.want)
		}
	}

	a, _, _ := testApp(map[string]string{envTokenFile: filepath.Join(dir, "missing")})
	fs, g := a.newFlagSet("stat", "stat")
	parseArgs(fs, nil)
	if _, err := g.resolveToken(); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Errorf("resolveToken with a missing file = %v, want a \"no token\" error", err)
	}
}

func TestGlobalDefaults(t *testing.T) {
	a, _, _ := testApp(nil)
	fs, g := a.newFlagSet("stat", "stat")
	parseArgs(fs, nil)
	if g.addr != defaultAddr || g.tokenFile != defaultTokenFile || g.timeout != defaultTimeout || g.tls {
		t.Errorf("defaults = %q %q %v %v; want %q %q %v false", g.addr, g.tokenFile, g.timeout, g.tls,
			defaultAddr, defaultTokenFile, defaultTimeout)
	}
	a, _, _ = testApp(map[string]string{envAddr: "127.0.0.1:9"})
	fs, g = a.newFlagSet("stat", "stat")
	parseArgs(fs, nil)
	if g.addr != "127.0.0.1:9" {
		t.Errorf("addr with %s set = %q, want 127.0.0.1:9", envAddr, g.addr)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7443":      true,
		"localhost:7443":      true,
		"[::1]:7443":          true,
		"127.1.2.3:1":         true,
		"10.0.0.1:7443":       false,
		"gateway.example:443": false,
		"[2001:db8::1]:443":   false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte(fakeJWT(`{"account":"demo"}`)), 0o600)
	env := map[string]string{envTokenFile: tokenFile}
	tests := []struct {
		args    []string
		want    int
		wantErr string
	}{
		{args: nil, want: exitUsage},
		{args: []string{"frobnicate"}, want: exitUsage, wantErr: "unknown command"},
		{args: []string{"upload", "--sip-zone", "us-west", "f"}, want: exitUsage, wantErr: "--type is required"},
		{args: []string{"upload", "--type", "CALL_RECORDING", "f"}, want: exitUsage, wantErr: "--sip-zone is required"},
		{args: []string{"upload", "--type", "nope", "--sip-zone", "z", "f"}, want: exitUsage, wantErr: "unknown value"},
		{args: []string{"upload", "--type", "CALL_RECORDING", "--sip-zone", "z"}, want: exitUsage, wantErr: "exactly one FILE"},
		{args: []string{"upload", "--bogus"}, want: exitUsage, wantErr: "flag provided but not defined"},
		{args: []string{"read"}, want: exitUsage},
		{args: []string{"read", "-h"}, want: exitOK},
		{args: []string{"list", "--page-size", "5000"}, want: exitUsage, wantErr: "--page-size"},
		{args: []string{"settings"}, want: exitUsage},
		{args: []string{"settings", "set"}, want: exitUsage, wantErr: "no settings given"},
		{args: []string{"stat", "--addr", "10.1.2.3:7443", "x"}, want: exitUsage, wantErr: "--tls"},
		{args: []string{"upload", "--type", "CALL_RECORDING", "--sip-zone", "z", filepath.Join(dir, "missing")},
			want: exitError, wantErr: "no such file"},
	}
	for _, tt := range tests {
		a, _, stderr := testApp(env)
		if got := a.main(context.Background(), tt.args); got != tt.want {
			t.Errorf("sealctl %q exit = %d, want %d; stderr:\n%s", tt.args, got, tt.want, stderr)
		}
		if !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("sealctl %q stderr = %q, want it to contain %q", tt.args, stderr, tt.wantErr)
		}
	}
}

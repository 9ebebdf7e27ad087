package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// bound is the revocation bound of the gateways in these tests.
const bound = 2 * time.Second

// keyEnv is a gateway whose account demo uses a real customer key.
type keyEnv struct {
	*gatewaytest.Env
	ctx  context.Context
	name string // an artifact uploaded under the key
	data []byte
}

// startKeyed starts a gateway (provider key: provider, or the local default
// when empty) and switches demo to mode with customer key uri.
func startKeyed(t *testing.T, provider string, mode sealgatev1.KeyMode, uri string, keysCfg config.Keys) *keyEnv {
	t.Helper()
	env := gatewaytest.Start(t, func(c *config.Config) {
		c.Keys = keysCfg
		c.Keys.RevocationBound = bound
		c.LogLevel = "info"
		if provider != "" {
			c.Keys.ProviderKeyURI = provider
		}
	})
	ctx := env.Ctx(t, "demo")
	_, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", KeyPolicy: &sealgatev1.KeyPolicy{Mode: mode, CustomerKeyUri: uri}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"key_policy"}},
	})
	if err != nil {
		t.Fatalf("switch demo to %v %s: %v", mode, uri, err)
	}
	ke := &keyEnv{Env: env, ctx: ctx, data: bytes.Repeat([]byte("customer content "), 40000)}
	a, err := env.Upload(ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west"},
		bytes.NewReader(ke.data), 256<<10)
	if err != nil {
		t.Fatalf("upload under %s: %v", uri, err)
	}
	ke.name = a.GetName()
	// Read once: the key has now confirmed Decrypt, so reads are served from
	// the cache and a revocation takes effect by the bound, not at once.
	if err := ke.read(); err != nil {
		t.Fatalf("first read under %s: %v", uri, err)
	}
	return ke
}

func (k *keyEnv) read() error {
	var buf bytes.Buffer
	_, err := k.Read(k.ctx, k.name, &buf)
	if err == nil && !bytes.Equal(buf.Bytes(), k.data) {
		return errors.New("read back bytes differ")
	}
	return err
}

func reasonOf(err error) (codes.Code, string) {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), ei.GetReason()
		}
	}
	return st.Code(), ""
}

// waitRevoked polls reads after a revocation until one fails, then checks
// that it failed with KEY_REVOKED, and that once the bound has passed both
// reads and uploads are refused with nothing stored. It logs the delay.
func (k *keyEnv) waitRevoked(t *testing.T, what string, uploadsToo bool) {
	t.Helper()
	start := time.Now()
	var err error
	var delay time.Duration // from the revocation to the start of the first refused read
	for {
		delay = time.Since(start)
		if err = k.read(); err != nil || delay > bound+3*time.Second {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, reason := reasonOf(err); code != codes.PermissionDenied || reason != "KEY_REVOKED" {
		t.Fatalf("%s: read after %v: %v, want PERMISSION_DENIED KEY_REVOKED", what, delay, err)
	}
	t.Logf("%s: reads refused %v after revocation (revocation_bound %v)", what, delay.Round(10*time.Millisecond), bound)
	time.Sleep(time.Until(start.Add(bound + 200*time.Millisecond)))
	if code, reason := reasonOf(k.read()); code != codes.PermissionDenied || reason != "KEY_REVOKED" {
		t.Fatalf("%s: read after the bound: %v %s, want PERMISSION_DENIED KEY_REVOKED", what, code, reason)
	}
	if !uploadsToo {
		return
	}
	before := countObjects(t, k.DataDir)
	_, err = k.Upload(k.ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_RECORDING, SipZone: "us-west"},
		bytes.NewReader([]byte("refused")), 1024)
	if code, reason := reasonOf(err); code != codes.PermissionDenied || reason != "KEY_REVOKED" {
		t.Fatalf("%s: upload after the bound: %v, want PERMISSION_DENIED KEY_REVOKED", what, err)
	}
	if after := countObjects(t, k.DataDir); after != before {
		t.Fatalf("%s: refused upload stored something: %d objects, was %d", what, after, before)
	}
}

// waitUnavailable checks that once the bound has passed reads fail with
// KEY_SERVICE_UNAVAILABLE, never KEY_REVOKED, and CheckKeyAccess says so.
func (k *keyEnv) waitUnavailable(t *testing.T, what string) {
	t.Helper()
	time.Sleep(bound + 200*time.Millisecond)
	if code, reason := reasonOf(k.read()); code != codes.Unavailable || reason != "KEY_SERVICE_UNAVAILABLE" {
		t.Fatalf("%s: read: %v %s, want UNAVAILABLE KEY_SERVICE_UNAVAILABLE", what, code, reason)
	}
	if got := k.keyStates(t); !slices.Contains(got, sealgatev1.KeyAccess_STATE_UNAVAILABLE) || slices.Contains(got, sealgatev1.KeyAccess_STATE_REVOKED) {
		t.Fatalf("%s: CheckKeyAccess states %v, want UNAVAILABLE and no REVOKED", what, got)
	}
}

// keyStates returns CheckKeyAccess's state per key of demo's policy.
func (k *keyEnv) keyStates(t *testing.T) []sealgatev1.KeyAccess_State {
	t.Helper()
	resp, err := k.Keys.CheckKeyAccess(k.ctx, &sealgatev1.CheckKeyAccessRequest{Account: "accounts/demo"})
	if err != nil {
		t.Fatalf("CheckKeyAccess: %v", err)
	}
	var out []sealgatev1.KeyAccess_State
	for _, ka := range resp.GetKeys() {
		out = append(out, ka.GetState())
	}
	return out
}

func (k *keyEnv) mustReadExact(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(bound + 3*time.Second)
	var err error
	for err = k.read(); err != nil && time.Now().Before(deadline); err = k.read() {
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("%s: read after access returned: %v, want byte-exact content", what, err)
	}
}

func countObjects(t *testing.T, dataDir string) int {
	n := 0
	filepath.Walk(filepath.Join(dataDir, "regions"), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n++
		}
		return nil
	})
	return n
}

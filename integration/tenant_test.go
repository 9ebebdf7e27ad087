package integration

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/integration/servers"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// tokenTap is an HTTP proxy in front of a Vault server that records the
// X-Vault-Token of every request it passes on.
type tokenTap struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
}

func newTokenTap(t *testing.T, target string) *tokenTap {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	tap := &tokenTap{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	tap.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tap.mu.Lock()
		tap.tokens = append(tap.tokens, r.Header.Get("X-Vault-Token"))
		tap.mu.Unlock()
		if target == "" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(tap.srv.Close)
	return tap
}

func (tap *tokenTap) host() string { return strings.TrimPrefix(tap.srv.URL, "http://") }

func (tap *tokenTap) seen() []string {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return slices.Compact(slices.Sorted(slices.Values(tap.tokens)))
}

func setKey(env *gatewaytest.Env, ctx context.Context, account string, mode sealgatev1.KeyMode, uri string) error {
	_, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/" + account + "/settings", KeyPolicy: &sealgatev1.KeyPolicy{Mode: mode, CustomerKeyUri: uri}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"key_policy"}},
	})
	return err
}

// TestEachVaultGetsOnlyItsOwnToken: two registered Vault servers, each for
// one tenant with its own token; a third host that a tenant names is never
// contacted, and the process's VAULT_TOKEN goes nowhere.
func TestEachVaultGetsOnlyItsOwnToken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Vault")
	}
	v1, v2 := servers.StartVault(t), servers.StartVault(t)
	tap1, tap2, trap := newTokenTap(t, v1.Addr), newTokenTap(t, v2.Addr), newTokenTap(t, "")
	uri1 := strings.Replace(v1.CreateKey(t, "acme"), v1.Host, tap1.host(), 1)
	uri2 := strings.Replace(v2.CreateKey(t, "globex"), v2.Host, tap2.host(), 1)
	_, tok1 := v1.GrantTransit(t, "acme")
	_, tok2 := v2.GrantTransit(t, "globex")
	t.Setenv("VAULT_TOKEN", "s.the-gateway-process-token")
	t.Setenv("VAULT_ADDR", trap.srv.URL)
	t.Setenv("SG_TEST_VAULT1", tok1)
	t.Setenv("SG_TEST_VAULT2", tok2)
	env := gatewaytest.Start(t, func(c *config.Config) {
		c.Keys.Vault = []config.VaultServer{
			{Address: tap1.srv.URL, Accounts: []string{"acme"}, TokenEnv: "SG_TEST_VAULT1"},
			{Address: tap2.srv.URL, Accounts: []string{"globex"}, TokenEnv: "SG_TEST_VAULT2"},
		}
	})
	for _, a := range []string{"acme", "globex"} {
		if _, err := env.Accounts.UpdateAccountSettings(env.Ctx(t, a), &sealgatev1.UpdateAccountSettingsRequest{
			Settings: &sealgatev1.AccountSettings{Name: "accounts/" + a + "/settings", HomeRegion: "us"}}); err != nil {
			t.Fatal(err)
		}
	}
	acme, globex := env.Ctx(t, "acme"), env.Ctx(t, "globex")
	// Each tenant uses its own server.
	for _, c := range []struct {
		ctx          context.Context
		account, uri string
	}{{acme, "acme", uri1}, {globex, "globex", uri2}} {
		if err := setKey(env, c.ctx, c.account, customer, c.uri); err != nil {
			t.Fatalf("%s: customer key on its own server: %v", c.account, err)
		}
		data := bytes.Repeat([]byte(c.account), 50000)
		a, err := env.Upload(c.ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_CALL_TRANSCRIPT, SipZone: "us-west"},
			bytes.NewReader(data), 64<<10)
		if err != nil {
			t.Fatalf("%s: upload: %v", c.account, err)
		}
		var got bytes.Buffer
		if _, err := env.Read(c.ctx, a.GetName(), &got); err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("%s: read back: %v", c.account, err)
		}
	}
	// Neither may name the other's server, nor an unregistered host: not in
	// settings, not in a rewrap.
	trapURI := "hcvault://" + trap.host() + "/transit/keys/x"
	for _, uri := range []string{uri2, trapURI} {
		err := setKey(env, acme, "acme", customer, uri)
		if code, reason := reasonOf(err); code != codes.InvalidArgument || reason != "KEY_NOT_ALLOWED" {
			t.Fatalf("acme naming %s: %v, want INVALID_ARGUMENT KEY_NOT_ALLOWED", uri, err)
		}
		stream, err := env.Keys.RewrapArtifacts(acme, &sealgatev1.RewrapArtifactsRequest{Account: "accounts/acme",
			KeyPolicy: &sealgatev1.KeyPolicy{Mode: both, CustomerKeyUri: uri}})
		if err == nil {
			_, err = stream.Recv()
		}
		if code, reason := reasonOf(err); code != codes.InvalidArgument || reason != "KEY_NOT_ALLOWED" {
			t.Fatalf("acme rewrapping to %s: %v, want INVALID_ARGUMENT KEY_NOT_ALLOWED", uri, err)
		}
	}
	if _, err := env.Keys.CheckKeyAccess(acme, &sealgatev1.CheckKeyAccessRequest{Account: "accounts/acme"}); err != nil {
		t.Fatal(err)
	}
	if got := trap.seen(); len(got) != 0 {
		t.Fatalf("the unregistered host got requests with tokens %q, want no request at all", got)
	}
	if got := tap1.seen(); !slices.Equal(got, []string{tok1}) {
		t.Fatalf("Vault 1 saw tokens %q, want only its own", got)
	}
	if got := tap2.seen(); !slices.Equal(got, []string{tok2}) {
		t.Fatalf("Vault 2 saw tokens %q, want only its own", got)
	}
}

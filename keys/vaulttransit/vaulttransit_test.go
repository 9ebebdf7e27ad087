package vaulttransit_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/sealgate/sealgate/integration/servers"
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/keystest"
	"github.com/sealgate/sealgate/keys/vaulttransit"
)

var seq atomic.Int64

// newKey creates a Transit key and a token that may use only it, and
// returns a Wrapper that authenticates with that token.
func newKey(t *testing.T, v *servers.Vault) (*vaulttransit.Wrapper, string, string) {
	name := fmt.Sprintf("k%d", seq.Add(1))
	uri := v.CreateKey(t, name)
	policy, token := v.GrantTransit(t, name)
	c, err := vaulttransit.NewClient(v.Host, token, "http", 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := vaulttransit.New(c, uri)
	if err != nil {
		t.Fatal(err)
	}
	return w, name, policy
}

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Vault")
	}
	v := servers.StartVault(t)
	policies := map[string]string{}
	keystest.RunConformance(t, keystest.Harness{
		NewWrapper: func(t *testing.T) keys.Wrapper {
			w, name, policy := newKey(t, v)
			policies[w.KeyURI()] = policy
			_ = name
			return w
		},
		Revoke:  func(t *testing.T, w keys.Wrapper) { v.EmptyPolicy(t, policies[w.KeyURI()]) },
		Restore: func(t *testing.T, w keys.Wrapper) { v.PutPolicy(t, policies[w.KeyURI()], nameOf(w)) },
		Unreachable: func(t *testing.T, w keys.Wrapper) keys.Wrapper {
			c, err := vaulttransit.NewClient(fmt.Sprintf("127.0.0.1:%d", servers.FreePort(t)), "x", "http", 0)
			if err != nil {
				t.Fatal(err)
			}
			u, err := vaulttransit.New(c, w.KeyURI())
			if err != nil {
				t.Fatal(err)
			}
			return u
		},
	})
}

func nameOf(w keys.Wrapper) string {
	uri := w.KeyURI()
	for i := len(uri) - 1; i >= 0; i-- {
		if uri[i] == '/' {
			return uri[i+1:]
		}
	}
	return uri
}

func TestRevocationKinds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Vault")
	}
	v := servers.StartVault(t)
	ctx := context.Background()
	ec := keystest.Context("acme", "a1")
	share := []byte("0123456789abcdef0123456789abcdef")

	t.Run("KeyDeleted", func(t *testing.T) {
		w, name, _ := newKey(t, v)
		wrapped, err := w.Wrap(ctx, share, ec)
		if err != nil {
			t.Fatal(err)
		}
		v.DeleteKey(t, name)
		if _, err := w.Unwrap(ctx, wrapped, ec); !errors.Is(err, keys.ErrKeyRevoked) {
			t.Fatalf("unwrap with the key deleted: got %v, want ErrKeyRevoked", err)
		}
		// With a root token, Transit would recreate a deleted key on encrypt.
		root, _ := vaulttransit.NewClient(v.Host, v.RootToken, "http", 0)
		rw, _ := vaulttransit.New(root, w.KeyURI())
		if _, err := rw.Wrap(ctx, share, ec); !errors.Is(err, keys.ErrKeyRevoked) {
			t.Fatalf("wrap with the key deleted (root token): got %v, want ErrKeyRevoked, not a new key", err)
		}
	})
	t.Run("TokenRevoked", func(t *testing.T) {
		name := fmt.Sprintf("k%d", seq.Add(1))
		uri := v.CreateKey(t, name)
		_, token := v.GrantTransit(t, name)
		c, _ := vaulttransit.NewClient(v.Host, token, "http", 0)
		w, _ := vaulttransit.New(c, uri)
		wrapped, err := w.Wrap(ctx, share, ec)
		if err != nil {
			t.Fatal(err)
		}
		v.RevokeToken(t, token)
		if _, err := w.Unwrap(ctx, wrapped, ec); !errors.Is(err, keys.ErrKeyRevoked) {
			t.Fatalf("unwrap with the token revoked: got %v, want ErrKeyRevoked", err)
		}
	})
	t.Run("MinDecryptionVersionRaised", func(t *testing.T) {
		w, name, _ := newKey(t, v)
		wrapped, err := w.Wrap(ctx, share, ec)
		if err != nil {
			t.Fatal(err)
		}
		v.RotateAndRaiseMinDecryption(t, name)
		if _, err := w.Unwrap(ctx, wrapped, ec); !errors.Is(err, keys.ErrKeyRevoked) {
			t.Fatalf("unwrap below min_decryption_version: got %v, want ErrKeyRevoked", err)
		}
		v.SetMinDecryption(t, name, 1)
		if _, err := w.Unwrap(ctx, wrapped, ec); err != nil {
			t.Fatalf("unwrap after lowering min_decryption_version: %v", err)
		}
	})
	t.Run("VaultStopped", func(t *testing.T) {
		w, _, _ := newKey(t, v)
		wrapped, err := w.Wrap(ctx, share, ec)
		if err != nil {
			t.Fatal(err)
		}
		v.Stop()
		_, err = w.Unwrap(ctx, wrapped, ec)
		if !errors.Is(err, keys.ErrKeyUnavailable) || errors.Is(err, keys.ErrKeyRevoked) {
			t.Fatalf("unwrap with Vault stopped: got %v, want ErrKeyUnavailable only", err)
		}
	})
}

func TestOpenerRejectsBadURIs(t *testing.T) {
	o := &vaulttransit.Opener{}
	for _, uri := range []string{"hcvault://", "hcvault://h:1/transit", "hcvault://h:1/transit/keys/", "aws-kms://x", "hcvault://h:1/keys/x"} {
		if _, err := o.OpenWrapper(context.Background(), uri); !errors.Is(err, keys.ErrUnknownKey) {
			t.Errorf("OpenWrapper(%q): got %v, want ErrUnknownKey", uri, err)
		}
	}
	if _, err := o.OpenWrapper(context.Background(), "hcvault://127.0.0.1:8200/transit/keys/acme"); !errors.Is(err, keys.ErrKeyNotAllowed) {
		t.Errorf("OpenWrapper of a good URI on no registered server: got %v, want ErrKeyNotAllowed", err)
	}
	o = &vaulttransit.Opener{Servers: []vaulttransit.Server{{Address: "http://127.0.0.1:8200", Accounts: []string{"*"}, Auth: vaulttransit.StaticToken("t")}}}
	if _, err := o.OpenWrapper(context.Background(), "hcvault://127.0.0.1:8200/transit/keys/acme"); err != nil {
		t.Errorf("OpenWrapper of a good URI on a registered server: %v", err)
	}
}

// On a server several accounts share, one token opens every key: the key
// prefix is what keeps a tenant to its own keys (second review: acme could
// name globex's key and wrap under it, or probe which of its names exist).
func TestSharedServerKeepsEachAccountToItsKeyPrefix(t *testing.T) {
	o := &vaulttransit.Opener{Servers: []vaulttransit.Server{{Address: "http://127.0.0.1:8200", Accounts: []string{"acme", "acme-corp"},
		KeyPrefix: "{account}.", Auth: vaulttransit.StaticToken("t")}}}
	for _, c := range []struct {
		account, key string
		ok           bool
	}{
		{"acme", "acme.calls", true},
		{"acme", "acme-corp.calls", false}, // another account's, though it starts with "acme"
		{"acme-corp", "acme-corp.calls", true},
		{"acme-corp", "acme.calls", false},
		{"acme", "calls", false},
		{"globex", "globex.calls", false}, // not registered here at all
	} {
		err := o.CheckAccount("hcvault://127.0.0.1:8200/transit/keys/"+c.key, c.account)
		if c.ok != (err == nil) || !c.ok && !errors.Is(err, keys.ErrKeyNotAllowed) {
			t.Errorf("CheckAccount(%s, %s) = %v, want allowed %v", c.key, c.account, err, c.ok)
		}
	}
	// The wrapper checks each call's account too.
	w, err := o.OpenWrapper(context.Background(), "hcvault://127.0.0.1:8200/transit/keys/acme.calls")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Wrap(context.Background(), make([]byte, 32), keys.EncryptionContext{keys.ContextAccount: "acme-corp"}); !errors.Is(err, keys.ErrKeyNotAllowed) {
		t.Fatalf("Wrap under acme's key for acme-corp: %v, want ErrKeyNotAllowed", err)
	}
}

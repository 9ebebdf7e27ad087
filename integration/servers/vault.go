package servers

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	vault "github.com/hashicorp/vault/api"
)

// Vault is a Vault server in dev mode (in-memory, unsealed, root token
// "root") with the Transit engine mounted at "transit". It is BSL-licensed:
// a test dependency only, run as a separate process.
type Vault struct {
	// Addr is "http://127.0.0.1:PORT"; Host is "127.0.0.1:PORT".
	Addr, Host string
	// RootToken is the dev root token.
	RootToken string
	proc      *process
	client    *vault.Client
}

// StartVault starts a dev-mode Vault on a free port, enables Transit, and
// stops it when the test ends. Data does not survive Stop: dev mode keeps
// everything in memory.
func StartVault(t testing.TB) *Vault {
	t.Helper()
	bin := Tool(t, "vault")
	dir := t.TempDir()
	port := FreePort(t)
	v := &Vault{Host: hostPort(port), RootToken: "root"}
	v.Addr = "http://" + v.Host
	args := []string{"server", "-dev", "-dev-root-token-id=" + v.RootToken, "-dev-listen-address=" + v.Host,
		"-dev-no-store-token"}
	env := []string{"HOME=" + dir, "VAULT_ADDR=", "VAULT_TOKEN=", "VAULT_CLUSTER_ADDR=https://127.0.0.1:" + strconv.Itoa(FreePort(t))}
	v.proc = newProcess("vault", bin, args, env, dir)
	cfg := vault.DefaultConfig()
	cfg.Address = v.Addr
	cfg.MaxRetries = 0
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(v.RootToken)
	v.client = c
	t.Cleanup(v.Stop)
	if err := v.proc.start(); err != nil {
		t.Fatal(err)
	}
	v.proc.waitReady(t, func(ctx context.Context) error {
		h, err := c.Sys().HealthWithContext(ctx)
		if err != nil {
			return err
		}
		if !h.Initialized || h.Sealed {
			return fmt.Errorf("vault not ready: %+v", h)
		}
		return nil
	})
	if err := c.Sys().Mount("transit", &vault.MountInput{Type: "transit"}); err != nil {
		t.Fatalf("servers: enable transit: %v", err)
	}
	return v
}

// Stop kills Vault (SIGKILL); it is safe to call more than once.
func (v *Vault) Stop() { v.proc.stop() }

// Client returns a root client with no retries.
func (v *Vault) Client() *vault.Client { return v.client }

// KeyURI returns the hcvault:// URI of Transit key name.
func (v *Vault) KeyURI(name string) string { return "hcvault://" + v.Host + "/transit/keys/" + name }

// CreateKey creates an aes256-gcm96 Transit key that may be deleted later,
// and returns its URI.
func (v *Vault) CreateKey(t testing.TB, name string) string {
	t.Helper()
	v.write(t, "transit/keys/"+name, map[string]any{"type": "aes256-gcm96"})
	v.write(t, "transit/keys/"+name+"/config", map[string]any{"deletion_allowed": true})
	return v.KeyURI(name)
}

// DeleteKey deletes a Transit key for good.
func (v *Vault) DeleteKey(t testing.TB, name string) {
	t.Helper()
	if _, err := v.client.Logical().Delete("transit/keys/" + name); err != nil {
		t.Fatalf("servers: delete vault key %s: %v", name, err)
	}
}

// RotateAndRaiseMinDecryption rotates key name and sets its
// min_decryption_version to the new version, so older ciphertexts no longer
// decrypt.
func (v *Vault) RotateAndRaiseMinDecryption(t testing.TB, name string) {
	t.Helper()
	v.write(t, "transit/keys/"+name+"/rotate", nil)
	s, err := v.client.Logical().Read("transit/keys/" + name)
	if err != nil || s == nil {
		t.Fatalf("servers: read vault key %s: %v", name, err)
	}
	v.write(t, "transit/keys/"+name+"/config", map[string]any{"min_decryption_version": s.Data["latest_version"]})
}

// SetMinDecryption sets key name's min_decryption_version.
func (v *Vault) SetMinDecryption(t testing.TB, name string, version int) {
	t.Helper()
	v.write(t, "transit/keys/"+name+"/config", map[string]any{"min_decryption_version": version})
}

// GrantTransit writes a policy allowing encrypt, decrypt and reading the
// metadata of key name, and returns a new token holding only that policy.
func (v *Vault) GrantTransit(t testing.TB, name string) (policy, token string) {
	t.Helper()
	policy = "sealgate-" + name
	v.PutPolicy(t, policy, name)
	s, err := v.client.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{policy}, NoParent: true})
	if err != nil {
		t.Fatalf("servers: create vault token: %v", err)
	}
	return policy, s.Auth.ClientToken
}

// PutPolicy (re)writes policy to allow Transit use of key name.
func (v *Vault) PutPolicy(t testing.TB, policy, name string) {
	t.Helper()
	hcl := fmt.Sprintf(`path "transit/encrypt/%[1]s" { capabilities = ["update"] }
path "transit/decrypt/%[1]s" { capabilities = ["update"] }
path "transit/keys/%[1]s" { capabilities = ["read"] }
`, name)
	if err := v.client.Sys().PutPolicy(policy, hcl); err != nil {
		t.Fatalf("servers: put vault policy: %v", err)
	}
}

// PutEncryptOnlyPolicy rewrites policy to allow encrypting with key name
// and reading its metadata, but not decrypting.
func (v *Vault) PutEncryptOnlyPolicy(t testing.TB, policy, name string) {
	t.Helper()
	hcl := fmt.Sprintf(`path "transit/encrypt/%[1]s" { capabilities = ["update"] }
path "transit/keys/%[1]s" { capabilities = ["read"] }
`, name)
	if err := v.client.Sys().PutPolicy(policy, hcl); err != nil {
		t.Fatalf("servers: put vault policy: %v", err)
	}
}

// EmptyPolicy rewrites policy to allow nothing, revoking access without
// revoking the token.
func (v *Vault) EmptyPolicy(t testing.TB, policy string) {
	t.Helper()
	if err := v.client.Sys().PutPolicy(policy, `path "sys/nothing" { capabilities = ["deny"] }`); err != nil {
		t.Fatalf("servers: empty vault policy: %v", err)
	}
}

// RevokeToken revokes token for good.
func (v *Vault) RevokeToken(t testing.TB, token string) {
	t.Helper()
	if err := v.client.Auth().Token().RevokeTree(token); err != nil {
		t.Fatalf("servers: revoke vault token: %v", err)
	}
}

func (v *Vault) write(t testing.TB, path string, data map[string]any) {
	t.Helper()
	if _, err := v.client.Logical().Write(path, data); err != nil {
		t.Fatalf("servers: vault write %s: %v", path, err)
	}
}

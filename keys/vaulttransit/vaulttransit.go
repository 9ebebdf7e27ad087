// Package vaulttransit is the key driver for HashiCorp Vault's Transit
// secrets engine; it is the only package that imports vault/api.
//
// A key is named "hcvault://HOST:PORT/MOUNT/keys/NAME", for example
// "hcvault://127.0.0.1:8200/transit/keys/acme". Wrap and Unwrap call
// MOUNT/encrypt/NAME and MOUNT/decrypt/NAME with the canonical encoding of the
// encryption context as associated_data, so the binding is exact and Vault's
// audit log records every use. The wrapped bytes are Vault's ciphertext string
// ("vault:vN:..."). Transit's encrypt endpoint creates a missing key when the
// token may, so Wrap first checks that the key exists: a deleted key must stop
// uploads, not be silently replaced by a new one.
package vaulttransit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/sealgate/sealgate/keys"
)

// Scheme is the key URI scheme this driver serves.
const Scheme = "hcvault"

// Wrapper wraps data keys with one Transit key.
type Wrapper struct {
	uri         string
	client      *vault.Client
	auth        TokenSource // nil: client already carries its token
	mount, name string
	allow       func(account string) bool // nil: any account
}

// keyRef is a parsed key URI.
type keyRef struct {
	host, mount, name string
}

// parseURI parses "hcvault://HOST:PORT/MOUNT/keys/NAME". It returns an error
// wrapping keys.ErrUnknownKey when uri is not of that form.
func parseURI(uri string) (keyRef, error) {
	rest, ok := strings.CutPrefix(uri, Scheme+"://")
	if !ok {
		return keyRef{}, fmt.Errorf("%w: %q is not an hcvault:// URI", keys.ErrUnknownKey, uri)
	}
	host, path, ok := strings.Cut(rest, "/")
	i := strings.LastIndex(path, "/keys/")
	if !ok || host == "" || i <= 0 {
		return keyRef{}, fmt.Errorf("%w: want hcvault://HOST:PORT/MOUNT/keys/NAME, got %q", keys.ErrUnknownKey, uri)
	}
	mount, name := path[:i], path[i+len("/keys/"):]
	if name == "" || strings.ContainsAny(name, "/?#") || strings.Contains(mount, "..") {
		return keyRef{}, fmt.Errorf("%w: bad key name in %q", keys.ErrUnknownKey, uri)
	}
	return keyRef{host: host, mount: mount, name: name}, nil
}

// New returns the Wrapper for uri that talks to Vault through client.
func New(client *vault.Client, uri string) (*Wrapper, error) {
	ref, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	return &Wrapper{uri: uri, client: client, mount: ref.mount, name: ref.name}, nil
}

// KeyURI returns the key's hcvault:// URI.
func (w *Wrapper) KeyURI() string { return w.uri }

// Wrap encrypts plaintext under the Transit key with ec as associated data.
// It returns an error wrapping keys.ErrKeyRevoked when Vault refuses (no
// permission, key deleted), keys.ErrKeyUnavailable when Vault cannot be
// reached or answers with a server error, or the context's error.
func (w *Wrapper) Wrap(ctx context.Context, plaintext []byte, ec keys.EncryptionContext) ([]byte, error) {
	c, err := w.clientFor(ctx, ec)
	if err != nil {
		return nil, err
	}
	if err := w.checkKeyExists(ctx, c); err != nil {
		return nil, err
	}
	secret, err := c.Logical().WriteWithContext(ctx, w.mount+"/encrypt/"+w.name, map[string]any{
		"plaintext":       base64.StdEncoding.EncodeToString(plaintext),
		"associated_data": base64.StdEncoding.EncodeToString(ec.Encode()),
	})
	if err != nil {
		return nil, classify(ctx, "wrap", err)
	}
	ct, _ := secretData(secret)["ciphertext"].(string)
	if !strings.HasPrefix(ct, "vault:v") {
		return nil, fmt.Errorf("%w: vaulttransit: encrypt answered without a ciphertext", keys.ErrKeyUnavailable)
	}
	return []byte(ct), nil
}

// Unwrap decrypts wrapped with the Transit key and ec as associated data. It
// returns an error wrapping keys.ErrIntegrity when wrapped was not made by
// this key under ec, keys.ErrKeyRevoked when Vault refuses (no permission,
// key deleted, ciphertext version below min_decryption_version),
// keys.ErrKeyUnavailable when Vault cannot be reached, or the context's error.
func (w *Wrapper) Unwrap(ctx context.Context, wrapped []byte, ec keys.EncryptionContext) ([]byte, error) {
	if !strings.HasPrefix(string(wrapped), "vault:v") {
		return nil, fmt.Errorf("%w: vaulttransit: not a Vault ciphertext", keys.ErrIntegrity)
	}
	c, err := w.clientFor(ctx, ec)
	if err != nil {
		return nil, err
	}
	secret, err := c.Logical().WriteWithContext(ctx, w.mount+"/decrypt/"+w.name, map[string]any{
		"ciphertext":      string(wrapped),
		"associated_data": base64.StdEncoding.EncodeToString(ec.Encode()),
	})
	if err != nil {
		return nil, classify(ctx, "unwrap", err)
	}
	pt, _ := secretData(secret)["plaintext"].(string)
	out, err := base64.StdEncoding.DecodeString(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: vaulttransit: decrypt answered with malformed plaintext", keys.ErrIntegrity)
	}
	return out, nil
}

// checkKeyExists reads the key's metadata. A token that may not read it is
// trusted to lack "create" on encrypt as well, so the check is skipped.
func (w *Wrapper) checkKeyExists(ctx context.Context, c *vault.Client) error {
	secret, err := c.Logical().ReadWithContext(ctx, w.mount+"/keys/"+w.name)
	var re *vault.ResponseError
	if errors.As(err, &re) && re.StatusCode == 403 {
		return nil
	}
	if err != nil {
		return classify(ctx, "read key", err)
	}
	if secret == nil {
		return fmt.Errorf("%w: vaulttransit: key %s does not exist", keys.ErrKeyRevoked, w.name)
	}
	return nil
}

// clientFor checks that ec's account may use this key and returns a client
// carrying the registered server's token. It returns an error wrapping
// keys.ErrKeyNotAllowed for another account, and keys.ErrKeyUnavailable
// when no token can be had.
func (w *Wrapper) clientFor(ctx context.Context, ec keys.EncryptionContext) (*vault.Client, error) {
	if w.allow != nil && !w.allow(ec[keys.ContextAccount]) {
		return nil, fmt.Errorf("%w: vaulttransit: the key's server is not registered for the account", keys.ErrKeyNotAllowed)
	}
	if w.auth == nil {
		return w.client, nil
	}
	login, err := w.client.CloneWithHeaders()
	if err != nil {
		return nil, fmt.Errorf("%w: vaulttransit: client: %v", keys.ErrKeyUnavailable, err)
	}
	login.ClearToken()
	tok, err := w.auth.Token(ctx, login)
	if err != nil {
		if errors.Is(err, keys.ErrKeyRevoked) || errors.Is(err, keys.ErrKeyUnavailable) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", keys.ErrKeyUnavailable, err)
	}
	login.SetToken(tok)
	return login, nil
}

func secretData(s *vault.Secret) map[string]any {
	if s == nil || s.Data == nil {
		return map[string]any{}
	}
	return s.Data
}

package vaulttransit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// TokenSource supplies the token the driver sends to one registered Vault
// server. login is a client of that same server that carries no token.
type TokenSource interface {
	Token(ctx context.Context, login *vault.Client) (string, error)
}

// StaticToken is a fixed token.
type StaticToken string

// Token returns the token, or an error when it is empty.
func (t StaticToken) Token(context.Context, *vault.Client) (string, error) {
	if t == "" {
		return "", errors.New("vaulttransit: empty token")
	}
	return string(t), nil
}

// FileToken reads the token from a file (as Vault Agent's sink writes it),
// again whenever the file changes.
type FileToken struct {
	Path string

	mu    sync.Mutex
	mtime time.Time
	tok   string
}

// Token returns the file's token, trimmed of white space. It returns an
// error when the file cannot be read or is empty.
func (f *FileToken) Token(context.Context, *vault.Client) (string, error) {
	fi, err := os.Stat(f.Path)
	if err != nil {
		return "", fmt.Errorf("vaulttransit: token file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tok != "" && fi.ModTime().Equal(f.mtime) {
		return f.tok, nil
	}
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return "", fmt.Errorf("vaulttransit: token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("vaulttransit: token file %s is empty", f.Path)
	}
	f.tok, f.mtime = tok, fi.ModTime()
	return tok, nil
}

// AppRole logs in with Vault's AppRole auth method and reuses the token it
// gets until two thirds of its lease have passed, then logs in again.
type AppRole struct {
	// Mount is the auth mount; default "approle".
	Mount string
	// RoleID and SecretID return the credentials (from an environment
	// variable or a file, read at each login).
	RoleID, SecretID func() (string, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu      sync.Mutex
	tok     string
	renewAt time.Time
}

// Token returns a token from the last login while it is fresh, else logs in.
// It returns an error when the credentials cannot be read or the login fails.
func (a *AppRole) Token(ctx context.Context, login *vault.Client) (string, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok != "" && now().Before(a.renewAt) {
		return a.tok, nil
	}
	roleID, err := a.RoleID()
	if err != nil {
		return "", fmt.Errorf("vaulttransit: approle role_id: %w", err)
	}
	secretID, err := a.SecretID()
	if err != nil {
		return "", fmt.Errorf("vaulttransit: approle secret_id: %w", err)
	}
	mount := a.Mount
	if mount == "" {
		mount = "approle"
	}
	start := now()
	s, err := login.Logical().WriteWithContext(ctx, "auth/"+mount+"/login", map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		return "", classify(ctx, "approle login", err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return "", fmt.Errorf("vaulttransit: approle login answered without a token")
	}
	a.tok = s.Auth.ClientToken
	ttl := time.Duration(s.Auth.LeaseDuration) * time.Second
	if ttl <= 0 {
		ttl = 24 * time.Hour // a token that does not expire: log in again daily
	}
	a.renewAt = start.Add(ttl * 2 / 3)
	return a.tok, nil
}

// Forget drops the cached token, so that the next call logs in again (after
// Vault refused the token, say).
func (a *AppRole) Forget() {
	a.mu.Lock()
	a.tok = ""
	a.mu.Unlock()
}

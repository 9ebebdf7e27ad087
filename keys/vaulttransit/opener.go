package vaulttransit

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/sealgate/sealgate/keys"
)

// Opener serves hcvault:// URIs, with one client per Vault host. Vault's
// own configuration applies where the Opener names nothing: VAULT_TOKEN for
// the token, VAULT_ADDR's scheme and TLS settings (VAULT_CACERT, ...) for a
// host that matches it. Use an Opener by pointer: it holds a mutex.
type Opener struct {
	// Token authenticates; empty means VAULT_TOKEN.
	Token string
	// Scheme is "http" or "https" for hosts other than VAULT_ADDR's;
	// default https.
	Scheme string
	// Timeout of one Vault request; default 5s.
	Timeout time.Duration

	mu      sync.Mutex
	clients map[string]*vault.Client
}

var _ keys.Opener = (*Opener)(nil)

// OpenWrapper returns the Wrapper for uri. It returns an error wrapping
// keys.ErrUnknownKey for a URI that is not hcvault://HOST:PORT/MOUNT/keys/NAME.
func (o *Opener) OpenWrapper(_ context.Context, uri string) (keys.Wrapper, error) {
	ref, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	c, err := o.client(ref.host)
	if err != nil {
		return nil, err
	}
	return &Wrapper{uri: uri, client: c, mount: ref.mount, name: ref.name}, nil
}

func (o *Opener) client(host string) (*vault.Client, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.clients[host]; ok {
		return c, nil
	}
	c, err := NewClient(host, o.Token, o.Scheme, o.Timeout)
	if err != nil {
		return nil, err
	}
	if o.clients == nil {
		o.clients = map[string]*vault.Client{}
	}
	o.clients[host] = c
	return c, nil
}

// NewClient returns a Vault client for host with few retries and a short
// timeout, so that an unreachable Vault fails fast as unavailable.
func NewClient(host, token, scheme string, timeout time.Duration) (*vault.Client, error) {
	cfg := vault.DefaultConfig() // reads VAULT_ADDR, VAULT_CACERT, ...
	if cfg.Error != nil {
		return nil, fmt.Errorf("vaulttransit: config: %w", cfg.Error)
	}
	if hostOf(cfg.Address) != host {
		if scheme == "" {
			scheme = "https"
		}
		cfg.Address = scheme + "://" + host
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	cfg.Timeout = timeout
	cfg.MaxRetries = 1
	cfg.MinRetryWait = 100 * time.Millisecond
	cfg.MaxRetryWait = 500 * time.Millisecond
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vaulttransit: client: %w", err)
	}
	if token == "" {
		token = strings.TrimSpace(os.Getenv("VAULT_TOKEN"))
	}
	if token != "" {
		c.SetToken(token)
	}
	return c, nil
}

package vaulttransit

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/sealgate/sealgate/keys"
)

// Server is one Vault server the operator registered: the only hosts the
// driver ever calls, each with its own credential.
type Server struct {
	// Address is the server's URL, e.g. "https://vault.example.com:8200".
	// Key URIs name it by its host and port.
	Address string
	// Mounts are the Transit mounts keys may live on; empty means
	// "transit".
	Mounts []string
	// Accounts are the sealgate accounts that may name keys on this server
	// as customer keys; "*" allows every account. Empty: none (a server for
	// the provider's key only).
	Accounts []string
	// KeyPrefix, when set, is how the names of an account's keys on this
	// server begin, "{account}" standing for the account id (for example
	// "{account}."): with one token for the server, it is what keeps a
	// tenant from naming another's keys. Config validation requires it for
	// a server shared by several accounts.
	KeyPrefix string
	// Auth supplies the token sent to this server, and to no other.
	Auth TokenSource
	// CACert is a PEM file of CAs that verify the server's certificate;
	// empty means the system roots.
	CACert string
	// Namespace is the Vault Enterprise namespace, if any.
	Namespace string
	// Timeout of one request; default 5s.
	Timeout time.Duration
}

// Host returns the HOST:PORT that key URIs use for s, or "" when Address
// is not an http(s) URL with a host.
func (s Server) Host() string {
	u, err := url.Parse(s.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" && u.Path != "/" {
		return ""
	}
	return strings.ToLower(u.Host)
}

func (s Server) mounts() []string {
	if len(s.Mounts) == 0 {
		return []string{"transit"}
	}
	return s.Mounts
}

// allows reports whether account may use the key named name on s as a
// customer key.
func (s Server) allows(account, name string) bool {
	if !slices.Contains(s.Accounts, "*") && !slices.Contains(s.Accounts, account) {
		return false
	}
	return s.KeyPrefix == "" || account != "" && strings.HasPrefix(name, strings.ReplaceAll(s.KeyPrefix, "{account}", account))
}

// Opener serves hcvault:// URIs of registered servers only. A URI naming any
// other host or mount is refused with keys.ErrKeyNotAllowed before any
// network I/O, so no token ever reaches a host the operator did not name.
// Vault's environment variables (VAULT_ADDR, VAULT_TOKEN, VAULT_AGENT_ADDR)
// are never consulted. Use an Opener by pointer: it holds a mutex.
type Opener struct {
	Servers []Server
	// ProviderURI is the provider's own key; it may be opened (for reads and
	// uploads under the provider key) whatever the server's Accounts say.
	ProviderURI string

	mu      sync.Mutex
	clients map[string]*serverClient // by host
}

var (
	_ keys.Opener         = (*Opener)(nil)
	_ keys.AccountChecker = (*Opener)(nil)
)

// serverClient is the client of one registered server.
type serverClient struct {
	srv    Server
	client *vault.Client
}

// find returns the registered server of ref, or an error wrapping
// keys.ErrKeyNotAllowed.
func (o *Opener) find(ref keyRef) (Server, error) {
	for _, s := range o.Servers {
		if s.Host() != strings.ToLower(ref.host) {
			continue
		}
		if !slices.Contains(s.mounts(), ref.mount) {
			return Server{}, fmt.Errorf("%w: vaulttransit: mount %q is not registered for this Vault server", keys.ErrKeyNotAllowed, ref.mount)
		}
		return s, nil
	}
	return Server{}, fmt.Errorf("%w: vaulttransit: no Vault server is registered for this key URI", keys.ErrKeyNotAllowed)
}

// CheckAccount reports whether account may name uri as a customer key. It
// makes no network call.
func (o *Opener) CheckAccount(uri, account string) error {
	ref, err := parseURI(uri)
	if err != nil {
		return err
	}
	s, err := o.find(ref)
	if err != nil {
		return err
	}
	if !s.allows(account, ref.name) {
		return fmt.Errorf("%w: vaulttransit: this Vault server is not registered for the account, or the key's name is not one of the account's", keys.ErrKeyNotAllowed)
	}
	return nil
}

// OpenWrapper returns the Wrapper for uri. It returns an error wrapping
// keys.ErrUnknownKey for a URI that is not hcvault://HOST:PORT/MOUNT/keys/NAME,
// and keys.ErrKeyNotAllowed for a host or mount that is not registered. The
// Wrapper refuses, per call, an encryption context whose account the server
// is not registered for (the provider's key excepted).
func (o *Opener) OpenWrapper(_ context.Context, uri string) (keys.Wrapper, error) {
	ref, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	s, err := o.find(ref)
	if err != nil {
		return nil, err
	}
	sc, err := o.client(s)
	if err != nil {
		return nil, err
	}
	allow := func(account string) bool { return s.allows(account, ref.name) }
	if uri == o.ProviderURI {
		allow = func(string) bool { return true }
	}
	return &Wrapper{uri: uri, client: sc.client, auth: s.Auth, mount: ref.mount, name: ref.name, allow: allow}, nil
}

func (o *Opener) client(s Server) (*serverClient, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if c, ok := o.clients[s.Host()]; ok {
		return c, nil
	}
	c, err := NewServerClient(s)
	if err != nil {
		return nil, err
	}
	sc := &serverClient{srv: s, client: c}
	if o.clients == nil {
		o.clients = map[string]*serverClient{}
	}
	o.clients[s.Host()] = sc
	return sc, nil
}

// NewServerClient returns a Vault client for s alone: its address, its CA,
// few retries and a short timeout (an unreachable Vault fails fast as
// unavailable), no redirects (which could send the token elsewhere), and no
// token until a call sets the one s.Auth gives.
func NewServerClient(s Server) (*vault.Client, error) {
	if s.Host() == "" {
		return nil, fmt.Errorf("vaulttransit: server address %q: want http(s)://HOST:PORT", s.Address)
	}
	cfg := vault.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vaulttransit: config: %w", cfg.Error)
	}
	cfg.Address, cfg.AgentAddress = strings.TrimSuffix(s.Address, "/"), ""
	if s.CACert != "" {
		if err := cfg.ConfigureTLS(&vault.TLSConfig{CACert: s.CACert}); err != nil {
			return nil, fmt.Errorf("vaulttransit: CA file: %w", err)
		}
	}
	cfg.Timeout = s.Timeout
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	cfg.DisableRedirects = true
	cfg.MaxRetries = 1
	cfg.MinRetryWait = 100 * time.Millisecond
	cfg.MaxRetryWait = 500 * time.Millisecond
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vaulttransit: client: %w", err)
	}
	c.ClearToken() // vault/api reads VAULT_TOKEN; this server gets only its own
	c.SetNamespace(s.Namespace)
	return c, nil
}

// NewClient returns a client for the server at host over scheme ("http" or
// "https") that authenticates with token. It is a shorthand for tests and
// tools; the gateway registers servers through Opener.
func NewClient(host, token, scheme string, timeout time.Duration) (*vault.Client, error) {
	if scheme == "" {
		scheme = "https"
	}
	c, err := NewServerClient(Server{Address: scheme + "://" + host, Timeout: timeout})
	if err != nil {
		return nil, err
	}
	if token != "" {
		c.SetToken(token)
	}
	return c, nil
}

package config

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/limits"
	"github.com/sealgate/sealgate/gateway/mover"
	"github.com/sealgate/sealgate/gateway/notify"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/local"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
	"github.com/sealgate/sealgate/store/filestore"
	"github.com/sealgate/sealgate/store/miniostore"
)

// Runtime is a gateway assembled from a Config, with what it opened.
type Runtime struct {
	Config   *Config
	Gateway  *gateway.Gateway
	Verifier *auth.Verifier
	// Issuer is set when the gateway holds a signing key.
	Issuer   *auth.Issuer
	Settings *policy.SettingsStore
	Topology *policy.Topology
	Logger   *slog.Logger
	Keyring  *keys.Keyring
	Keys     *keys.KeyCache
	Metrics  *gateway.Metrics
	Registry *prometheus.Registry
	// Mover is set when the config gives this process the mover role.
	Mover *mover.Mover
	// Sweeper is set when the config gives this process the sweeper role.
	Sweeper   *lifecycle.Sweeper
	Lifecycle *lifecycle.Store
	// Outbox delivers notifications to the configured webhooks; set in a
	// process with the api role (run it with Outbox.Run).
	Outbox  *notify.Outbox
	closers []io.Closer
}

// NewLogger returns the logger the config asks for, writing to w.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Build opens the stores and keys that c names and returns a ready Runtime.
// Close releases them.
func Build(ctx context.Context, c *Config, log *slog.Logger) (*Runtime, error) {
	rt := &Runtime{Config: c, Logger: log}
	ok := false
	defer func() {
		if !ok {
			rt.Close()
		}
	}()
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("config: data dir: %w", err)
	}
	buckets := map[string]store.Bucket{}
	for region, s := range c.Regions {
		b, err := rt.openStore(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("config: region %s: %w", region, err)
		}
		if c.WrapRegion != nil {
			b = c.WrapRegion(region, b)
		}
		buckets[region] = b
	}
	topo, err := policy.NewTopology(buckets, c.SIPZones)
	if err != nil {
		return nil, err
	}
	control, err := rt.openStore(ctx, c.Control)
	if err != nil {
		return nil, fmt.Errorf("config: control store: %w", err)
	}
	if c.WrapControl != nil {
		control = c.WrapControl(control)
	}
	rt.Topology, rt.Settings = topo, policy.NewSettingsStore(control)
	rt.Lifecycle = lifecycle.NewStore(control)

	kr := keys.NewKeyring()
	customerKeySchemes, err := registerDrivers(kr, c)
	if err != nil {
		return nil, err
	}
	if keys.Scheme(c.Keys.ProviderKeyURI) == local.Scheme {
		// The provider key is ours. Only the embedded defaults create it (on
		// first start); a config file needs sealgate init, so that a wrong
		// or missing folder never silently forks the key.
		name := c.Keys.ProviderKeyURI[len("local://"):]
		open := local.OpenExisting
		if c.CreateKeys {
			open = local.Open
		}
		w, err := open(c.Keys.LocalDir, name)
		if err != nil {
			return nil, fmt.Errorf("config: provider key %s: %w%s", c.Keys.ProviderKeyURI, err, c.initHint())
		}
		kr.Add(w)
	}
	if _, err := kr.Wrapper(ctx, c.Keys.ProviderKeyURI); err != nil {
		return nil, fmt.Errorf("config: provider key %s: %w", c.Keys.ProviderKeyURI, err)
	}
	if err := rt.setupAuth(); err != nil {
		return nil, err
	}
	sink, err := rt.openAudit()
	if err != nil {
		return nil, err
	}
	rt.Registry = prometheus.NewRegistry()
	rt.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rt.Metrics = gateway.NewMetrics(rt.Registry)
	rt.Keyring = kr
	cacheOpts := []keys.CacheOption{keys.WithObserver(gateway.KeyObserver(rt.Metrics, sink))}
	if c.Clock != nil {
		cacheOpts = append(cacheOpts, keys.WithClock(c.Clock))
	}
	rt.Keys = keys.NewKeyCache(kr, c.Keys.RevocationBound, cacheOpts...)
	var onStaged func()
	if c.HasRole("api") {
		hooks, err := c.webhooks()
		if err != nil {
			return nil, err
		}
		rt.Outbox = notify.New(notify.Config{Store: control, Webhooks: hooks, Logger: log, Now: c.Clock,
			MinBackoff: c.WebhookMinBackoff, MaxBackoff: c.WebhookMaxBackoff})
	}
	if c.HasRole("sweeper") {
		rt.Sweeper = lifecycle.NewSweeper(lifecycle.SweeperConfig{Store: rt.Lifecycle, Settings: rt.Settings, Topology: topo,
			Audit: sink, Logger: log, Now: c.Clock, Interval: c.SweepInterval, RequestTTL: c.RequestIDTTL, Registerer: rt.Registry})
	}
	if c.HasRole("mover") {
		rt.Mover = mover.New(mover.Config{Topology: topo, Logger: log, Registerer: rt.Registry, Interval: c.MoverInterval, Workers: c.MoverWorkers,
			Records:   gateway.MoverRecords(rt.Lifecycle),
			OrphanAge: c.OrphanAge, Now: c.Clock})
		onStaged = rt.Mover.Notify
	}
	rt.Gateway, err = gateway.New(gateway.Config{
		OnStaged:               onStaged,
		UploadIdleTimeout:      c.UploadIdleTimeout,
		UploadMinRate:          c.UploadMinRate,
		UploadRateWindow:       c.UploadRateWindow,
		UploadMaxDuration:      c.UploadMaxDuration,
		RequestLease:           c.UploadRequestLease,
		ReadStallTimeout:       c.ReadStallTimeout,
		Limits:                 limits.New(c.Limits),
		Lifecycle:              rt.Lifecycle,
		Notifier:               rt.Outbox,
		Now:                    c.Clock,
		Topology:               topo,
		Settings:               rt.Settings,
		Keyring:                kr,
		Keys:                   rt.Keys,
		Audit:                  sink,
		Metrics:                rt.Metrics,
		ProviderKeyURI:         c.Keys.ProviderKeyURI,
		CustomerKeySchemes:     customerKeySchemes,
		AllowLocalCustomerKeys: c.Keys.AllowLocalCustomerKeys,
		Logger:                 log,
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return rt, nil
}

func (rt *Runtime) openAudit() (audit.Sink, error) {
	if rt.Config.Audit == "off" {
		return audit.Discard{}, nil
	}
	sink, closer, err := audit.Open(rt.Config.Audit)
	if err != nil {
		return nil, err
	}
	rt.closers = append(rt.closers, closer)
	return sink, nil
}

// ServeMetrics serves /metrics on the configured address until ctx ends. It
// returns the bound address, or "" when metrics are off.
func (rt *Runtime) ServeMetrics(ctx context.Context) (string, error) {
	if rt.Config.MetricsListen == "" {
		return "", nil
	}
	lis, err := net.Listen("tcp", rt.Config.MetricsListen)
	if err != nil {
		return "", fmt.Errorf("config: metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(rt.Registry, promhttp.HandlerOpts{}))
	if rt.Config.DebugPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(lis)
	go func() { <-ctx.Done(); srv.Close() }()
	return lis.Addr().String(), nil
}

func (rt *Runtime) openStore(ctx context.Context, s Store) (store.Bucket, error) {
	if s.Endpoint == "" {
		b, err := filestore.Open(s.Path)
		if err != nil {
			return nil, err
		}
		rt.closers = append(rt.closers, b)
		return b, nil
	}
	access, secret := os.Getenv(s.AccessKeyEnv), os.Getenv(s.SecretKeyEnv)
	if access == "" || secret == "" {
		return nil, fmt.Errorf("config: store %s/%s: environment variables %s and %s must hold its credentials",
			s.Endpoint, s.Bucket, s.AccessKeyEnv, s.SecretKeyEnv)
	}
	b, err := miniostore.Open(ctx, miniostore.Config{
		Endpoint: s.Endpoint, Bucket: s.Bucket, AccessKey: access, SecretKey: secret,
		Secure: s.Secure, Region: s.S3Region,
	})
	if err != nil {
		return nil, err
	}
	rt.closers = append(rt.closers, b)
	return b, nil
}

func (rt *Runtime) setupAuth() error {
	c := rt.Config
	var pub ed25519.PublicKey
	if c.Auth.SigningKeyFile != "" {
		load := auth.LoadSigningKey
		if c.CreateKeys {
			load = auth.LoadOrCreateSigningKey
		}
		priv, err := load(c.Auth.SigningKeyFile)
		if err != nil {
			return fmt.Errorf("%w%s", err, c.initHint())
		}
		if rt.Issuer, err = auth.NewIssuer(priv); err != nil {
			return err
		}
		pub = rt.Issuer.PublicKey()
	}
	if c.Auth.PublicKeyFile != "" {
		var err error
		if pub, err = auth.LoadPublicKey(c.Auth.PublicKeyFile); err != nil {
			return err
		}
	}
	var ext *auth.External
	if a := c.Auth; a.JWKSURL != "" || a.JWKSFile != "" {
		var err error
		ext, err = auth.NewExternal(auth.ExternalOptions{Issuer: a.Issuer, Audience: a.Audience,
			AccountClaim: a.AccountClaim, RolesClaim: a.RolesClaim, JWKSURL: a.JWKSURL, JWKSFile: a.JWKSFile, Refresh: a.JWKSRefresh})
		if err != nil {
			return err
		}
		rt.closers = append(rt.closers, closerFunc(ext.Close))
	}
	var key ed25519.PublicKey
	if pub != nil {
		key = pub
	}
	v, err := auth.NewVerifierWith(key, ext)
	if err != nil {
		return err
	}
	rt.Verifier = v
	return nil
}

// EnsureDevAccount creates the dev account (home region us, or the first
// configured region) when it has no settings, and writes a token with every
// role for it to the dev token file (mode 0600). It returns the token.
func (rt *Runtime) EnsureDevAccount(ctx context.Context) (string, error) {
	c := rt.Config
	if c.Dev.Account == "" || rt.Issuer == nil {
		return "", errors.New("config: no dev account or no signing key")
	}
	_, err := rt.Settings.Get(ctx, c.Dev.Account)
	if errors.Is(err, policy.ErrAccountNotFound) {
		home := "us"
		if !rt.Topology.HasRegion(home) {
			home = rt.Topology.Regions()[0]
		}
		err = rt.Settings.Put(ctx, c.Dev.Account, &sealgatev1.AccountSettings{
			Name:       policy.SettingsName(c.Dev.Account),
			HomeRegion: home,
			KeyPolicy:  &sealgatev1.KeyPolicy{Mode: sealgatev1.KeyMode_KEY_MODE_PROVIDER},
		})
	}
	if err != nil {
		return "", fmt.Errorf("config: dev account: %w", err)
	}
	tok, err := rt.Issuer.Issue(auth.Principal{Subject: "dev", Account: c.Dev.Account, Roles: auth.AllRoles()}, c.Dev.TokenTTL)
	if err != nil {
		return "", err
	}
	if err := writeSecret(c.Dev.TokenFile, []byte(tok+"\n")); err != nil {
		return "", err
	}
	return tok, nil
}

// writeSecret replaces path atomically with data, mode 0600.
func writeSecret(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Close releases the stores.
func (rt *Runtime) Close() error {
	var errs []error
	for _, c := range rt.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// initHint tells how to create missing keys for a config file.
func (c *Config) initHint() string {
	if c.CreateKeys {
		return ""
	}
	if c.File != "" {
		return " (if this is a new deployment: sealgate init --config " + c.File + ")"
	}
	return " (if this is a new deployment: sealgate init)"
}

// Init creates what a new deployment of c needs and does not have yet: the
// data directory, the local provider key (for a local:// provider key) and
// the signing key. It never replaces an existing key, and returns the paths
// it created.
func Init(c *Config) ([]string, error) {
	var created []string
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("config: data dir: %w", err)
	}
	if keys.Scheme(c.Keys.ProviderKeyURI) == local.Scheme {
		name := c.Keys.ProviderKeyURI[len("local://"):]
		path := local.Path(c.Keys.LocalDir, name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if _, err := local.Open(c.Keys.LocalDir, name); err != nil {
				return created, err
			}
			created = append(created, path)
		}
	}
	if p := c.Auth.SigningKeyFile; p != "" {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			if _, err := auth.LoadOrCreateSigningKey(p); err != nil {
				return created, err
			}
			created = append(created, p)
		}
	}
	return created, nil
}

// closerFunc adapts a func() to io.Closer.
type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// OpenControl opens the control store that c names (for tools such as
// sealctl decrypt). Close the returned bucket when done.
func OpenControl(ctx context.Context, c *Config) (store.Bucket, error) {
	rt := &Runtime{Config: c}
	return rt.openStore(ctx, c.Control)
}

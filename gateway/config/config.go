// Package config reads sealgate's configuration file and assembles a gateway
// from it: stores per region, key drivers, token verification. With no file
// at all, Default gives the embedded defaults: everything under one data
// directory, a local provider key, and a development account.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sealgate/sealgate/gateway/limits"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/store"
)

// Config is the whole configuration. Empty fields take the defaults that
// ApplyDefaults documents.
type Config struct {
	// Listen is the gRPC address; default 127.0.0.1:7443 (loopback only).
	Listen string `yaml:"listen"`
	// DataDir holds local state; default ".sealgate".
	DataDir string `yaml:"data_dir"`
	// LogLevel is debug, info, warn or error; default info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json; default text.
	LogFormat string `yaml:"log_format"`
	// ShutdownGrace is how long in-flight calls may run after a stop signal
	// before they are cancelled; default 30s.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// Roles this process plays: "api" (the gRPC gateway), "sweeper"
	// (expires and purges on time) and "mover" (moves
	// staged ciphertext to storage regions); default both.
	Roles []string `yaml:"roles"`
	// MoverInterval is the mover's idle poll interval; default 1s.
	MoverInterval time.Duration `yaml:"mover_interval"`
	// SweepInterval is the sweeper's pass interval; default 1m.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// MoverWorkers is how many moves one mover runs at once; default 4.
	MoverWorkers int `yaml:"mover_workers"`
	// OrphanAge is how long a staged object whose artifact has no record
	// may wait before the mover reports it (it never deletes it for that
	// alone). Default 15m, at least 1m.
	OrphanAge time.Duration `yaml:"orphan_age"`
	// UploadIdleTimeout ends an upload stream that sends nothing for this
	// long; default 2m.
	UploadIdleTimeout time.Duration `yaml:"upload_idle_timeout"`
	// ReadStallTimeout ends a read whose client takes no data for this
	// long; default 2m.
	ReadStallTimeout time.Duration `yaml:"read_stall_timeout"`
	// UploadMinRate is the least an upload must send, in bytes per second
	// averaged over each UploadRateWindow; default 1024 over 1m.
	UploadMinRate    int64         `yaml:"upload_min_rate"`
	UploadRateWindow time.Duration `yaml:"upload_rate_window"`
	// UploadMaxDuration is the longest one upload may take; default 12h.
	UploadMaxDuration time.Duration `yaml:"upload_max_duration"`
	// UploadRequestLease is how long an upload holds its request_id without
	// renewing it: a retry after a gateway died waits at most this long.
	// Default 30s.
	UploadRequestLease time.Duration `yaml:"upload_request_lease"`
	// RequestIDTTL is how long the sweeper keeps an upload's request_id
	// claim: a retry after that stores anew. Default 7 days, at least 1
	// day (longer than any upload).
	RequestIDTTL time.Duration `yaml:"request_id_ttl"`
	// ReadinessInterval is how often the gRPC health status is checked
	// against the stores and the provider key; default 5s.
	ReadinessInterval time.Duration `yaml:"readiness_interval"`
	// MaxConnections caps the gateway's client connections; default 1024.
	MaxConnections int `yaml:"max_connections"`
	// Limits caps what one principal or account may hold at once.
	Limits limits.Config `yaml:"limits"`
	// DebugPprof serves Go's profiles under /debug/pprof/ on the metrics
	// listener (never on the gRPC port); default off.
	DebugPprof bool `yaml:"debug_pprof"`
	// MetricsListen serves Prometheus metrics at /metrics on this address;
	// empty disables it.
	MetricsListen string `yaml:"metrics_listen"`
	// Audit is where audit events go: "stdout", "stderr", a file path, or
	// "" for <data_dir>/audit.jsonl. "off" disables auditing.
	Audit string `yaml:"audit"`

	Auth     Auth              `yaml:"auth"`
	Keys     Keys              `yaml:"keys"`
	Regions  map[string]Store  `yaml:"regions"`
	SIPZones map[string]string `yaml:"sip_zones"`
	Control  Store             `yaml:"control"`
	Dev      Dev               `yaml:"dev"`
	// Webhooks receive notifications (a message refused by a blocking
	// rule), delivered at least once from an outbox in the control store.
	Webhooks []Webhook `yaml:"webhooks"`
	// WebhookMinBackoff and WebhookMaxBackoff bound the wait between
	// delivery attempts (defaults 1s and 5m).
	WebhookMinBackoff time.Duration `yaml:"webhook_min_backoff"`
	WebhookMaxBackoff time.Duration `yaml:"webhook_max_backoff"`
	TLS               TLS           `yaml:"tls"`
	// InsecurePlaintext allows a plaintext listener on an address other
	// than loopback (behind a TLS-terminating proxy, say). Default false:
	// such a gateway refuses to start without tls.
	InsecurePlaintext bool `yaml:"insecure_plaintext"`

	// File is the absolute path of the config file ("" for the embedded
	// defaults); relative paths in it were resolved against its folder.
	File      string `yaml:"-"`
	configDir string
	// CreateKeys lets Build create a missing local provider key and
	// signing key: only the embedded defaults' first start does (and
	// sealgate init). Elsewhere a missing key stops start-up, naming it.
	CreateKeys bool `yaml:"-"`

	// Clock, when set, is the time source of the key cache, the gateway
	// and its background work: for tests and embedders only. It cannot be
	// set from a file or a flag; the binary always uses the system clock.
	Clock func() time.Time `yaml:"-"`

	// WrapRegion, when set, wraps each region's bucket as it is opened:
	// for tests (fault injection) and embedders only.
	WrapRegion func(region string, b store.Bucket) store.Bucket `yaml:"-"`
	// WrapControl, when set, wraps the control store as it is opened: for
	// tests (fault injection) and embedders only.
	WrapControl func(b store.Bucket) store.Bucket `yaml:"-"`

	// ExtraDrivers are key drivers registered in code (tests, embedders),
	// by URI scheme; they are also accepted for customer keys.
	ExtraDrivers map[string]keys.Opener `yaml:"-"`
}

// Auth says how bearer tokens are checked.
type Auth struct {
	// SigningKeyFile is an Ed25519 PKCS#8 PEM key that signs the gateway's
	// own tokens (sealgate token issue, the dev token); the gateway accepts
	// tokens it signed. Default <data_dir>/signing-key.pem unless a public
	// key or an external issuer is configured. Created only by the embedded
	// defaults' first start and by sealgate init.
	SigningKeyFile string `yaml:"signing_key_file"`
	// PublicKeyFile verifies tokens of a sealgate signing key kept
	// elsewhere (PKIX PEM).
	PublicKeyFile string `yaml:"public_key_file"`
	// JWKSURL or JWKSFile name the key set of an external identity provider
	// (an OIDC issuer's jwks_uri); its tokens are accepted with the issuer
	// and audience below, and keys are picked by kid, so the issuer can
	// rotate them. The URL is fetched again every JWKSRefresh (default 5m)
	// and when a token names an unknown kid; the file when it changes.
	JWKSURL     string        `yaml:"jwks_url"`
	JWKSFile    string        `yaml:"jwks_file"`
	JWKSRefresh time.Duration `yaml:"jwks_refresh"`
	// Issuer and Audience are required of external tokens ("iss", "aud").
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// AccountClaim and RolesClaim name the claims that carry the sealgate
	// account and roles in external tokens; dots reach into objects
	// ("realm_access.roles"). Defaults "account" and "roles".
	AccountClaim string `yaml:"account_claim"`
	RolesClaim   string `yaml:"roles_claim"`
}

// TLS configures the gRPC listener's certificate. The files are read again
// when they change, for new connections; open ones are not dropped.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires client certificates signed by one
	// of its CAs (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether the listener serves TLS.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Keys configures key encryption keys and the key endpoints tenants may
// name. No credential is ever sent to an endpoint that is not listed here.
type Keys struct {
	// ProviderKeyURI is our key; default "local://provider".
	ProviderKeyURI string `yaml:"provider_key_uri"`
	// LocalDir holds local:// keysets; default <data_dir>/keys.
	LocalDir string `yaml:"local_dir"`
	// RevocationBound is the longest a revoked customer key may still serve;
	// default 30s.
	RevocationBound time.Duration `yaml:"revocation_bound"`
	// AllowLocalCustomerKeys lets accounts name local:// keys (other than
	// the provider's) as customer keys: for development only. The embedded
	// defaults allow it; a config file must say so.
	AllowLocalCustomerKeys bool `yaml:"allow_local_customer_keys"`
	// Vault lists the Vault servers hcvault:// keys may live on.
	Vault []VaultServer `yaml:"vault"`
	// AWSKMS lists the AWS regions and accounts aws-kms:// keys may live in.
	AWSKMS AWSKMS `yaml:"aws_kms"`
}

// VaultServer registers one Vault server and its credential.
type VaultServer struct {
	// Address is the server's URL, e.g. https://vault.example.com:8200. Key
	// URIs name it by host and port: hcvault://vault.example.com:8200/...
	Address string `yaml:"address"`
	// Mounts are the Transit mounts keys may live on; default [transit].
	Mounts []string `yaml:"mounts"`
	// Accounts are the sealgate accounts that may name keys here; "*" is
	// every account; empty is none (the provider's key only).
	Accounts []string `yaml:"accounts"`
	// KeyPrefix is how the names of an account's keys here begin, with
	// "{account}" for the account id, e.g. "{account}.": required when
	// several accounts share the server (and its one token), so that none
	// can name another's keys.
	KeyPrefix string `yaml:"key_prefix"`
	// CAFile verifies the server's certificate; default: system roots.
	CAFile string `yaml:"ca_file"`
	// Namespace is the Vault Enterprise namespace, if any.
	Namespace string `yaml:"namespace"`
	// Timeout of one request; default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// The token, from exactly one of: TokenEnv (an environment variable's
	// name), TokenFile (re-read when it changes, e.g. a Vault Agent sink),
	// AppRole. Default: TokenEnv VAULT_TOKEN.
	TokenEnv  string   `yaml:"token_env"`
	TokenFile string   `yaml:"token_file"`
	AppRole   *AppRole `yaml:"approle"`
}

// AppRole logs in with Vault's AppRole method. Each credential comes from an
// environment variable (…_env) or a file (…_file), read at every login.
type AppRole struct {
	Mount        string `yaml:"mount"`
	RoleIDEnv    string `yaml:"role_id_env"`
	RoleIDFile   string `yaml:"role_id_file"`
	SecretIDEnv  string `yaml:"secret_id_env"`
	SecretIDFile string `yaml:"secret_id_file"`
}

// AWSKMS registers where aws-kms:// keys may live. Credentials come from the
// AWS SDK's default chain, or per AWS account from an assumed role.
type AWSKMS struct {
	// Regions are the AWS regions keys may live in.
	Regions []string `yaml:"regions"`
	// Accounts are the AWS accounts keys may live in.
	Accounts []AWSAccount `yaml:"accounts"`
}

// AWSAccount registers one AWS account.
type AWSAccount struct {
	// ID is the 12-digit AWS account id.
	ID string `yaml:"id"`
	// RoleARN, when set, is assumed for calls on this account's keys with
	// ExternalId = the sealgate account id.
	RoleARN string `yaml:"role_arn"`
	// Accounts are the sealgate accounts that may name keys here; "*" is
	// every account; empty is none.
	Accounts []string `yaml:"accounts"`
}

// Store is one storage location: a local folder (Path), or a bucket on a
// MinIO or other S3-compatible endpoint.
type Store struct {
	// Path is a local folder (the file store).
	Path string `yaml:"path"`
	// Endpoint is host:port of an S3-compatible server.
	Endpoint string `yaml:"endpoint"`
	// Bucket is created when missing.
	Bucket string `yaml:"bucket"`
	// AccessKeyEnv and SecretKeyEnv name the environment variables that hold
	// the credentials (never the credentials themselves).
	AccessKeyEnv string `yaml:"access_key_env"`
	SecretKeyEnv string `yaml:"secret_key_env"`
	// Secure uses TLS.
	Secure bool `yaml:"secure"`
	// S3Region is the bucket's S3 region name, when the server needs one.
	S3Region string `yaml:"s3_region"`
}

// validate checks that s names exactly one kind of store.
func (s Store) validate(where string) error {
	switch {
	case s.Path != "" && s.Endpoint != "":
		return fmt.Errorf("config: %s: give either path or endpoint, not both", where)
	case s.Endpoint != "" && (s.Bucket == "" || s.AccessKeyEnv == "" || s.SecretKeyEnv == ""):
		return fmt.Errorf("config: %s: an endpoint needs bucket, access_key_env and secret_key_env", where)
	case s.Path == "" && s.Endpoint == "":
		return fmt.Errorf("config: %s: a path or an endpoint is required", where)
	}
	return nil
}

// Dev configures the development conveniences of the embedded defaults.
type Dev struct {
	// Account is created (home region us) when missing, and a token with
	// every role for it is written to TokenFile. Empty disables both.
	Account string `yaml:"account"`
	// TokenFile; default <data_dir>/dev-token.
	TokenFile string `yaml:"token_file"`
	// TokenTTL; default 720h.
	TokenTTL time.Duration `yaml:"token_ttl"`
}

// Default returns the embedded defaults: no servers needed, everything under
// .sealgate, a dev account, and keys created on first start.
func Default() *Config {
	c := Embedded("")
	c.ApplyDefaults()
	return c
}

// Embedded returns the embedded defaults for dataDir ("" means .sealgate)
// before ApplyDefaults: the only configuration that creates missing keys,
// allows local customer keys and has a dev account.
func Embedded(dataDir string) *Config {
	return &Config{
		DataDir:    dataDir,
		Dev:        Dev{Account: "demo"},
		Keys:       Keys{AllowLocalCustomerKeys: true},
		CreateKeys: true,
	}
}

// Decode reads a YAML config file strictly: unknown fields are errors.
// Relative paths in it are resolved, once and here, against the file's
// folder, so that the same file means the same folders whatever the working
// directory. Callers apply their overrides, then ApplyDefaults and Validate
// (Load does all three).
func Decode(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	c := &Config{}
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.File, c.configDir = abs, filepath.Dir(abs)
	c.resolvePaths()
	return c, nil
}

// Load reads a config file with Decode, applies the defaults and validates
// the result.
func Load(path string) (*Config, error) {
	c, err := Decode(path)
	if err != nil {
		return nil, err
	}
	c.ApplyDefaults()
	return c, c.Validate()
}

// ApplyDefaults fills every empty field with its default. Paths it derives
// are absolute (under DataDir); calling it again changes nothing.
func (c *Config) ApplyDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.Listen, "127.0.0.1:7443")
	def(&c.DataDir, ".sealgate")
	c.resolvePaths()
	def(&c.LogLevel, "info")
	if len(c.Roles) == 0 {
		c.Roles = []string{"api", "mover", "sweeper"}
	}
	def(&c.LogFormat, "text")
	if c.MaxConnections == 0 {
		c.MaxConnections = 1024
	}
	c.Limits = c.Limits.WithDefaults()
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = 30 * time.Second
	}
	if c.Auth.PublicKeyFile == "" && c.Auth.JWKSURL == "" && c.Auth.JWKSFile == "" {
		def(&c.Auth.SigningKeyFile, filepath.Join(c.DataDir, "signing-key.pem"))
	}
	def(&c.Keys.ProviderKeyURI, "local://provider")
	def(&c.Keys.LocalDir, filepath.Join(c.DataDir, "keys"))
	if c.Keys.RevocationBound == 0 {
		c.Keys.RevocationBound = 30 * time.Second
	}
	if len(c.Regions) == 0 {
		c.Regions = map[string]Store{}
		for _, r := range policy.Regions {
			c.Regions[r] = Store{Path: filepath.Join(c.DataDir, "regions", r)}
		}
	}
	if len(c.SIPZones) == 0 {
		c.SIPZones = policy.DefaultSIPZones()
	}
	if c.Control.Endpoint == "" {
		def(&c.Control.Path, filepath.Join(c.DataDir, "control"))
	}
	def(&c.Dev.TokenFile, filepath.Join(c.DataDir, "dev-token"))
	def(&c.Audit, filepath.Join(c.DataDir, "audit.jsonl"))
	if c.Dev.TokenTTL == 0 {
		c.Dev.TokenTTL = 720 * time.Hour
	}
	c.resolvePaths()
}

// resolvePaths makes every path absolute: relative to the config file's
// folder for a file, else to the working directory. Absolute paths are left
// alone, so resolving twice is resolving once.
func (c *Config) resolvePaths() {
	for _, p := range []*string{&c.DataDir, &c.Keys.LocalDir, &c.Auth.SigningKeyFile, &c.Auth.PublicKeyFile,
		&c.Auth.JWKSFile, &c.Dev.TokenFile, &c.TLS.CertFile, &c.TLS.KeyFile, &c.TLS.ClientCAFile} {
		*p = c.abs(*p)
	}
	for i := range c.Webhooks {
		c.Webhooks[i].SecretFile = c.abs(c.Webhooks[i].SecretFile)
	}
	for i := range c.Keys.Vault {
		v := &c.Keys.Vault[i]
		v.CAFile, v.TokenFile = c.abs(v.CAFile), c.abs(v.TokenFile)
		if v.AppRole != nil {
			v.AppRole.RoleIDFile, v.AppRole.SecretIDFile = c.abs(v.AppRole.RoleIDFile), c.abs(v.AppRole.SecretIDFile)
		}
	}
	for r, s := range c.Regions {
		s.Path = c.abs(s.Path)
		c.Regions[r] = s
	}
	c.Control.Path = c.abs(c.Control.Path)
	if c.Audit != "stdout" && c.Audit != "stderr" && c.Audit != "off" {
		c.Audit = c.abs(c.Audit)
	}
}

// abs resolves p against the config file's folder, or the working
// directory when there is no file.
func (c *Config) abs(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if c.configDir != "" {
		return filepath.Join(c.configDir, p)
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// Validate reports the first problem in c.
func (c *Config) Validate() error {
	for r, s := range c.Regions {
		if !policy.IsRegion(r) {
			return fmt.Errorf("config: regions: %q is not a region (want one of %v)", r, policy.Regions)
		}
		if err := s.validate("regions." + r); err != nil {
			return err
		}
	}
	for z, r := range c.SIPZones {
		if _, ok := c.Regions[r]; !ok {
			return fmt.Errorf("config: sip_zones.%s: region %q is not configured under regions", z, r)
		}
	}
	if err := c.Control.validate("control"); err != nil {
		return err
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("config: log_format %q: want text or json", c.LogFormat)
	}
	for _, r := range c.Roles {
		if r != "api" && r != "mover" && r != "sweeper" {
			return fmt.Errorf("config: roles: %q is not a role (want api, mover, sweeper)", r)
		}
	}
	if c.RequestIDTTL != 0 && c.RequestIDTTL < 24*time.Hour {
		return fmt.Errorf("config: request_id_ttl %v: want at least 24h (longer than any upload)", c.RequestIDTTL)
	}
	if c.OrphanAge != 0 && c.OrphanAge < time.Minute {
		return fmt.Errorf("config: orphan_age %v: want at least 1m (an upload may take seconds to write its record)", c.OrphanAge)
	}
	if c.Keys.RevocationBound < time.Second {
		return fmt.Errorf("config: keys.revocation_bound %v: want at least 1s", c.Keys.RevocationBound)
	}
	if err := c.validateListener(); err != nil {
		return err
	}
	if err := c.validateAuth(); err != nil {
		return err
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if c.MaxConnections < 0 || c.UploadMinRate < 0 || c.ReadStallTimeout < 0 || c.UploadMaxDuration < 0 || c.UploadRateWindow < 0 {
		return fmt.Errorf("config: max_connections, upload_min_rate and timeouts must not be negative")
	}
	if err := c.validateKeys(); err != nil {
		return err
	}
	if err := c.validateWebhooks(); err != nil {
		return err
	}
	if c.Dev.Account != "" && c.Auth.SigningKeyFile == "" {
		return fmt.Errorf("config: dev.account needs auth.signing_key_file to issue its token")
	}
	if c.Dev.Account != "" && c.HasRole("api") && !IsLoopback(c.Listen) {
		return fmt.Errorf("config: dev.account gives a token with every role: only on a loopback listen address, not %s", c.Listen)
	}
	return nil
}

// HasRole reports whether this process plays role.
func (c *Config) HasRole(role string) bool {
	for _, r := range c.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// validateListener refuses plaintext on an address others can reach.
func (c *Config) validateListener() error {
	t := c.TLS
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		return fmt.Errorf("config: tls: give both cert_file and key_file")
	case t.ClientCAFile != "" && t.CertFile == "":
		return fmt.Errorf("config: tls.client_ca_file needs cert_file and key_file")
	case c.HasRole("api") && !t.Enabled() && !c.InsecurePlaintext && !IsLoopback(c.Listen):
		return fmt.Errorf("config: listen %s is not a loopback address: configure tls (cert_file, key_file), "+
			"or set insecure_plaintext: true if a proxy in front terminates TLS", c.Listen)
	}
	return nil
}

func (c *Config) validateAuth() error {
	a := c.Auth
	switch {
	case a.JWKSURL != "" && a.JWKSFile != "":
		return fmt.Errorf("config: auth: give jwks_url or jwks_file, not both")
	case (a.JWKSURL != "" || a.JWKSFile != "") && (a.Issuer == "" || a.Audience == ""):
		return fmt.Errorf("config: auth: an external key set needs issuer and audience")
	case a.SigningKeyFile == "" && a.PublicKeyFile == "" && a.JWKSURL == "" && a.JWKSFile == "":
		return fmt.Errorf("config: auth: no way to verify tokens (signing_key_file, public_key_file, jwks_url or jwks_file)")
	}
	return nil
}

// IsLoopback reports whether the listen address addr binds only to a
// loopback interface (127.0.0.0/8, ::1, localhost).
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

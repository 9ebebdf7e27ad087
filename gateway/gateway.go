// Package gateway implements sealgate's gRPC services: authenticated upload
// and read pipelines that encrypt every artifact with its own data key, stage
// it in the region of the caller's SIP zone, and map every failure to a gRPC
// status with a stable reason.
package gateway

import (
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/limits"
	"github.com/sealgate/sealgate/gateway/notify"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// Config is what the gateway needs; cmd/sealgate builds it from a config file
// or from the embedded defaults.
type Config struct {
	// Topology maps regions to buckets and SIP zones to regions.
	Topology *policy.Topology
	// Settings stores account settings.
	Settings *policy.SettingsStore
	// Keyring resolves key URIs to key drivers.
	Keyring *keys.Keyring
	// Keys seals and opens data-key shares through per-account intermediate
	// keys; nil means a cache over Keyring with a 30 s revocation bound.
	Keys *keys.KeyCache
	// Audit receives audit events; nil discards them.
	Audit audit.Sink
	// Metrics; nil means unregistered collectors.
	Metrics *Metrics
	// ProviderKeyURI names the provider's (our) key encryption key.
	ProviderKeyURI string
	// CustomerKeySchemes are the key URI schemes the keyring serves.
	CustomerKeySchemes []string
	// AllowLocalCustomerKeys lets accounts name local:// keys (other than
	// the provider's) as customer keys: development only.
	AllowLocalCustomerKeys bool
	// SegmentSize of sealed bodies; 0 means keys.DefaultSegmentSize.
	SegmentSize int
	// Logger receives operational logs; never content or key material.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// UploadIdleTimeout ends an upload that receives no message for this
	// long (nothing is stored); 0 means 2 minutes.
	UploadIdleTimeout time.Duration
	// OnStaged, when set, is called after each upload is staged (it wakes
	// an in-process mover).
	OnStaged func()
	// Lifecycle keeps artifact records (external shares of data keys,
	// deletion state, holds) and the retention indexes in the control
	// store; nil means none (artifacts then have no external share and
	// cannot be deleted).
	Lifecycle *lifecycle.Store
	// Notifier queues notifications (a blocked upload) for the
	// operator's webhooks; nil means none are sent (the audit event still
	// is).
	Notifier *notify.Outbox
	// RequestLease is how long an upload holds its request_id without
	// renewing it; 0 means 30 s.
	RequestLease time.Duration
	// Limits caps streams per principal and account, stream memory and key
	// probes; nil means limits.New with the defaults.
	Limits *limits.Limiter
	// ReadStallTimeout ends a read whose client takes no data for this
	// long; 0 means 2 minutes.
	ReadStallTimeout time.Duration
	// UploadMinRate (bytes per second, averaged over UploadRateWindow) and
	// UploadMaxDuration end uploads that do not make progress; 0 means the
	// defaults (1 KiB/s over 1 minute; 12 hours).
	UploadMinRate     int64
	UploadRateWindow  time.Duration
	UploadMaxDuration time.Duration
}

// Gateway holds the shared state of the three services.
type Gateway struct {
	cfg      Config
	limits   *limits.Limiter
	settings settingsCache
	rules    ruleCache
	// The audio redactor: its crash-test hook and its wake-up.
	redactHook RedactHook
	redactWake chan struct{}
	uploadHook func(step string, ref layout.Ref) error
	log        *slog.Logger
	now        func() time.Time
	audit      audit.Sink
	metrics    *Metrics
}

// New checks cfg and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Topology == nil || cfg.Settings == nil || cfg.Keyring == nil || cfg.ProviderKeyURI == "" {
		return nil, errors.New("gateway: topology, settings, keyring and provider key are required")
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger, now: cfg.Now, audit: cfg.Audit, metrics: cfg.Metrics, redactWake: make(chan struct{}, 1)}
	if g.audit == nil {
		g.audit = audit.Discard{}
	}
	if g.metrics == nil {
		g.metrics = NewMetrics(nil)
	}
	if g.cfg.Keys == nil {
		g.cfg.Keys = keys.NewKeyCache(cfg.Keyring, 30*time.Second, keys.WithObserver(KeyObserver(g.metrics, g.audit)))
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	g.limits = cfg.Limits
	if g.limits == nil {
		g.limits = limits.New(limits.Config{})
	}
	if g.now == nil {
		g.now = time.Now
	}
	return g, nil
}

// Register registers the sealgate services on s.
func (g *Gateway) Register(s grpc.ServiceRegistrar) {
	sealgatev1.RegisterArtifactServiceServer(s, &artifactService{g: g})
	sealgatev1.RegisterAccountServiceServer(s, &accountService{g: g})
	sealgatev1.RegisterKeyServiceServer(s, &keyService{g: g})
}

type artifactService struct {
	sealgatev1.UnimplementedArtifactServiceServer
	g *Gateway
}

type accountService struct {
	sealgatev1.UnimplementedAccountServiceServer
	g *Gateway
}

type keyService struct {
	sealgatev1.UnimplementedKeyServiceServer
	g *Gateway
}

// ActiveStreams returns how many streams of kind account has open.
func (g *Gateway) ActiveStreams(kind limits.Kind, account string) int {
	return g.limits.Active(kind, account)
}

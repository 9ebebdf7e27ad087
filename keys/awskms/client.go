package awskms

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sealgate/sealgate/keys"
)

// Limits that make an unreachable or hung KMS fail within seconds rather
// than minutes. KMS answers in milliseconds when it is healthy.
const (
	maxAttempts    = 3                // one call and two retries
	maxBackoff     = 1 * time.Second  // longest wait between attempts
	dialTimeout    = 2 * time.Second  // TCP connect
	attemptTimeout = 5 * time.Second  // one whole HTTP exchange
	tlsTimeout     = 2 * time.Second  // TLS handshake
	idleTimeout    = 90 * time.Second // pooled connections
)

// maxClients bounds the cached clients (one per region, AWS account and,
// with an assumed role, sealgate account); the cache is emptied when full.
const maxClients = 4096

// Account is one AWS account the operator registered for customer keys.
type Account struct {
	// ID is the 12-digit AWS account id that key ARNs name.
	ID string
	// RoleARN, when set, is assumed (through STS) for every call on this
	// account's keys, with ExternalId set to the sealgate account the call
	// is for: the customer's role trusts sealgate only for its own account,
	// the AWS-documented guard against a confused deputy. Empty: the SDK's
	// default credential chain.
	RoleARN string
	// Accounts are the sealgate accounts that may name keys of this AWS
	// account; "*" allows every account. Empty: none.
	Accounts []string
}

func (a Account) allows(account string) bool {
	return slices.Contains(a.Accounts, "*") || slices.Contains(a.Accounts, account)
}

// Opener serves "aws-kms://ARN" key URIs in registered regions and AWS
// accounts only; any other URI is refused with keys.ErrKeyNotAllowed before
// any network I/O. Clients follow the SDK's default configuration
// (credentials, AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL_STS), with the region
// taken from the key's ARN. Use it by pointer; it is safe for concurrent use.
type Opener struct {
	// Regions are the AWS regions customer keys may live in.
	Regions []string
	// Accounts are the AWS accounts customer keys may live in.
	Accounts []Account
	// ProviderURI is the provider's own key (a key or alias ARN URI). Keys
	// of its region and AWS account may be opened with the default chain
	// (for reads of provider-wrapped slots), but tenants may name them only
	// when the account is registered for them.
	ProviderURI string
	// Client, when set, is used for every key whatever its region and
	// account (tests); the registration checks still apply.
	Client *kms.Client

	mu      sync.Mutex
	clients map[string]*kms.Client // by region, AWS account and role session
}

var (
	_ keys.Opener         = (*Opener)(nil)
	_ keys.AccountChecker = (*Opener)(nil)
)

// access is what the registration says about one key ARN.
type access struct {
	provider bool    // in the provider key's region and AWS account
	account  Account // the registered AWS account (zero when provider only)
}

// lookup returns the registration of k, or an error wrapping
// keys.ErrKeyNotAllowed.
func (o *Opener) lookup(k keyARN) (access, error) {
	var a access
	if p, err := parseURI(o.ProviderURI); err == nil && p.region == k.region && p.account == k.account {
		a.provider = true
	}
	i := slices.IndexFunc(o.Accounts, func(a Account) bool { return a.ID == k.account })
	if i >= 0 && slices.Contains(o.Regions, k.region) {
		a.account = o.Accounts[i]
		return a, nil
	}
	if a.provider {
		return a, nil
	}
	return a, fmt.Errorf("%w: awskms: region %s or AWS account of the key is not registered", keys.ErrKeyNotAllowed, k.region)
}

// CheckAccount reports whether account may name uri as a customer key. It
// makes no network call.
func (o *Opener) CheckAccount(uri, account string) error {
	k, err := parseURI(uri)
	if err != nil {
		return err
	}
	a, err := o.lookup(k)
	if err != nil {
		return err
	}
	if !a.account.allows(account) {
		return fmt.Errorf("%w: awskms: the key's AWS account is not registered for the account", keys.ErrKeyNotAllowed)
	}
	return nil
}

// OpenWrapper returns the Wrapper for uri. It makes no KMS call. It returns
// an error wrapping keys.ErrUnknownKey for a URI of another scheme or a
// malformed ARN, and keys.ErrKeyNotAllowed for a region or AWS account that
// is not registered.
func (o *Opener) OpenWrapper(_ context.Context, uri string) (keys.Wrapper, error) {
	k, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	a, err := o.lookup(k)
	if err != nil {
		return nil, err
	}
	w := &Wrapper{uri: uri, key: k}
	w.clientFor = func(ctx context.Context, account string) (*kms.Client, error) {
		if !a.provider && !a.account.allows(account) {
			return nil, fmt.Errorf("%w: awskms: the key's AWS account is not registered for the account", keys.ErrKeyNotAllowed)
		}
		role := a.account.RoleARN
		if a.provider && !a.account.allows(account) {
			role = "" // our own key: our own credentials
		}
		return o.client(ctx, k.region, role, account)
	}
	return w, nil
}

// client returns o.Client, or the cached client for region (and, with a
// role, for the role and sealgate account), building it on first use. A
// failed build is not cached.
func (o *Opener) client(ctx context.Context, region, role, account string) (*kms.Client, error) {
	if o.Client != nil {
		return o.Client, nil
	}
	key := region
	if role != "" {
		key += "\x00" + role + "\x00" + account
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.clients[key]; c != nil {
		return c, nil
	}
	c, err := newClient(ctx, region, role, account)
	if err != nil {
		return nil, err
	}
	if o.clients == nil || len(o.clients) >= maxClients {
		o.clients = map[string]*kms.Client{}
	}
	o.clients[key] = c
	return c, nil
}

// newClient returns a KMS client for region; with role set, its credentials
// come from assuming role with ExternalId = account (cached until they
// expire).
func newClient(ctx context.Context, region, role, account string) (*kms.Client, error) {
	cfg, err := loadConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	if role != "" {
		p := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), role, func(o *stscreds.AssumeRoleOptions) {
			o.ExternalID = aws.String(account)
			o.RoleSessionName = "sealgate-" + account
		})
		cfg.Credentials = aws.NewCredentialsCache(p)
	}
	return kms.NewFromConfig(cfg), nil
}

func loadConfig(ctx context.Context, region string) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithRetryer(newRetryer),
		config.WithHTTPClient(newHTTPClient()),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("%w: awskms: load AWS config for region %s: %v", keys.ErrKeyUnavailable, region, err)
	}
	return cfg, nil
}

// NewClient returns a KMS client for region configured by the SDK's default
// chain (credentials, AWS_ENDPOINT_URL_KMS and the shared config files),
// with this package's modest retries (3 attempts, at most 1 s apart) and
// timeouts (2 s to connect, 5 s per attempt), then optFns applied in order.
// It returns an error when the default configuration cannot be loaded, for
// example a shared config file that does not parse.
func NewClient(ctx context.Context, region string, optFns ...func(*kms.Options)) (*kms.Client, error) {
	cfg, err := loadConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	return kms.NewFromConfig(cfg, optFns...), nil
}

// newRetryer returns the SDK's standard retryer limited to maxAttempts and
// maxBackoff.
func newRetryer() aws.Retryer {
	return retry.AddWithMaxBackoffDelay(retry.AddWithMaxAttempts(retry.NewStandard(), maxAttempts), maxBackoff)
}

// newHTTPClient returns the SDK's HTTP client with short connect, TLS and
// per-attempt timeouts.
func newHTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = dialTimeout }).
		WithTransportOptions(func(t *http.Transport) {
			t.TLSHandshakeTimeout = tlsTimeout
			t.IdleConnTimeout = idleTimeout
		}).
		WithTimeout(attemptTimeout)
}

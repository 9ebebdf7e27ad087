package awskms

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

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

// Opener serves "aws-kms://ARN" key URIs. With Client set, every key uses
// that client; with Client nil, OpenWrapper builds one client per region of
// the key ARNs it sees, with NewClient, and reuses it. Use it by pointer;
// the zero value is ready to use and safe for concurrent use.
type Opener struct {
	// Client, when set, is used for every key whatever its region.
	Client *kms.Client

	mu      sync.Mutex
	clients map[string]*kms.Client // by region
}

var _ keys.Opener = (*Opener)(nil)

// OpenWrapper returns the Wrapper for uri. It makes no KMS call. It returns
// an error wrapping keys.ErrUnknownKey for a URI of another scheme or a
// malformed ARN, and an error when the SDK's default configuration cannot be
// loaded.
func (o *Opener) OpenWrapper(ctx context.Context, uri string) (keys.Wrapper, error) {
	k, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	client, err := o.client(ctx, k.region)
	if err != nil {
		return nil, err
	}
	return New(client, uri)
}

// client returns o.Client, or the cached client for region, building it on
// first use. A failed build is not cached.
func (o *Opener) client(ctx context.Context, region string) (*kms.Client, error) {
	if o.Client != nil {
		return o.Client, nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if c := o.clients[region]; c != nil {
		return c, nil
	}
	c, err := NewClient(ctx, region)
	if err != nil {
		return nil, err
	}
	if o.clients == nil {
		o.clients = map[string]*kms.Client{}
	}
	o.clients[region] = c
	return c, nil
}

// NewClient returns a KMS client for region configured by the SDK's default
// chain (credentials, AWS_ENDPOINT_URL_KMS and the shared config files),
// with this package's modest retries (3 attempts, at most 1 s apart) and
// timeouts (2 s to connect, 5 s per attempt), then optFns applied in order.
// It returns an error when the default configuration cannot be loaded, for
// example a shared config file that does not parse.
func NewClient(ctx context.Context, region string, optFns ...func(*kms.Options)) (*kms.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithRetryer(newRetryer),
		config.WithHTTPClient(newHTTPClient()),
	)
	if err != nil {
		return nil, fmt.Errorf("awskms: load AWS config for region %s: %w", region, err)
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

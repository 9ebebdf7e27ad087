package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// externalMethods are the signing methods accepted from an external issuer:
// asymmetric only, so that a public key can never be used as an HMAC
// secret.
var externalMethods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// External verifies tokens of an external identity provider (an OIDC
// issuer) against its JSON Web Key Set, choosing the key by the token's
// "kid", so the provider can rotate its keys.
type External struct {
	// Issuer and Audience are required of every token ("iss", "aud").
	Issuer, Audience string
	// AccountClaim and RolesClaim name the claims that hold the sealgate
	// account and roles; dots reach into objects ("realm_access.roles").
	AccountClaim, RolesClaim string
	keys                     func(ctx context.Context) jwt.Keyfunc
	stop                     context.CancelFunc
}

// ExternalOptions configure NewExternal.
type ExternalOptions struct {
	Issuer, Audience         string
	AccountClaim, RolesClaim string // defaults "account" and "roles"
	// JWKSURL is fetched at start, every Refresh (default 5 minutes), and
	// when a token names a kid the set lacks (at most every 10 seconds).
	JWKSURL string
	Refresh time.Duration
	// JWKSFile is read at start and again whenever it changes.
	JWKSFile string
	// HTTPClient fetches JWKSURL; nil means a client with a 10 s timeout.
	HTTPClient *http.Client
}

// NewExternal returns an External that verifies tokens with the key set at
// o.JWKSURL or o.JWKSFile. It returns an error when the key set cannot be
// loaded now. Close stops its refreshing.
func NewExternal(o ExternalOptions) (*External, error) {
	if o.Issuer == "" || o.Audience == "" {
		return nil, errors.New("auth: an external issuer needs an issuer and an audience")
	}
	e := &External{Issuer: o.Issuer, Audience: o.Audience, AccountClaim: o.AccountClaim, RolesClaim: o.RolesClaim}
	if e.AccountClaim == "" {
		e.AccountClaim = "account"
	}
	if e.RolesClaim == "" {
		e.RolesClaim = "roles"
	}
	switch {
	case o.JWKSURL != "" && o.JWKSFile != "":
		return nil, errors.New("auth: give a JWKS URL or a JWKS file, not both")
	case o.JWKSURL != "":
		refresh := o.Refresh
		if refresh <= 0 {
			refresh = 5 * time.Minute
		}
		client := o.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		ctx, stop := context.WithCancel(context.Background())
		fail := false
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{o.JWKSURL}, keyfunc.Override{
			Client:            client,
			RefreshInterval:   refresh,
			RefreshUnknownKID: rate.NewLimiter(rate.Every(10*time.Second), 1),
			// A token whose kid is unknown within 10 s of the last refresh is
			// refused at once rather than held: a flood of made-up kids
			// neither hammers the issuer nor stalls calls.
			RateLimitWaitMax:          100 * time.Millisecond,
			NoErrorReturnFirstHTTPReq: &fail,
			RefreshErrorHandlerFunc: func(string) func(context.Context, error) {
				return func(context.Context, error) {} // the next refresh retries; tokens fail meanwhile
			},
		})
		if err != nil {
			stop()
			return nil, fmt.Errorf("auth: JWKS %s: %w", o.JWKSURL, err)
		}
		e.keys, e.stop = kf.KeyfuncCtx, stop
	case o.JWKSFile != "":
		f := &fileKeySet{path: o.JWKSFile}
		if _, err := f.current(); err != nil {
			return nil, err
		}
		e.keys = f.keyfunc
	default:
		return nil, errors.New("auth: an external issuer needs a JWKS URL or file")
	}
	return e, nil
}

// Close stops refreshing the key set.
func (e *External) Close() {
	if e != nil && e.stop != nil {
		e.stop()
	}
}

// verify checks an external token and maps its claims to a principal.
// Roles the gateway does not know are ignored (an identity provider's
// tokens carry many); the account must be a valid account id.
func (e *External) verify(token string, leeway time.Duration, now func() time.Time) (*Principal, time.Time, error) {
	parser := jwt.NewParser(
		jwt.WithValidMethods(externalMethods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(e.Issuer),
		jwt.WithAudience(e.Audience),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
	)
	c := jwt.MapClaims{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := parser.ParseWithClaims(token, c, e.keys(ctx)); err != nil {
		return nil, time.Time{}, classify(err)
	}
	account, _ := claimAt(c, e.AccountClaim).(string)
	sub, _ := c["sub"].(string)
	p := Principal{Subject: sub, Account: account, Roles: []string{}}
	if list, ok := claimAt(c, e.RolesClaim).([]any); ok {
		for _, r := range list {
			if s, ok := r.(string); ok && KnownRole(s) {
				p.Roles = append(p.Roles, s)
			}
		}
	}
	if err := checkPrincipal(p); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	exp, err := c.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, time.Time{}, fmt.Errorf("%w: missing required claim", ErrTokenInvalid)
	}
	return &p, exp.Time, nil
}

// claimAt returns the claim at a dotted path, or nil.
func claimAt(c jwt.MapClaims, path string) any {
	var cur any = map[string]any(c)
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// fileKeySet is a JWKS read from a file, read again when the file changes.
type fileKeySet struct {
	path string

	mu    sync.Mutex
	stamp string
	kf    keyfunc.Keyfunc
}

func (f *fileKeySet) current() (keyfunc.Keyfunc, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file: %w", err)
	}
	stamp := fmt.Sprint(fi.ModTime().UnixNano(), fi.Size())
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.kf != nil && stamp == f.stamp {
		return f.kf, nil
	}
	raw, err := os.ReadFile(f.path)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file: %w", err)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("auth: JWKS file %s is not JSON", f.path)
	}
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file %s: %w", f.path, err)
	}
	f.kf, f.stamp = kf, stamp
	return kf, nil
}

func (f *fileKeySet) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		kf, err := f.current()
		if err != nil {
			return nil, err
		}
		return kf.KeyfuncCtx(ctx)(t)
	}
}

package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IssuerName is the "iss" claim of every token sealgate issues and accepts.
const IssuerName = "sealgate"

// DefaultLeeway is the clock skew a [Verifier] tolerates when it checks the
// "exp", "nbf" and "iat" claims.
const DefaultLeeway = 30 * time.Second

// maxTokenLen bounds the size of a token Verify is willing to parse.
const maxTokenLen = 8 << 10

// Errors returned by [Verifier.Verify]. Every error it returns wraps exactly
// one of them, so callers can tell an expired token from any other failure.
var (
	// ErrTokenExpired means the token is authentic but past its "exp" time.
	ErrTokenExpired = errors.New("auth: token expired")
	// ErrTokenInvalid means the token is malformed, not signed by the
	// expected key, or carries claims sealgate does not accept.
	ErrTokenInvalid = errors.New("auth: invalid token")
)

// claims is the JWT payload of a sealgate token.
type claims struct {
	jwt.RegisteredClaims
	Account string   `json:"account"`
	Roles   []string `json:"roles"`
}

// checkPrincipal returns an error unless p has a subject, a valid account id
// and only known roles. Error messages may name an offending role, but only
// after the token that carried it has passed signature verification.
func checkPrincipal(p Principal) error {
	if p.Subject == "" {
		return errors.New("empty subject")
	}
	if !ValidAccountID(p.Account) {
		return errors.New("invalid account id")
	}
	for _, r := range p.Roles {
		if !KnownRole(r) {
			return fmt.Errorf("unknown role %q", r)
		}
	}
	return nil
}

// Issuer signs sealgate tokens with an Ed25519 private key. It is safe for
// concurrent use.
type Issuer struct {
	key    ed25519.PrivateKey
	issuer string
	now    func() time.Time
}

// NewIssuer returns an Issuer that signs with key. It returns an error when
// key is not a complete Ed25519 private key.
func NewIssuer(key ed25519.PrivateKey) (*Issuer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("auth: private key has %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	return &Issuer{key: key, issuer: IssuerName, now: time.Now}, nil
}

// PublicKey returns the public key that verifies the tokens iss signs.
func (iss *Issuer) PublicKey() ed25519.PublicKey {
	return iss.key.Public().(ed25519.PublicKey)
}

// Issue returns a signed token for p that expires ttl from now. The token
// carries the claims "iss", "sub", "iat", "nbf" and "exp", plus "account"
// and "roles". A ttl of zero or less yields a token that is already expired,
// which is useful only in tests. Issue returns an error when p has no
// subject, an invalid account id or an unknown role.
func (iss *Issuer) Issue(p Principal, ttl time.Duration) (string, error) {
	if err := checkPrincipal(p); err != nil {
		return "", fmt.Errorf("auth: issue token: %w", err)
	}
	now := iss.now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    iss.issuer,
			Subject:   p.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Account: p.Account,
		Roles:   slices.Clone(p.Roles),
	}
	if c.Roles == nil {
		c.Roles = []string{}
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(iss.key)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return tok, nil
}

// Verifier checks sealgate tokens against an Ed25519 public key. It is safe
// for concurrent use.
type Verifier struct {
	key    ed25519.PublicKey // nil: no sealgate-signed tokens
	ext    *External         // nil: no external issuer
	issuer string
	leeway time.Duration
	now    func() time.Time
	cache  verifiedCache
}

// NewVerifier returns a Verifier that accepts tokens signed by the private
// half of key, issued by [IssuerName], allowing [DefaultLeeway] of clock
// skew. It returns an error when key is not an Ed25519 public key.
func NewVerifier(key ed25519.PublicKey) (*Verifier, error) {
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("auth: public key has %d bytes, want %d", len(key), ed25519.PublicKeySize)
	}
	return &Verifier{key: key, issuer: IssuerName, leeway: DefaultLeeway, now: time.Now}, nil
}

// NewVerifierWith returns a Verifier of sealgate tokens signed by key
// (nil: none) and of tokens of the external issuer ext (nil: none); tokens
// are told apart by their "iss" claim. It returns an error when both are
// nil or key is not an Ed25519 public key.
func NewVerifierWith(key ed25519.PublicKey, ext *External) (*Verifier, error) {
	switch {
	case key == nil && ext == nil:
		return nil, errors.New("auth: no key and no external issuer to verify tokens with")
	case key != nil && len(key) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("auth: public key has %d bytes, want %d", len(key), ed25519.PublicKeySize)
	case ext != nil && ext.Issuer == IssuerName:
		return nil, fmt.Errorf("auth: the external issuer cannot be named %q", IssuerName)
	}
	return &Verifier{key: key, ext: ext, issuer: IssuerName, leeway: DefaultLeeway, now: time.Now}, nil
}

// Verify checks token and returns the principal it names. A token is
// accepted only when it is signed with EdDSA by the verifier's key, carries
// an "exp" claim that has not passed, has the expected issuer, names a valid
// account id and holds only known roles.
//
// On failure the error wraps [ErrTokenExpired] for an authentic but expired
// token and [ErrTokenInvalid] otherwise. The error never contains the token.
func (v *Verifier) Verify(token string) (*Principal, error) {
	if token == "" || len(token) > maxTokenLen {
		return nil, fmt.Errorf("%w: malformed", ErrTokenInvalid)
	}
	if p, ok := v.cache.get(token, v.now()); ok {
		return p, nil
	}
	p, exp, err := v.verify(token)
	if err != nil {
		return nil, err
	}
	v.cache.put(token, p, exp)
	return p, nil
}

// verify checks the signature and claims of token and returns the principal
// and when it expires.
func (v *Verifier) verify(token string) (*Principal, time.Time, error) {
	if v.ext != nil {
		var peek jwt.RegisteredClaims
		if _, _, err := jwt.NewParser().ParseUnverified(token, &peek); err != nil {
			return nil, time.Time{}, classify(err)
		}
		if peek.Issuer == v.ext.Issuer {
			return v.ext.verify(token, v.leeway, v.now)
		}
		if v.key == nil {
			return nil, time.Time{}, fmt.Errorf("%w: wrong issuer", ErrTokenInvalid)
		}
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(v.issuer),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	)
	var c claims
	_, err := parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		return v.key, nil
	})
	if err != nil {
		return nil, time.Time{}, classify(err)
	}
	p := Principal{Subject: c.Subject, Account: c.Account, Roles: c.Roles}
	if err := checkPrincipal(p); err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	return &p, c.ExpiresAt.Time, nil
}

// classify maps an error of the jwt package to one of this package's errors
// with a short reason. It deliberately drops the jwt error text, which may
// quote parts of the token.
func classify(err error) error {
	var reason string
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		reason = "bad signature or signing method"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		reason = "wrong issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		reason = "missing required claim"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = "not valid yet"
	case errors.Is(err, jwt.ErrTokenExpired):
		// Checked after the other claim errors, which the jwt package
		// joins with this one: only a token whose sole fault is its age
		// counts as expired.
		return ErrTokenExpired
	default:
		reason = "invalid claims"
	}
	return fmt.Errorf("%w: %s", ErrTokenInvalid, reason)
}

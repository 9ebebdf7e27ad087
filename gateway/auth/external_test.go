package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// idp is a test identity provider: EC keys by kid, served as a JWKS.
type idp struct {
	mu      sync.Mutex
	keys    map[string]*ecdsa.PrivateKey
	served  []string // kids in the served set
	fetches atomic.Int64
}

func newIDP(t *testing.T, kids ...string) *idp {
	p := &idp{keys: map[string]*ecdsa.PrivateKey{}}
	for _, kid := range kids {
		p.keys[kid], _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	p.served = kids
	return p
}

// rotate makes the set serve only kid, a new key.
func (p *idp) rotate(kid string) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.mu.Lock()
	p.keys[kid], p.served = k, []string{kid}
	p.mu.Unlock()
}

func (p *idp) jwks() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var keys []map[string]string
	for _, kid := range p.served {
		pub := p.keys[kid].PublicKey
		x, y := make([]byte, 32), make([]byte, 32)
		pub.X.FillBytes(x)
		pub.Y.FillBytes(y)
		keys = append(keys, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
			"x": base64.RawURLEncoding.EncodeToString(x), "y": base64.RawURLEncoding.EncodeToString(y)})
	}
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

func (p *idp) serve(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(p.jwks())
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/.well-known/jwks.json"
}

func (p *idp) sign(t *testing.T, kid string, claims jwt.MapClaims) string {
	t.Helper()
	p.mu.Lock()
	key := p.keys[kid]
	p.mu.Unlock()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func idpClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": "https://idp.example", "aud": "sealgate", "sub": "svc-recorder",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"tenant":       map[string]any{"id": "acme"},
		"realm_access": map[string]any{"roles": []any{"uploader", "offline_access", "reader"}},
	}
}

func TestExternalIssuerByJWKSURL(t *testing.T) {
	p := newIDP(t, "k1")
	url := p.serve(t)
	ext, err := NewExternal(ExternalOptions{Issuer: "https://idp.example", Audience: "sealgate",
		AccountClaim: "tenant.id", RolesClaim: "realm_access.roles", JWKSURL: url, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	own, ownV := newPair(t)
	v, err := NewVerifierWith(ownV.key, ext)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(p.sign(t, "k1", idpClaims()))
	if err != nil {
		t.Fatalf("token of the issuer: %v", err)
	}
	if got.Account != "acme" || got.Subject != "svc-recorder" || len(got.Roles) != 2 || !got.HasRole(RoleUploader) || !got.HasRole(RoleReader) {
		t.Fatalf("principal %+v, want acme/svc-recorder with uploader and reader (unknown roles dropped)", got)
	}
	with := func(k string, val any) jwt.MapClaims {
		c := idpClaims()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	for name, c := range map[string]struct {
		tok  string
		want error
	}{
		"wrong audience": {p.sign(t, "k1", with("aud", "someone-else")), ErrTokenInvalid},
		"no audience":    {p.sign(t, "k1", with("aud", nil)), ErrTokenInvalid},
		"wrong issuer":   {p.sign(t, "k1", with("iss", "https://evil.example")), ErrTokenInvalid},
		"expired":        {p.sign(t, "k1", with("exp", time.Now().Add(-time.Hour).Unix())), ErrTokenExpired},
		"no account":     {p.sign(t, "k1", with("tenant", nil)), ErrTokenInvalid},
		"bad account":    {p.sign(t, "k1", with("tenant", map[string]any{"id": "ACME!"})), ErrTokenInvalid},
		"HS256 with the issuer's name": {func() string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, idpClaims()).SignedString([]byte("guess"))
			return tok
		}(), ErrTokenInvalid},
	} {
		if _, err := v.Verify(c.tok); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
	// Sealgate's own tokens still work beside the external issuer.
	if tok, _ := own.Issue(Principal{Subject: "cli", Account: "acme", Roles: []string{RoleAdmin}}, time.Hour); true {
		if p, err := v.Verify(tok); err != nil || p.Subject != "cli" {
			t.Fatalf("sealgate token beside the external issuer: %v, %v", p, err)
		}
	}
	// Rotation: the issuer moves to a new key; a token with the new kid is
	// accepted (the set is fetched again for the unknown kid), and one of
	// the retired key is refused once it is gone from the set.
	before := p.fetches.Load()
	p.rotate("k2")
	if _, err := v.Verify(p.sign(t, "k2", idpClaims())); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if p.fetches.Load() == before {
		t.Fatal("the key set was not fetched again for the unknown kid")
	}
	if _, err := v.Verify(p.sign(t, "k1", with("sub", "after-rotation"))); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("token of the retired key: %v, want refused", err)
	}
	// A kid the issuer never had is refused (without waiting for a refresh
	// the rate limit does not allow yet).
	other := newIDP(t, "k9")
	if _, err := v.Verify(other.sign(t, "k9", idpClaims())); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("token of an unknown kid: %v, want refused", err)
	}
}

func TestExternalIssuerByJWKSFile(t *testing.T) {
	p := newIDP(t, "k1")
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, p.jwks(), 0o600); err != nil {
		t.Fatal(err)
	}
	ext, err := NewExternal(ExternalOptions{Issuer: "https://idp.example", Audience: "sealgate",
		AccountClaim: "tenant.id", RolesClaim: "realm_access.roles", JWKSFile: path})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifierWith(nil, ext)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(p.sign(t, "k1", idpClaims())); err != nil {
		t.Fatalf("token of the file's key: %v", err)
	}
	p.rotate("k2")
	// A later modification time, as a rewrite would give.
	if err := os.WriteFile(path, p.jwks(), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, time.Now().Add(time.Second), time.Now().Add(time.Second))
	if _, err := v.Verify(p.sign(t, "k2", idpClaims())); err != nil {
		t.Fatalf("token of the rotated key after the file changed: %v", err)
	}
	// Without a sealgate key, sealgate-issued tokens are refused.
	iss, _ := newPair(t)
	tok, _ := iss.Issue(Principal{Subject: "s", Account: "acme"}, time.Hour)
	if _, err := v.Verify(tok); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("a sealgate token with no sealgate key configured: %v, want refused", err)
	}
}

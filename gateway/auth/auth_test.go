package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// newPair returns an Issuer and a Verifier over a fresh key pair.
func newPair(t *testing.T) (*Issuer, *Verifier) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := NewIssuer(priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return iss, v
}

// rawClaims returns valid claims for account "acme" that tests then spoil.
func rawClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss":     IssuerName,
		"sub":     "alice",
		"iat":     now.Unix(),
		"nbf":     now.Unix(),
		"exp":     now.Add(time.Hour).Unix(),
		"account": "acme",
		"roles":   []string{RoleReader},
	}
}

// sign signs c with method and key, bypassing the checks of Issuer.Issue.
func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	iss, v := newPair(t)
	want := Principal{Subject: "alice", Account: "acme-01", Roles: []string{RoleUploader, RoleAdmin}}
	tok, err := iss.Issue(want, time.Hour)
	if err != nil {
		t.Fatalf("Issue: got error %v, want nil", err)
	}
	got, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: got error %v, want nil", err)
	}
	if got.Subject != want.Subject || got.Account != want.Account ||
		strings.Join(got.Roles, ",") != strings.Join(want.Roles, ",") {
		t.Errorf("Verify: got %+v, want %+v", *got, want)
	}
	if !got.HasRole(RoleAdmin) || got.HasRole(RoleReader) {
		t.Errorf("HasRole(admin), HasRole(reader): got %v, %v, want true, false",
			got.HasRole(RoleAdmin), got.HasRole(RoleReader))
	}
}

func TestIssueRejectsBadPrincipal(t *testing.T) {
	iss, _ := newPair(t)
	for _, p := range []Principal{
		{Subject: "", Account: "acme"},
		{Subject: "alice", Account: "Acme"},
		{Subject: "alice", Account: "acme", Roles: []string{"root"}},
	} {
		if _, err := iss.Issue(p, time.Hour); err == nil {
			t.Errorf("Issue(%+v): got nil error, want one", p)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	iss, v := newPair(t)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	pubDER, err := x509.MarshalPKIXPublicKey(iss.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	expired, err := iss.Issue(Principal{Subject: "alice", Account: "acme"}, -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	with := func(k string, val any) jwt.MapClaims {
		c := rawClaims()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"expired", expired, ErrTokenExpired},
		{"other key", sign(t, jwt.SigningMethodEdDSA, otherPriv, rawClaims()), ErrTokenInvalid},
		{"HS256 with raw public key", sign(t, jwt.SigningMethodHS256, []byte(iss.PublicKey()), rawClaims()), ErrTokenInvalid},
		{"HS256 with public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, rawClaims()), ErrTokenInvalid},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, rawClaims()), ErrTokenInvalid},
		{"bad account id", sign(t, jwt.SigningMethodEdDSA, iss.key, with("account", "ACME")), ErrTokenInvalid},
		{"empty account", sign(t, jwt.SigningMethodEdDSA, iss.key, with("account", nil)), ErrTokenInvalid},
		{"unknown role", sign(t, jwt.SigningMethodEdDSA, iss.key, with("roles", []string{"reader", "root"})), ErrTokenInvalid},
		{"roles not a list", sign(t, jwt.SigningMethodEdDSA, iss.key, with("roles", "admin")), ErrTokenInvalid},
		{"no exp", sign(t, jwt.SigningMethodEdDSA, iss.key, with("exp", nil)), ErrTokenInvalid},
		{"wrong issuer", sign(t, jwt.SigningMethodEdDSA, iss.key, with("iss", "evil")), ErrTokenInvalid},
		{"not yet valid", sign(t, jwt.SigningMethodEdDSA, iss.key, with("nbf", time.Now().Add(time.Hour).Unix())), ErrTokenInvalid},
		{"expired and wrong issuer", sign(t, jwt.SigningMethodEdDSA, iss.key, func() jwt.MapClaims {
			c := with("iss", "evil")
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			return c
		}()), ErrTokenInvalid},
		{"empty", "", ErrTokenInvalid},
		{"garbage", "not.a.jwt", ErrTokenInvalid},
		{"too long", strings.Repeat("a", maxTokenLen+1), ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(tt.token)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify: got (%v, %v), want error %v", p, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "auth: ") {
				t.Errorf("error %q: got no %q prefix, want one", err, "auth: ")
			}
			if len(tt.token) > 10 && strings.Contains(err.Error(), tt.token[:10]) {
				t.Errorf("error %q: got token text in it, want none", err)
			}
		})
	}
}

func TestVerifyLeeway(t *testing.T) {
	iss, v := newPair(t)
	tok, err := iss.Issue(Principal{Subject: "alice", Account: "acme"}, -10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("Verify of token expired 10s ago: got %v, want nil (30s leeway)", err)
	}
}

func TestValidAccountID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true},
		{"acme-01", true},
		{"demo", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"1acme", false},
		{"-acme", false},
		{"Acme", false},
		{"ac_me", false},
		{"ac.me", false},
		{"acmé", false},
	}
	for _, tt := range tests {
		if got := ValidAccountID(tt.id); got != tt.want {
			t.Errorf("ValidAccountID(%q): got %v, want %v", tt.id, got, tt.want)
		}
	}
}

// errorInfo returns the code, message and ErrorInfo of a status error.
func errorInfo(t *testing.T, err error) (codes.Code, string, *errdetails.ErrorInfo) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("got non-status error %v, want a gRPC status", err)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), st.Message(), info
		}
	}
	t.Fatalf("status %v: got no ErrorInfo, want one", st)
	return 0, "", nil
}

func TestAuthFunc(t *testing.T) {
	iss, v := newPair(t)
	good, _ := iss.Issue(Principal{Subject: "alice", Account: "acme", Roles: []string{RoleReader}}, time.Hour)
	expired, _ := iss.Issue(Principal{Subject: "alice", Account: "acme"}, -time.Hour)
	tests := []struct {
		name       string
		header     string // empty: no authorization metadata at all
		wantReason string // empty: success
		wantMsg    string
	}{
		{"valid", "Bearer " + good, "", ""},
		{"lowercase scheme", "bearer " + good, "", ""},
		{"missing header", "", ReasonTokenMissing, "missing bearer token"},
		{"wrong scheme", "Basic " + good, ReasonTokenMissing, "missing bearer token"},
		{"no token", "Bearer ", ReasonTokenMissing, "missing bearer token"},
		{"no space", "Bearer" + good, ReasonTokenMissing, "missing bearer token"},
		{"expired", "Bearer " + expired, ReasonTokenExpired, "token expired"},
		{"garbage", "Bearer abc.def.ghi", ReasonTokenInvalid, "invalid token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := metadata.MD{}
			if tt.header != "" {
				md.Set("authorization", tt.header)
			}
			ctx, err := v.AuthFunc(metadata.NewIncomingContext(context.Background(), md))
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("AuthFunc: got error %v, want nil", err)
				}
				p, ok := FromContext(ctx)
				if !ok || p.Account != "acme" {
					t.Fatalf("FromContext: got (%v, %v), want account acme", p, ok)
				}
				return
			}
			code, msg, info := errorInfo(t, err)
			if code != codes.Unauthenticated || msg != tt.wantMsg {
				t.Errorf("status: got %v %q, want %v %q", code, msg, codes.Unauthenticated, tt.wantMsg)
			}
			if info.Domain != ErrorDomain || info.Reason != tt.wantReason {
				t.Errorf("ErrorInfo: got %s/%s, want %s/%s", info.Domain, info.Reason, ErrorDomain, tt.wantReason)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	reader := NewContext(context.Background(), &Principal{Subject: "bob", Account: "acme", Roles: []string{RoleReader}})
	tests := []struct {
		name       string
		ctx        context.Context
		roles      []string
		wantCode   codes.Code
		wantMsg    string
		wantReason string
		wantRoles  string
	}{
		{"has role", reader, []string{RoleReader}, codes.OK, "", "", ""},
		{"has one of roles", reader, []string{RoleAdmin, RoleReader}, codes.OK, "", "", ""},
		{"authenticated only", reader, nil, codes.OK, "", "", ""},
		{"lacks role", reader, []string{RoleAdmin, RoleAuditor}, codes.PermissionDenied,
			"requires role: admin or auditor", ReasonRoleRequired, "admin,auditor"},
		{"no principal", context.Background(), []string{RoleReader}, codes.Unauthenticated,
			"missing bearer token", ReasonTokenMissing, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Require(tt.ctx, tt.roles...)
			if tt.wantCode == codes.OK {
				if err != nil || p == nil || p.Subject != "bob" {
					t.Fatalf("Require: got (%v, %v), want bob and nil", p, err)
				}
				return
			}
			code, msg, info := errorInfo(t, err)
			if code != tt.wantCode || msg != tt.wantMsg {
				t.Errorf("status: got %v %q, want %v %q", code, msg, tt.wantCode, tt.wantMsg)
			}
			if info.Reason != tt.wantReason || info.Metadata["roles"] != tt.wantRoles {
				t.Errorf("ErrorInfo: got %s %v, want %s roles=%q", info.Reason, info.Metadata, tt.wantReason, tt.wantRoles)
			}
		})
	}
}

func TestExempt(t *testing.T) {
	tests := []struct {
		method string
		want   bool
	}{
		{"/grpc.health.v1.Health/Check", true},
		{"/grpc.health.v1.Health/Watch", true},
		{"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", true},
		{"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", true},
		{"/sealgate.v1.ArtifactService/ReadArtifact", false},
		{"/grpc.health.v1.HealthX/Check", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Exempt(tt.method); got != tt.want {
			t.Errorf("Exempt(%q): got %v, want %v", tt.method, got, tt.want)
		}
		if tt.method == "" {
			continue
		}
		meta := interceptors.NewServerCallMeta(tt.method, nil, nil)
		if got := NotExempt(context.Background(), meta); got == tt.want {
			t.Errorf("NotExempt(%q): got %v, want %v", tt.method, got, !tt.want)
		}
	}
}

// TestVerifyAcceptsATokenOfTheMaximumLength: the size bound refuses only
// tokens longer than maxTokenLen.
func TestVerifyAcceptsATokenOfTheMaximumLength(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	sized := func(n int) string {
		// Claims padded so that the token is exactly n bytes long. Base64
		// never yields a segment of 4k+1 characters, so the header's
		// length is varied too (an unused kid).
		mk := func(pad, fill, kid int) string {
			c := rawClaims()
			c["pad"], c["fill"] = strings.Repeat("x", pad), strings.Repeat("y", fill)
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
			if kid > 0 {
				tok.Header["kid"] = strings.Repeat("k", kid)
			}
			s, err := tok.SignedString(priv)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		guess := (n - len(mk(0, 0, 0))) * 3 / 4
		for pad := guess + 4; pad > guess-24; pad-- {
			for fill := range 4 {
				for kid := range 4 {
					if s := mk(pad, fill, kid); len(s) == n {
						return s
					}
				}
			}
		}
		t.Fatalf("no token of %d bytes", n)
		return ""
	}
	if _, err := v.Verify(sized(maxTokenLen)); err != nil {
		t.Fatalf("a token of exactly %d bytes: %v", maxTokenLen, err)
	}
	if _, err := v.Verify(sized(maxTokenLen + 1)); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("a token of %d bytes: %v, want ErrTokenInvalid", maxTokenLen+1, err)
	}
}

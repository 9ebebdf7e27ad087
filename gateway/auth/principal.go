// Package auth authenticates callers of the sealgate gRPC gateway with
// bearer JWTs and checks their roles.
//
// Tokens are signed with Ed25519 (JWS alg "EdDSA") by an [Issuer] and checked
// by a [Verifier]. A valid token names a subject, the account it acts for and
// the roles it holds. [Verifier.AuthFunc] plugs into the auth interceptors of
// go-grpc-middleware v2 and stores the caller's [Principal] in the request
// context; handlers then call [Require] to check roles. Every failure is a
// gRPC status that carries a google.rpc.ErrorInfo with domain "sealgate.dev"
// and a stable reason, and no error ever echoes the token it rejected.
package auth

import (
	"context"
	"slices"

	"github.com/sealgate/sealgate/gateway/layout"
)

// The roles a token may carry. A token that names any other role is rejected.
const (
	// RoleUploader may upload artifacts.
	RoleUploader = "uploader"
	// RoleReader may list, stat and read artifacts.
	RoleReader = "reader"
	// RolePIIViewer may read content without masking of personal data.
	RolePIIViewer = "pii_viewer"
	// RoleAdmin may change account settings and manage keys.
	RoleAdmin = "admin"
	// RoleAuditor may inspect metadata and key access without reading content.
	RoleAuditor = "auditor"
)

// allRoles lists every known role in a stable order.
var allRoles = []string{RoleUploader, RoleReader, RolePIIViewer, RoleAdmin, RoleAuditor}

// AllRoles returns every known role in a stable order. The caller owns the
// returned slice and may modify it.
func AllRoles() []string {
	return slices.Clone(allRoles)
}

// KnownRole reports whether role is one of the roles returned by [AllRoles].
func KnownRole(role string) bool {
	return slices.Contains(allRoles, role)
}

// ValidAccountID reports whether id is a well-formed account id: 1 to 63
// characters, each a lowercase ASCII letter, a digit or '-', starting with a
// letter. The rule lives in package layout, shared by every package that
// names accounts.
func ValidAccountID(id string) bool { return layout.ValidAccountID(id) }

// Principal is an authenticated caller: who it is, which account it acts for
// and which roles it holds.
type Principal struct {
	// Subject identifies the caller (the JWT "sub" claim).
	Subject string
	// Account is the id of the account the caller acts for.
	Account string
	// Roles are the roles the caller holds, each one of [AllRoles].
	Roles []string
}

// HasRole reports whether p holds role. A nil principal holds no role.
func (p *Principal) HasRole(role string) bool {
	return p != nil && slices.Contains(p.Roles, role)
}

// HasAnyRole reports whether p holds at least one of roles. It returns false
// when roles is empty or p is nil.
func (p *Principal) HasAnyRole(roles ...string) bool {
	for _, r := range roles {
		if p.HasRole(r) {
			return true
		}
	}
	return false
}

// principalKey is the context key under which a *Principal is stored.
type principalKey struct{}

// NewContext returns a copy of ctx that carries p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal stored in ctx by [NewContext]. It returns
// nil and false when ctx carries no principal.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	if !ok || p == nil {
		return nil, false
	}
	return p, true
}

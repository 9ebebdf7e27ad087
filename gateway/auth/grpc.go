package auth

import (
	"context"
	"errors"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the domain of every google.rpc.ErrorInfo this package
// attaches to a status.
const ErrorDomain = "sealgate.dev"

// Reasons in the google.rpc.ErrorInfo of statuses returned by this package.
const (
	// ReasonTokenMissing: the request has no usable "authorization: Bearer"
	// header (UNAUTHENTICATED).
	ReasonTokenMissing = "TOKEN_MISSING"
	// ReasonTokenInvalid: the bearer token failed verification
	// (UNAUTHENTICATED).
	ReasonTokenInvalid = "TOKEN_INVALID"
	// ReasonTokenExpired: the bearer token is authentic but expired
	// (UNAUTHENTICATED).
	ReasonTokenExpired = "TOKEN_EXPIRED"
	// ReasonRoleRequired: the caller lacks every role the method accepts
	// (PERMISSION_DENIED). The ErrorInfo metadata key "roles" lists the
	// accepted roles, separated by commas.
	ReasonRoleRequired = "ROLE_REQUIRED"
)

// exemptPrefixes are the method prefixes served without authentication:
// health checks and server reflection, so that probes and grpcurl work.
var exemptPrefixes = []string{
	"/grpc.health.v1.Health/",
	"/grpc.reflection.v1.ServerReflection/",
	"/grpc.reflection.v1alpha.ServerReflection/",
}

// Exempt reports whether the gRPC method fullMethod (as in
// "/package.Service/Method") is served without authentication: the health
// service and server reflection.
func Exempt(fullMethod string) bool {
	for _, p := range exemptPrefixes {
		if strings.HasPrefix(fullMethod, p) {
			return true
		}
	}
	return false
}

// NotExempt reports whether the call described by c needs authentication.
// It is meant for selector.MatchFunc of go-grpc-middleware v2, so that the
// auth interceptor runs for every method but the exempt ones:
//
//	selector.UnaryServerInterceptor(
//		grpcauth.UnaryServerInterceptor(verifier.AuthFunc),
//		selector.MatchFunc(auth.NotExempt))
func NotExempt(_ context.Context, c interceptors.CallMeta) bool {
	return !Exempt(c.FullMethod())
}

// AuthFunc authenticates a gRPC request by the bearer token in its
// "authorization" metadata. It matches grpcauth.AuthFunc of go-grpc-middleware
// v2. On success it returns ctx with the caller's [Principal] attached (see
// [FromContext]). On failure it returns an UNAUTHENTICATED status whose
// ErrorInfo reason is [ReasonTokenMissing] when no bearer token was sent,
// [ReasonTokenExpired] when the token has expired and [ReasonTokenInvalid]
// for any other fault; the status says nothing more about why.
func (v *Verifier) AuthFunc(ctx context.Context) (context.Context, error) {
	tok, err := grpcauth.AuthFromMD(ctx, "bearer")
	tok = strings.TrimSpace(tok)
	if err != nil || tok == "" {
		return nil, statusError(codes.Unauthenticated, "missing bearer token", ReasonTokenMissing, nil)
	}
	p, err := v.Verify(tok)
	switch {
	case errors.Is(err, ErrTokenExpired):
		return nil, statusError(codes.Unauthenticated, "token expired", ReasonTokenExpired, nil)
	case err != nil:
		return nil, statusError(codes.Unauthenticated, "invalid token", ReasonTokenInvalid, nil)
	}
	return NewContext(ctx, p), nil
}

// Require returns the principal in ctx if it holds at least one of roles.
// With no roles given, it only checks that ctx carries a principal. It
// returns an UNAUTHENTICATED status with reason [ReasonTokenMissing] when ctx
// carries no principal, and a PERMISSION_DENIED status with reason
// [ReasonRoleRequired] and the message "requires role: a or b" when the
// principal holds none of roles.
func Require(ctx context.Context, roles ...string) (*Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return nil, statusError(codes.Unauthenticated, "missing bearer token", ReasonTokenMissing, nil)
	}
	if len(roles) == 0 || p.HasAnyRole(roles...) {
		return p, nil
	}
	return nil, statusError(codes.PermissionDenied,
		"requires role: "+strings.Join(roles, " or "),
		ReasonRoleRequired,
		map[string]string{"roles": strings.Join(roles, ",")})
}

// statusError returns a gRPC status error with code and msg that carries a
// google.rpc.ErrorInfo with domain [ErrorDomain], reason and metadata.
func statusError(code codes.Code, msg, reason string, metadata map[string]string) error {
	st := status.New(code, msg)
	info := &errdetails.ErrorInfo{Domain: ErrorDomain, Reason: reason, Metadata: metadata}
	if withInfo, err := st.WithDetails(info); err == nil {
		st = withInfo
	}
	return st.Err()
}

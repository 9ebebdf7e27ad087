package gateway

import (
	"context"
	"errors"

	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/limits"
)

// maxAuditedName bounds how much of a caller-supplied name an audit event
// keeps.
const maxAuditedName = 256

// AuthFunc returns v's AuthFunc, recording every refused call in the audit
// log (method, peer, reason; never the token).
func (g *Gateway) AuthFunc(v *auth.Verifier) grpcauth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		out, err := v.AuthFunc(ctx)
		if err != nil {
			g.audit.Record(audit.Event{Kind: audit.KindAuthDenied, Method: methodOf(ctx), Peer: peerOf(ctx),
				Outcome: audit.OutcomeDenied, Detail: errorReasonOf(err)})
		}
		return out, err
	}
}

// require is auth.Require that records a refusal for the caller's role.
func (g *Gateway) require(ctx context.Context, roles ...string) (*auth.Principal, error) {
	p, err := auth.Require(ctx, roles...)
	if err != nil {
		e := audit.Event{Kind: audit.KindAccessDenied, Method: methodOf(ctx), Peer: peerOf(ctx),
			Outcome: audit.OutcomeDenied, Detail: errorReasonOf(err)}
		if q, ok := auth.FromContext(ctx); ok {
			e.Account, e.Actor = q.Account, q.Subject
		}
		if e.Detail == auth.ReasonTokenMissing {
			e.Kind = audit.KindAuthDenied
		}
		g.audit.Record(e)
	}
	return p, err
}

// otherAccount records that p named name, a resource of another account.
// The caller still answers exactly as for a missing resource.
func (g *Gateway) otherAccount(ctx context.Context, p *auth.Principal, name string) {
	if len(name) > maxAuditedName {
		name = name[:maxAuditedName]
	}
	g.audit.Record(audit.Event{Kind: audit.KindAccessDenied, Account: p.Account, Actor: p.Subject, Artifact: name,
		Method: methodOf(ctx), Peer: peerOf(ctx), Outcome: audit.OutcomeDenied, Detail: "OTHER_ACCOUNT"})
}

// limited maps a limits.Exceeded to RESOURCE_EXHAUSTED / QUOTA_EXCEEDED with
// the limit's name and a google.rpc.RetryInfo, and audits it.
func (g *Gateway) limited(ctx context.Context, ex *limits.Exceeded) error {
	e := audit.Event{Kind: audit.KindRateLimited, Method: methodOf(ctx), Outcome: audit.OutcomeDenied, Detail: ex.Limit}
	if p, ok := auth.FromContext(ctx); ok {
		e.Account, e.Actor = p.Account, p.Subject
	}
	g.audit.Record(e)
	info := &errdetails.ErrorInfo{Reason: ReasonQuotaExceeded, Domain: ErrorDomain, Metadata: map[string]string{"limit": ex.Limit}}
	if ex.RetryAfter <= 0 {
		// More than the limit allows at all: no RetryInfo, since
		// retrying cannot help until an operator raises the limit.
		st := status.New(codes.ResourceExhausted, "this request needs more than "+ex.Limit+" allows; retrying will not help")
		if d, err := st.WithDetails(info); err == nil {
			st = d
		}
		return st.Err()
	}
	st := status.New(codes.ResourceExhausted, "limit reached: "+ex.Limit+"; retry later")
	if d, err := st.WithDetails(info, &errdetails.RetryInfo{RetryDelay: durationpb.New(ex.RetryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}

// asExceeded reports whether err is a limits.Exceeded.
func asExceeded(err error) (*limits.Exceeded, bool) {
	var ex *limits.Exceeded
	ok := errors.As(err, &ex)
	return ex, ok
}

func methodOf(ctx context.Context) string {
	m, _ := grpc.Method(ctx)
	return m
}

func peerOf(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

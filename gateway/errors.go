package gateway

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"

	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/store"
)

// ErrorDomain is the google.rpc.ErrorInfo domain of every sealgate error.
const ErrorDomain = auth.ErrorDomain

// Stable reasons in google.rpc.ErrorInfo. Clients branch on these; they never
// change meaning.
const (
	ReasonKeyRevoked            = "KEY_REVOKED"             // PERMISSION_DENIED
	ReasonKeyServiceUnavailable = "KEY_SERVICE_UNAVAILABLE" // UNAVAILABLE
	ReasonContentBlocked        = "CONTENT_BLOCKED"         // FAILED_PRECONDITION
	ReasonRedactionPending      = "REDACTION_PENDING"       // FAILED_PRECONDITION
	ReasonRequestInProgress     = "REQUEST_IN_PROGRESS"     // UNAVAILABLE
	ReasonRequestIDReused       = "REQUEST_ID_REUSED"       // FAILED_PRECONDITION
	ReasonRetentionOutOfRange   = "RETENTION_OUT_OF_RANGE"  // INVALID_ARGUMENT
	ReasonUnknownSIPZone        = "UNKNOWN_SIP_ZONE"        // INVALID_ARGUMENT
	ReasonUnknownRegion         = "UNKNOWN_REGION"          // FAILED_PRECONDITION, or INVALID_ARGUMENT for a malformed code
	ReasonArtifactDeleted       = "ARTIFACT_DELETED"        // FAILED_PRECONDITION
	ReasonQuotaExceeded         = "QUOTA_EXCEEDED"          // RESOURCE_EXHAUSTED
	ReasonInvalidArgument       = "INVALID_ARGUMENT"        // INVALID_ARGUMENT
	ReasonArtifactNotFound      = "ARTIFACT_NOT_FOUND"      // NOT_FOUND
	ReasonAccountNotFound       = "ACCOUNT_NOT_FOUND"       // NOT_FOUND
	ReasonIntegrity             = "INTEGRITY_CHECK_FAILED"  // DATA_LOSS
	ReasonStorageUnavailable    = "STORAGE_UNAVAILABLE"     // UNAVAILABLE
	ReasonSizeMismatch          = "SIZE_MISMATCH"           // INVALID_ARGUMENT
	ReasonUploadIdle            = "UPLOAD_IDLE"             // DEADLINE_EXCEEDED
	ReasonUploadTooSlow         = "UPLOAD_TOO_SLOW"         // DEADLINE_EXCEEDED
	ReasonReadStalled           = "READ_STALLED"            // DEADLINE_EXCEEDED
	ReasonKeyNotAllowed         = "KEY_NOT_ALLOWED"         // INVALID_ARGUMENT (settings), FAILED_PRECONDITION (data)
	ReasonWrongKey              = "WRONG_KEY"               // FAILED_PRECONDITION
	ReasonEtagMismatch          = "ETAG_MISMATCH"           // ABORTED
	ReasonKeyNotFound           = "KEY_NOT_FOUND"           // FAILED_PRECONDITION
)

// newStatus builds a status with an ErrorInfo detail.
func newStatus(code codes.Code, msg, reason string, meta map[string]string, extra ...protoadapt.MessageV1) error {
	st := status.New(code, msg)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain, Metadata: meta}}
	for _, e := range extra {
		details = append(details, e)
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		st = withDetails
	}
	return st.Err()
}

// invalidArgument is INVALID_ARGUMENT with one field violation.
func invalidArgument(field, desc, reason string) error {
	return newStatus(codes.InvalidArgument, field+": "+desc, reason, nil,
		&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
			{Field: field, Description: desc, Reason: reason},
		}})
}

// validationStatus maps a policy.ValidationError to INVALID_ARGUMENT with one
// field violation per problem. The ErrorInfo reason is the first specific
// reason found (e.g. RETENTION_OUT_OF_RANGE), else INVALID_ARGUMENT.
func validationStatus(ve *policy.ValidationError) error {
	br := &errdetails.BadRequest{}
	reason, msg := ReasonInvalidArgument, "invalid settings"
	for i, v := range ve.Violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: v.Field, Description: v.Description, Reason: v.Reason,
		})
		if reason == ReasonInvalidArgument && v.Reason != "" {
			reason = v.Reason
		}
		if i == 0 {
			msg = v.Field + ": " + v.Description
		}
	}
	return newStatus(codes.InvalidArgument, msg, reason, nil, br)
}

func artifactNotFound(name string) error {
	return newStatus(codes.NotFound, "artifact not found: "+echo(name), ReasonArtifactNotFound, nil)
}

// maxEcho bounds how much of a caller's input an error message repeats.
const maxEcho = 128

// echo returns s for an error message: at most maxEcho bytes of it, cut at
// a rune boundary and marked when cut, with unprintable runes quoted.
func echo(s string) string {
	if len(s) <= maxEcho && printable(s) {
		return s
	}
	cut := s
	if len(cut) > maxEcho {
		cut = strings.ToValidUTF8(cut[:maxEcho], "")
		return strconv.QuoteToGraphic(cut) + "…"
	}
	return strconv.QuoteToGraphic(cut)
}

// toStatus maps an internal error to the status a client sees. Errors that
// are already statuses pass through. Anything unexpected becomes INTERNAL with
// a generic message; the detail goes to the log only.
func (g *Gateway) toStatus(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if ex, ok := asExceeded(err); ok {
		return g.limited(ctx, ex)
	}
	var ve *policy.ValidationError
	switch {
	case errors.As(err, &ve):
		return validationStatus(ve)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, lifecycle.ErrShredded), errors.Is(err, lifecycle.ErrPurging):
		// Purged, or being purged: past the point where a hold can keep it.
		return newStatus(codes.NotFound, "artifact not found", ReasonArtifactNotFound, nil)
	case errors.Is(err, keys.ErrKeyNotAllowed):
		g.log.WarnContext(ctx, "key not allowed", "op", op, "err", err)
		return keyNotAllowed()
	case errors.Is(err, keys.ErrKeyRevoked):
		g.log.WarnContext(ctx, "key revoked", "op", op, "err", err)
		return newStatus(codes.PermissionDenied, "the customer key is revoked or access to it was denied", ReasonKeyRevoked, nil)
	case errors.Is(err, keys.ErrKeyUnavailable):
		g.log.WarnContext(ctx, "key service unavailable", "op", op, "err", err)
		return newStatus(codes.Unavailable, "the key service is unavailable; retry later", ReasonKeyServiceUnavailable, nil)
	case errors.Is(err, keys.ErrWrongKey):
		g.log.ErrorContext(ctx, "wrong key", "op", op, "err", err)
		return newStatus(codes.FailedPrecondition, "the configured key is not the key that protects this artifact (was a key replaced?)", ReasonWrongKey, nil)
	case errors.Is(err, keys.ErrUnknownKey):
		g.log.ErrorContext(ctx, "key not found", "op", op, "err", err)
		return newStatus(codes.FailedPrecondition, "the key that protects this artifact is not configured here", ReasonKeyNotFound, nil)
	case errors.Is(err, keys.ErrIntegrity), errors.Is(err, keys.ErrFormat):
		g.log.ErrorContext(ctx, "integrity check failed", "op", op, "err", err)
		return newStatus(codes.DataLoss, "stored artifact failed its integrity check", ReasonIntegrity, nil)
	case errors.Is(err, policy.ErrUnknownSIPZone):
		return invalidArgument("header.sip_zone", "unknown SIP zone", ReasonUnknownSIPZone)
	case errors.Is(err, policy.ErrUnknownRegion):
		return newStatus(codes.FailedPrecondition, err.Error(), ReasonUnknownRegion, nil)
	case errors.Is(err, policy.ErrAccountNotFound):
		return newStatus(codes.NotFound, "account not found", ReasonAccountNotFound, nil)
	case errors.Is(err, store.ErrUnavailable):
		g.log.WarnContext(ctx, "storage unavailable", "op", op, "err", err)
		return newStatus(codes.Unavailable, "storage is unavailable; retry later", ReasonStorageUnavailable, nil)
	}
	g.log.ErrorContext(ctx, "internal error", "op", op, "err", err)
	return status.Error(codes.Internal, "internal error")
}

// errorReasonOf returns the ErrorInfo reason of a status error, or its code.
func errorReasonOf(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return "INTERNAL"
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return st.Code().String()
}

// isStatus reports whether err is a gRPC status with code c.
func isStatus(err error, c codes.Code) bool {
	if err == nil {
		return false
	}
	st, ok := status.FromError(err)
	return ok && st.Code() == c
}

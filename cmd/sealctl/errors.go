package main

import (
	"fmt"
	"io"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// codeNames are the canonical names of the gRPC status codes, as in
// google.rpc.Code and grpcurl ("NOT_FOUND", not "NotFound").
var codeNames = map[codes.Code]string{
	codes.OK:                 "OK",
	codes.Canceled:           "CANCELLED",
	codes.Unknown:            "UNKNOWN",
	codes.InvalidArgument:    "INVALID_ARGUMENT",
	codes.DeadlineExceeded:   "DEADLINE_EXCEEDED",
	codes.NotFound:           "NOT_FOUND",
	codes.AlreadyExists:      "ALREADY_EXISTS",
	codes.PermissionDenied:   "PERMISSION_DENIED",
	codes.ResourceExhausted:  "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION",
	codes.Aborted:            "ABORTED",
	codes.OutOfRange:         "OUT_OF_RANGE",
	codes.Unimplemented:      "UNIMPLEMENTED",
	codes.Internal:           "INTERNAL",
	codes.Unavailable:        "UNAVAILABLE",
	codes.DataLoss:           "DATA_LOSS",
	codes.Unauthenticated:    "UNAUTHENTICATED",
}

// codeName returns the canonical name of c, or "CODE(n)" for a code gRPC
// does not define.
func codeName(c codes.Code) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("CODE(%d)", uint32(c))
}

// statusReport is what sealctl prints about a failed call.
type statusReport struct {
	code       string
	message    string
	reason     string
	violations []*errdetails.BadRequest_FieldViolation
}

// reportOf returns the report of err and true when err carries a gRPC
// status, and false otherwise.
func reportOf(err error) (statusReport, bool) {
	st, ok := status.FromError(err)
	if !ok {
		return statusReport{}, false
	}
	r := statusReport{code: codeName(st.Code()), message: st.Message()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			if r.reason == "" {
				r.reason = d.GetReason()
			}
		case *errdetails.BadRequest:
			r.violations = append(r.violations, d.GetFieldViolations()...)
		}
	}
	return r, true
}

// format renders the report: "sealctl: CODE: message [REASON]" and one
// indented line per field violation, leaving out a lone violation that only
// repeats the message.
func (r statusReport) format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sealctl: %s: %s", r.code, r.message)
	if r.reason != "" {
		fmt.Fprintf(&b, " [%s]", r.reason)
	}
	b.WriteByte('\n')
	for _, v := range r.violations {
		if len(r.violations) == 1 && v.GetField()+": "+v.GetDescription() == r.message {
			// The message already says it all; print only a new reason.
			if v.GetReason() == "" || v.GetReason() == r.reason {
				break
			}
		}
		fmt.Fprintf(&b, "  %s: %s", v.GetField(), v.GetDescription())
		if v.GetReason() != "" {
			fmt.Fprintf(&b, " [%s]", v.GetReason())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// printError writes err to w: a gRPC status as its code, message, ErrorInfo
// reason and field violations; any other error as "sealctl: <error>".
func printError(w io.Writer, err error) {
	if r, ok := reportOf(err); ok {
		io.WriteString(w, r.format())
		return
	}
	fmt.Fprintf(w, "sealctl: %v\n", err)
}

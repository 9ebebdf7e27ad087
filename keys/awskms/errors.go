package awskms

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sealgate/sealgate/keys"
)

// Error codes that KMS or the AWS front end may send without a typed
// exception in the KMS model.
var (
	// deniedCodes mean the caller may not use the key.
	deniedCodes = map[string]bool{
		"AccessDeniedException": true,
		"AccessDenied":          true,
	}
	// unavailableCodes mean KMS is overloaded, or that our own credentials
	// did not authenticate: KMS could not be asked about the key, which is
	// not a refusal by the key's owner.
	unavailableCodes = map[string]bool{
		"ThrottlingException":         true,
		"Throttling":                  true,
		"LimitExceededException":      true,
		"RequestLimitExceeded":        true,
		"TooManyRequestsException":    true,
		"ServiceUnavailable":          true,
		"ServiceUnavailableException": true,
		"InternalFailure":             true,
		"RequestTimeout":              true,
		"RequestTimeoutException":     true,
		"UnrecognizedClientException": true,
		"InvalidSignatureException":   true,
		"IncompleteSignature":         true,
		"ExpiredTokenException":       true,
		"InvalidClientTokenId":        true,
	}
)

// classify wraps err, the failure of a KMS call made for op, in the error
// class of package keys that it belongs to:
//
//   - the context's error when ctx has ended, so that errors.Is(err,
//     ctx.Err()) holds;
//   - keys.ErrKeyRevoked for a disabled key, a key pending deletion or in
//     another unusable state, a key not found, or access denied;
//   - keys.ErrIntegrity for a ciphertext that does not decrypt under the
//     key and context;
//   - keys.ErrWrongKey for a ciphertext of another key (IncorrectKey);
//   - keys.ErrKeyUnavailable for KMS internal errors, dependency timeouts,
//     unavailable key stores, throttling, any 5xx status, failed
//     authentication of our credentials, and every failure where KMS sent
//     no answer at all (network errors, timeouts, credential lookups);
//   - keys.ErrKeyRevoked too for other answers of KMS (validation errors,
//     wrong key usage): KMS answered, and the key cannot serve sealgate.
//
// The message starts with "awskms: " and holds the SDK's error, which names
// the operation and KMS's message but never the request's plaintext.
func classify(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("awskms: %s: %w (%v)", op, cerr, err)
	}
	if class := classOf(err); class != nil {
		return fmt.Errorf("awskms: %s: %w: %w", op, class, err)
	}
	return fmt.Errorf("awskms: %s: %w", op, err)
}

// classOf returns the keys error class of a KMS call's error, or nil.
func classOf(err error) error {
	var (
		disabled     *types.DisabledException
		invalidState *types.KMSInvalidStateException
		notFound     *types.NotFoundException
		invalidCT    *types.InvalidCiphertextException
		incorrectKey *types.IncorrectKeyException
		internal     *types.KMSInternalException
		depTimeout   *types.DependencyTimeoutException
		keyUnavail   *types.KeyUnavailableException
		limit        *types.LimitExceededException
	)
	switch {
	case errors.As(err, &disabled), errors.As(err, &invalidState), errors.As(err, &notFound):
		return keys.ErrKeyRevoked
	case errors.As(err, &incorrectKey):
		return keys.ErrWrongKey
	case errors.As(err, &invalidCT):
		return keys.ErrIntegrity
	case errors.As(err, &internal), errors.As(err, &depTimeout), errors.As(err, &keyUnavail), errors.As(err, &limit):
		return keys.ErrKeyUnavailable
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch code := apiErr.ErrorCode(); {
		case deniedCodes[code]:
			return keys.ErrKeyRevoked
		case unavailableCodes[code]:
			return keys.ErrKeyUnavailable
		}
	}
	var sendErr *smithyhttp.RequestSendError
	if errors.As(err, &sendErr) {
		return keys.ErrKeyUnavailable // no connection, or no answer in time
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		s := 0
		if respErr.Response != nil && respErr.Response.Response != nil {
			s = respErr.HTTPStatusCode()
		}
		if s == 0 || s >= 500 || s == http.StatusTooManyRequests {
			return keys.ErrKeyUnavailable
		}
		return keys.ErrKeyRevoked // KMS answered and refused: the key cannot serve
	}
	if apiErr != nil {
		return keys.ErrKeyRevoked
	}
	var invalid *smithy.InvalidParamsError
	if errors.As(err, &invalid) {
		return nil // refused by the SDK before sending
	}
	return keys.ErrKeyUnavailable // no answer from KMS at all
}

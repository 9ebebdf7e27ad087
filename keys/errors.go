package keys

import "errors"

// Error classes. Drivers and the envelope wrap these so that callers can tell
// them apart with errors.Is; the wrapped detail is for logs, never for clients.
var (
	// ErrKeyRevoked means the key service answered and refused: the key is
	// disabled, scheduled for deletion or deleted, or access to it was revoked.
	// Retrying will not help until the customer restores access.
	ErrKeyRevoked = errors.New("keys: key revoked or access denied")

	// ErrKeyUnavailable means the key service could not be asked or did not
	// answer in time. It is never used for a refusal.
	ErrKeyUnavailable = errors.New("keys: key service unavailable")

	// ErrIntegrity means a wrapped key, header or body failed authentication:
	// it was tampered with, truncated, moved from another artifact, or wrapped
	// under another key or context. It reveals nothing about which check
	// failed.
	ErrIntegrity = errors.New("keys: integrity check failed")

	// ErrFormat means the bytes are not a sealgate object of a known version.
	ErrFormat = errors.New("keys: not a sealgate object or unsupported format version")

	// ErrWrongKey means the key service answered, but the key it holds under
	// that name is not the key that wrapped the data key: the key was
	// replaced (a local keyset created anew, say) or the slot names another
	// key. It is a key problem, not tampering.
	ErrWrongKey = errors.New("keys: a different key than the one that wrapped the data key")

	// ErrUnknownKey means no driver is configured for a key URI.
	ErrUnknownKey = errors.New("keys: no driver for key URI")

	// ErrKeyNotAllowed means the key URI names an endpoint the operator did
	// not register (a Vault server, mount, AWS region or AWS account), or an
	// account that may not use it. Drivers return it before any network I/O,
	// so no credential is ever sent to an endpoint outside the configuration.
	ErrKeyNotAllowed = errors.New("keys: key endpoint not allowed")
)

package vaulttransit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/sealgate/sealgate/keys"
)

// classify maps a vault/api error to the keys error classes. The detail
// (Vault's error list, never data) is kept for logs.
func classify(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("vaulttransit: %s: %w", op, ctx.Err())
	}
	class := classOf(err)
	if class == nil {
		// An answer of no known meaning: the key service is not usable now.
		// Clients learn nothing more (not whether anything listened at all).
		class = keys.ErrKeyUnavailable
	}
	return fmt.Errorf("%w: vaulttransit: %s: %v", class, op, err)
}

func classOf(err error) error {
	var re *vault.ResponseError
	if errors.As(err, &re) {
		msg := strings.ToLower(strings.Join(re.Errors, "; "))
		switch {
		case re.StatusCode == 403:
			return keys.ErrKeyRevoked // token revoked or expired, policy removed
		case re.StatusCode == 429 || re.StatusCode >= 500:
			return keys.ErrKeyUnavailable // rate limited, sealed, standby, internal
		case strings.Contains(msg, "encryption key not found"), strings.Contains(msg, "key not found"),
			strings.Contains(msg, "disallowed by policy"), strings.Contains(msg, "key is disabled"):
			return keys.ErrKeyRevoked // deleted key, min_decryption_version raised
		case re.StatusCode == 404:
			return keys.ErrKeyRevoked // the transit mount or key is gone
		case re.StatusCode == 400:
			return keys.ErrIntegrity // message authentication failed, invalid ciphertext
		}
		return nil
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "EOF") {
		return keys.ErrKeyUnavailable
	}
	return nil
}

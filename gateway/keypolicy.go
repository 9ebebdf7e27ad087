package gateway

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// localScheme is the scheme of keys.local keys, which live on the
// gateway's own disk.
const localScheme = "local"

// errProviderKeyAsCustomer is a customer key URI that names the provider's
// own key: CUSTOMER_AND_PROVIDER would silently mean provider-only.
var errProviderKeyAsCustomer = fmt.Errorf("%w: the provider's key cannot be a customer key", keys.ErrKeyNotAllowed)

// checkCustomerKey decides, without any network I/O, whether account may
// name the customer key of kp: not the provider's key, not a local:// key
// unless the config allows them, and only an endpoint the operator
// registered for the account. It returns nil for modes without a customer
// key, or an error wrapping keys.ErrKeyNotAllowed or keys.ErrUnknownKey.
func (g *Gateway) checkCustomerKey(account string, kp *sealgatev1.KeyPolicy) error {
	if kp.GetMode() != sealgatev1.KeyMode_KEY_MODE_CUSTOMER && kp.GetMode() != sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER {
		return nil
	}
	uri := kp.GetCustomerKeyUri()
	if uri == g.cfg.ProviderKeyURI {
		return errProviderKeyAsCustomer
	}
	if !slices.Contains(g.cfg.CustomerKeySchemes, keys.Scheme(uri)) ||
		keys.Scheme(uri) == localScheme && !g.cfg.AllowLocalCustomerKeys {
		return fmt.Errorf("%w: customer keys of scheme %q are not allowed here", keys.ErrKeyNotAllowed, keys.Scheme(uri))
	}
	return g.cfg.Keyring.CheckAccount(uri, account)
}

// keyPolicyStatus maps a checkCustomerKey error to INVALID_ARGUMENT with a
// field violation on field: reason KEY_NOT_ALLOWED, or INVALID_ARGUMENT
// for a malformed URI. The message never says why an endpoint is refused
// beyond "not registered".
func keyPolicyStatus(field string, err error) error {
	switch {
	case errors.Is(err, errProviderKeyAsCustomer):
		return invalidArgument(field, "the provider's key cannot be a customer key", ReasonKeyNotAllowed)
	case errors.Is(err, keys.ErrKeyNotAllowed):
		return invalidArgument(field, "this key's service is not registered for the account (ask the operator)", ReasonKeyNotAllowed)
	}
	return invalidArgument(field, "not a key URI this gateway can serve", ReasonInvalidArgument)
}

// keyNotAllowed is the status of an upload or read whose key the gateway
// may no longer call for the account.
func keyNotAllowed() error {
	return newStatus(codes.FailedPrecondition, "the key's service is not registered for this account", ReasonKeyNotAllowed, nil)
}

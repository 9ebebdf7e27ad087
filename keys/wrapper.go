package keys

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// Wrapper wraps and unwraps data keys under one key encryption key (KEK). Every
// driver (local, awskms, vaulttransit) implements it and runs the keystest
// conformance suite.
type Wrapper interface {
	// KeyURI returns the URI of the key encryption key, e.g. "local://provider"
	// or "aws-kms://arn:aws:kms:us-east-1:111122223333:key/ID".
	KeyURI() string

	// Wrap encrypts a data key bound to ec. It returns an error wrapping
	// ErrKeyRevoked when the key service refuses, ErrKeyUnavailable when it
	// cannot be reached, or the context's error when ctx ends first.
	Wrap(ctx context.Context, plaintext []byte, ec EncryptionContext) ([]byte, error)

	// Unwrap decrypts a data key wrapped by Wrap under the same key and ec. It
	// returns an error wrapping ErrIntegrity when the wrapped bytes, the key or
	// ec do not match, ErrKeyRevoked or ErrKeyUnavailable as Wrap does, or the
	// context's error when ctx ends first. It checks that the key that answered
	// is the key of this Wrapper.
	Unwrap(ctx context.Context, wrapped []byte, ec EncryptionContext) ([]byte, error)
}

// ResolvingWrapper is a Wrapper whose URI may name an alias of a key, as AWS
// KMS alias ARNs do. A header must record the key that answered, not the
// alias: decrypting by the key itself keeps old artifacts readable after the
// alias is pointed at another key, and new artifacts follow the alias.
type ResolvingWrapper interface {
	Wrapper
	// WrapResolved wraps like Wrap and also returns the URI of the key that
	// did the wrapping (the alias's target at that moment; the Wrapper's own
	// URI when it names a key).
	WrapResolved(ctx context.Context, plaintext []byte, ec EncryptionContext) (wrapped []byte, keyURI string, err error)
	// ResolveKeyURI returns the URI of the key the Wrapper's URI names now,
	// asked on behalf of account (whose access to the key is checked, and
	// whose credentials are used, as by Wrap), with the errors of Wrap.
	ResolveKeyURI(ctx context.Context, account string) (string, error)
}

// AccountChecker is implemented by Openers that restrict which keys an
// account may name. CheckAccount makes no network call; it returns an error
// wrapping ErrKeyNotAllowed when account may not use uri (an endpoint the
// operator did not register, or registered for other accounts only), or
// ErrUnknownKey when uri is malformed.
type AccountChecker interface {
	CheckAccount(uri, account string) error
}

// Opener opens a Wrapper for a key URI of the scheme it serves.
type Opener interface {
	// OpenWrapper returns the Wrapper for uri, or an error wrapping
	// ErrUnknownKey when the URI names no key this opener serves.
	OpenWrapper(ctx context.Context, uri string) (Wrapper, error)
}

// Scheme returns the scheme of a key URI ("local", "aws-kms", "hcvault"), or
// "" when uri has none.
func Scheme(uri string) string {
	i := strings.Index(uri, "://")
	if i <= 0 {
		return ""
	}
	return uri[:i]
}

// Keyring resolves key URIs to Wrappers through one Opener per scheme and
// keeps the opened Wrappers for reuse. It is safe for concurrent use.
type Keyring struct {
	mu       sync.Mutex
	openers  map[string]Opener
	wrappers map[string]Wrapper
}

// NewKeyring returns an empty Keyring.
func NewKeyring() *Keyring {
	return &Keyring{openers: map[string]Opener{}, wrappers: map[string]Wrapper{}}
}

// Register makes o serve key URIs of scheme.
func (k *Keyring) Register(scheme string, o Opener) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.openers[scheme] = o
}

// Add makes w serve its own key URI directly.
func (k *Keyring) Add(w Wrapper) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.wrappers[w.KeyURI()] = w
}

// CheckAccount reports, without network I/O, whether account may name uri
// as its key: nil, or an error wrapping ErrKeyNotAllowed or ErrUnknownKey.
// A URI added with Add (the provider's key) is not checked here: callers
// decide whether a tenant may name it.
func (k *Keyring) CheckAccount(uri, account string) error {
	k.mu.Lock()
	o := k.openers[Scheme(uri)]
	_, added := k.wrappers[uri]
	k.mu.Unlock()
	if o == nil {
		if added {
			return nil
		}
		return fmt.Errorf("%w: %q", ErrUnknownKey, uri)
	}
	if c, ok := o.(AccountChecker); ok {
		return c.CheckAccount(uri, account)
	}
	return nil
}

// ResolveKeyURI returns the URI of the key that uri names now, asked on
// behalf of account: uri itself, or an alias's target for a
// ResolvingWrapper.
func (k *Keyring) ResolveKeyURI(ctx context.Context, uri, account string) (string, error) {
	w, err := k.Wrapper(ctx, uri)
	if err != nil {
		return "", err
	}
	if rw, ok := w.(ResolvingWrapper); ok {
		return rw.ResolveKeyURI(ctx, account)
	}
	return uri, nil
}

// Wrapper returns the Wrapper for uri. It returns an error wrapping
// ErrUnknownKey when no opener serves the URI's scheme.
func (k *Keyring) Wrapper(ctx context.Context, uri string) (Wrapper, error) {
	k.mu.Lock()
	w, ok := k.wrappers[uri]
	o := k.openers[Scheme(uri)]
	k.mu.Unlock()
	if ok {
		return w, nil
	}
	if o == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, uri)
	}
	w, err := o.OpenWrapper(ctx, uri)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if prev, ok := k.wrappers[uri]; ok {
		return prev, nil
	}
	k.wrappers[uri] = w
	return w, nil
}

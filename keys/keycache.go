package keys

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"

	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// ContextIntermediateKey names the id of an intermediate key in the context
// its KEK wraps it under (with ContextAccount).
const ContextIntermediateKey = "intermediate_key"

// maxCachedKeys bounds each of the cache's maps; expired entries are swept
// when a map grows past it.
const maxCachedKeys = 4096

// KeyEvent describes one call to a key encryption key, for metrics and audit.
type KeyEvent struct {
	Op       string // "wrap" or "unwrap"
	KeyURI   string
	Account  string
	Err      error
	Duration time.Duration
}

// KeyCache amortizes KEK calls like S3 Bucket Keys. For each account and KEK
// it makes an intermediate key, wraps it once with the KEK, and seals data-key
// shares with it for at most the revocation bound; then it makes a new one.
// Unwrapped intermediate keys are likewise reused for at most the bound after
// the KEK last confirmed access by a successful unwrap, so a revoked or
// disabled KEK stops uploads and reads within the bound; a key made for
// sealing never serves reads, since a KEK may allow Encrypt and deny Decrypt. A KEK that cannot be reached is never papered
// over with a stale key once the bound has passed. It is safe for concurrent
// use.
type KeyCache struct {
	resolver KeyResolver
	bound    time.Duration
	now      func() time.Time
	observe  func(KeyEvent)
	group    singleflight.Group

	mu      sync.Mutex
	sealing map[string]*intermediate // by account and KEK URI
	opening map[string]*intermediate // by account, KEK URI and key id
}

type intermediate struct {
	kek      string // URI of the key that wrapped it (an alias's target)
	id       []byte
	wrapped  []byte
	aead     cipher.AEAD
	verified time.Time // when the KEK last confirmed access
}

// CacheOption configures a KeyCache.
type CacheOption func(*KeyCache)

// WithClock sets the cache's clock (tests).
func WithClock(now func() time.Time) CacheOption { return func(c *KeyCache) { c.now = now } }

// WithObserver calls f after every KEK call the cache makes.
func WithObserver(f func(KeyEvent)) CacheOption { return func(c *KeyCache) { c.observe = f } }

// NewKeyCache returns a cache that resolves KEKs through r and trusts an
// intermediate key for at most bound.
func NewKeyCache(r KeyResolver, bound time.Duration, opts ...CacheOption) *KeyCache {
	c := &KeyCache{
		resolver: r, bound: bound, now: time.Now, observe: func(KeyEvent) {},
		sealing: map[string]*intermediate{}, opening: map[string]*intermediate{},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Bound returns the revocation bound.
func (c *KeyCache) Bound() time.Duration { return c.bound }

// For returns a ShareWrapper that seals shares for the KEK uri through the
// account's current intermediate key (SlotKindIntermediate).
func (c *KeyCache) For(uri string) ShareWrapper { return cachedWrapper{c: c, uri: uri} }

type cachedWrapper struct {
	c   *KeyCache
	uri string
}

func (w cachedWrapper) WrapShare(ctx context.Context, share []byte, ec EncryptionContext) (Slot, error) {
	account := ec[ContextAccount]
	ik, err := w.c.current(ctx, account, w.uri)
	if err != nil {
		return Slot{}, err
	}
	nonce := make([]byte, ik.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Slot{}, fmt.Errorf("keys: nonce: %w", err)
	}
	sealed := ik.aead.Seal(nonce, nonce, share, shareAD(ec))
	return Slot{Kind: SlotKindIntermediate, KeyURI: ik.kek, IKID: ik.id, WrappedIK: ik.wrapped, Wrapped: sealed}, nil
}

// UnwrapShare opens a slot of either kind. SlotKindShare slots go to their KEK
// every time; SlotKindIntermediate slots reuse the unwrapped intermediate key
// while the KEK confirmed access less than the bound ago.
func (c *KeyCache) UnwrapShare(ctx context.Context, s Slot, ec EncryptionContext) ([]byte, error) {
	if s.Kind == SlotKindShare {
		start := c.now()
		share, err := unwrapDirect(ctx, c.resolver, s, ec)
		c.observe(KeyEvent{Op: "unwrap", KeyURI: s.KeyURI, Account: ec[ContextAccount], Err: err, Duration: c.now().Sub(start)})
		return share, err
	}
	if s.Kind != SlotKindIntermediate || len(s.IKID) != IntermediateKeyIDLen {
		return nil, fmt.Errorf("%w: slot kind %d", ErrIntegrity, s.Kind)
	}
	ik, err := c.opened(ctx, ec[ContextAccount], s)
	if err != nil {
		return nil, err
	}
	ns := ik.aead.NonceSize()
	if len(s.Wrapped) < ns {
		return nil, fmt.Errorf("%w: sealed share too short", ErrIntegrity)
	}
	share, err := ik.aead.Open(nil, s.Wrapped[:ns], s.Wrapped[ns:], shareAD(ec))
	if err != nil {
		return nil, fmt.Errorf("%w: sealed share", ErrIntegrity)
	}
	return share, nil
}

// current returns the account's intermediate key for sealing under uri,
// making and wrapping a new one when none is younger than the bound.
func (c *KeyCache) current(ctx context.Context, account, uri string) (*intermediate, error) {
	k := account + "\x00" + uri
	if ik := c.fresh(c.sealing, k); ik != nil {
		return ik, nil
	}
	v, err := c.do(ctx, "seal\x00"+k, func(ctx context.Context) (any, error) {
		if ik := c.fresh(c.sealing, k); ik != nil {
			return ik, nil
		}
		w, err := c.wrapper(ctx, uri)
		if err != nil {
			return nil, err
		}
		key, id := make([]byte, 32), make([]byte, IntermediateKeyIDLen)
		defer clear(key)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if _, err := rand.Read(id); err != nil {
			return nil, err
		}
		start := c.now()
		kek, wrapped, err := uri, []byte(nil), error(nil)
		if rw, ok := w.(ResolvingWrapper); ok {
			wrapped, kek, err = rw.WrapResolved(ctx, key, ikContext(account, id))
		} else {
			wrapped, err = w.Wrap(ctx, key, ikContext(account, id))
		}
		c.observe(KeyEvent{Op: "wrap", KeyURI: uri, Account: account, Err: err, Duration: c.now().Sub(start)})
		if err != nil {
			return nil, err
		}
		ik, err := newIntermediate(id, wrapped, key, start)
		if err != nil {
			return nil, err
		}
		ik.kek = kek
		// Only sealing may use this key: a successful Encrypt says nothing
		// about Decrypt, so reads go to the KEK (opened) at least once per
		// bound even for artifacts this process just wrote.
		c.store(c.sealing, k, ik)
		return ik, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*intermediate), nil
}

// opened returns the unwrapped intermediate key of slot s, asking its KEK
// when the cached copy is older than the bound.
func (c *KeyCache) opened(ctx context.Context, account string, s Slot) (*intermediate, error) {
	k := account + "\x00" + s.KeyURI + "\x00" + string(s.IKID)
	// A cached key serves only a slot carrying the very wrapped bytes it came
	// from: an edited wrapped key must fail now, not once the cache expires.
	if ik := c.fresh(c.opening, k); ik != nil && bytes.Equal(ik.wrapped, s.WrappedIK) {
		return ik, nil
	}
	v, err := c.do(ctx, "open\x00"+k+"\x00"+string(s.WrappedIK), func(ctx context.Context) (any, error) {
		if ik := c.fresh(c.opening, k); ik != nil && bytes.Equal(ik.wrapped, s.WrappedIK) {
			return ik, nil
		}
		w, err := c.wrapper(ctx, s.KeyURI)
		if err != nil {
			return nil, err
		}
		start := c.now()
		key, err := w.Unwrap(ctx, s.WrappedIK, ikContext(account, s.IKID))
		c.observe(KeyEvent{Op: "unwrap", KeyURI: s.KeyURI, Account: account, Err: err, Duration: c.now().Sub(start)})
		if err != nil {
			c.forget(c.opening, k)
			return nil, err
		}
		defer clear(key)
		ik, err := newIntermediate(s.IKID, s.WrappedIK, key, start)
		if err != nil {
			return nil, err
		}
		ik.kek = s.KeyURI
		c.store(c.opening, k, ik)
		return ik, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*intermediate), nil
}

// kekCallTimeout bounds one shared KEK call, which runs detached from the
// request that started it.
const kekCallTimeout = 30 * time.Second

// do runs fn once for all concurrent callers of key. fn runs with a context
// detached from any one caller (so one client's cancellation does not fail
// the others) and bounded by kekCallTimeout; each caller still returns as
// soon as its own context ends.
func (c *KeyCache) do(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	ch := c.group.DoChan(key, func() (any, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), kekCallTimeout)
		defer cancel()
		return fn(dctx)
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *KeyCache) wrapper(ctx context.Context, uri string) (Wrapper, error) {
	w, err := c.resolver.Wrapper(ctx, uri)
	if err != nil {
		return nil, err
	}
	if w.KeyURI() != uri {
		return nil, fmt.Errorf("%w: resolver answered with another key", ErrIntegrity)
	}
	return w, nil
}

func newIntermediate(id, wrapped, key []byte, verified time.Time) (*intermediate, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: intermediate key of %d bytes", ErrIntegrity, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &intermediate{id: append([]byte(nil), id...), wrapped: append([]byte(nil), wrapped...), aead: g, verified: verified}, nil
}

// fresh returns m[k] when the KEK confirmed it less than the bound ago.
func (c *KeyCache) fresh(m map[string]*intermediate, k string) *intermediate {
	c.mu.Lock()
	defer c.mu.Unlock()
	ik := m[k]
	if ik == nil || c.now().Sub(ik.verified) >= c.bound {
		return nil
	}
	return ik
}

func (c *KeyCache) store(m map[string]*intermediate, k string, ik *intermediate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(m) >= maxCachedKeys {
		now := c.now()
		for key, e := range m {
			if now.Sub(e.verified) >= c.bound {
				delete(m, key)
			}
		}
		// Still full of fresh keys (a bulk read): drop arbitrary ones; they
		// cost one KEK call each if needed again.
		for key := range m {
			if len(m) < maxCachedKeys {
				break
			}
			delete(m, key)
		}
	}
	m[k] = ik
}

func (c *KeyCache) forget(m map[string]*intermediate, k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(m, k)
}

// ikContext is what a KEK wraps an intermediate key under: the customer's
// audit log names the account and the intermediate key.
func ikContext(account string, id []byte) EncryptionContext {
	return EncryptionContext{ContextAccount: account, ContextIntermediateKey: hex.EncodeToString(id)}
}

// shareAD binds a sealed share to its artifact's whole context.
func shareAD(ec EncryptionContext) []byte {
	return append([]byte("sealgate/v1/ik-share\x00"), ec.Encode()...)
}

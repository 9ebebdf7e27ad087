// Package keystest is the conformance suite that every key driver runs: the
// local driver against its keyset files, awskms against a KMS, vaulttransit
// against Vault. A driver passes when its Wrapper keeps the contract of
// keys.Wrapper, including its error classes.
package keystest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/sealgate/sealgate/keys"
)

// Harness tells the suite how to get keys from the driver under test.
type Harness struct {
	// NewWrapper returns a Wrapper for a new key, a different key each call.
	NewWrapper func(t *testing.T) keys.Wrapper
	// Revoke, when set, makes w's key refuse service the way a customer
	// would (disable it, revoke access); Restore, when set, undoes it.
	Revoke  func(t *testing.T, w keys.Wrapper)
	Restore func(t *testing.T, w keys.Wrapper)
	// Unreachable, when set, returns a Wrapper for w's key whose key
	// service cannot be reached (a closed port, a stopped server).
	Unreachable func(t *testing.T, w keys.Wrapper) keys.Wrapper
}

// RunConformance runs the suite against h.
func RunConformance(t *testing.T, h Harness) {
	t.Helper()
	ctx := context.Background()
	a := h.NewWrapper(t)
	b := h.NewWrapper(t)
	ec := Context("acct-a", "artifact-1")

	t.Run("KeyURI", func(t *testing.T) {
		if keys.Scheme(a.KeyURI()) == "" {
			t.Fatalf("KeyURI() = %q, want a URI with a scheme", a.KeyURI())
		}
		if a.KeyURI() == b.KeyURI() {
			t.Fatalf("two new keys share the URI %q, want distinct keys", a.KeyURI())
		}
	})
	t.Run("RoundTrip", func(t *testing.T) {
		for _, pt := range [][]byte{dataKey(1), dataKey(2)[:16], {0}} {
			w := mustWrap(t, a, pt, ec)
			if bytes.Contains(w, pt) && len(pt) >= 16 {
				t.Errorf("wrapped key contains the plaintext key")
			}
			got, err := a.Unwrap(ctx, w, ec)
			if err != nil {
				t.Fatalf("Unwrap: %v", err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatalf("Unwrap = %x, want %x", got, pt)
			}
		}
	})
	t.Run("Randomized", func(t *testing.T) {
		w1, w2 := mustWrap(t, a, dataKey(3), ec), mustWrap(t, a, dataKey(3), ec)
		if bytes.Equal(w1, w2) {
			t.Fatalf("two wraps of one key are equal, want randomized wrapping")
		}
	})
	t.Run("WrongContext", func(t *testing.T) {
		w := mustWrap(t, a, dataKey(4), ec)
		extra := ec.Clone()
		extra["extra"] = "x"
		missing := ec.Clone()
		delete(missing, keys.ContextType)
		for name, other := range map[string]keys.EncryptionContext{
			"other artifact": Context("acct-a", "artifact-2"),
			"other account":  Context("acct-b", "artifact-1"),
			"extra entry":    extra,
			"missing entry":  missing,
			"empty":          {},
		} {
			_, err := a.Unwrap(ctx, w, other)
			wantClass(t, name, err, keys.ErrIntegrity)
		}
	})
	t.Run("Tampered", func(t *testing.T) {
		w := mustWrap(t, a, dataKey(5), ec)
		for _, i := range []int{0, len(w) / 2, len(w) - 1} {
			bad := bytes.Clone(w)
			bad[i] ^= 0x01
			_, err := a.Unwrap(ctx, bad, ec)
			wantClass(t, fmt.Sprintf("bit flipped at %d", i), err, keys.ErrIntegrity)
		}
		_, err := a.Unwrap(ctx, w[:len(w)-1], ec)
		wantClass(t, "truncated", err, keys.ErrIntegrity)
		_, err = a.Unwrap(ctx, append(bytes.Clone(w), 0), ec)
		wantClass(t, "extended", err, keys.ErrIntegrity)
	})
	t.Run("OtherKey", func(t *testing.T) {
		// Drivers that can tell (a key id in the ciphertext, an answer
		// naming the key) say ErrWrongKey; the others ErrIntegrity.
		w := mustWrap(t, b, dataKey(6), ec)
		_, err := a.Unwrap(ctx, w, ec)
		if !errors.Is(err, keys.ErrWrongKey) {
			wantClass(t, "wrapped by another key", err, keys.ErrIntegrity)
		}
	})
	t.Run("CanceledContext", func(t *testing.T) {
		w := mustWrap(t, a, dataKey(7), ec)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := a.Wrap(cctx, dataKey(7), ec); !errors.Is(err, context.Canceled) {
			t.Errorf("Wrap with canceled context: got %v, want context.Canceled", err)
		}
		if _, err := a.Unwrap(cctx, w, ec); !errors.Is(err, context.Canceled) {
			t.Errorf("Unwrap with canceled context: got %v, want context.Canceled", err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				pt := dataKey(byte(i))
				w, err := a.Wrap(ctx, pt, ec)
				if err == nil {
					var got []byte
					got, err = a.Unwrap(ctx, w, ec)
					if err == nil && !bytes.Equal(got, pt) {
						err = fmt.Errorf("goroutine %d: unwrap mismatch", i)
					}
				}
				if err != nil {
					errs <- err
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("AmbiguousContexts", func(t *testing.T) {
		// Contexts that a naive concatenation would confuse must not match.
		for _, pair := range [][2]keys.EncryptionContext{
			{{"ab": "c"}, {"a": "bc"}},
			{{"a": "b", "c": "d"}, {"a": "bc", "d": ""}},
			{{"account": "x", "artifact": "yz"}, {"account": "xartifact", "artifact": "yz"}},
		} {
			w := mustWrap(t, a, dataKey(8), pair[0])
			_, err := a.Unwrap(ctx, w, pair[1])
			wantClass(t, fmt.Sprintf("context %v unwrapped as %v", pair[0], pair[1]), err, keys.ErrIntegrity)
		}
	})
	t.Run("Envelope", func(t *testing.T) { runEnvelope(t, a, b) })
	if h.Revoke != nil {
		t.Run("Revoked", func(t *testing.T) { runRevoked(t, h) })
	}
	if h.Unreachable != nil {
		t.Run("Unreachable", func(t *testing.T) {
			w := h.NewWrapper(t)
			wrapped := mustWrap(t, w, dataKey(9), ec)
			u := h.Unreachable(t, w)
			_, err := u.Unwrap(ctx, wrapped, ec)
			wantClass(t, "unwrap with the key service unreachable", err, keys.ErrKeyUnavailable)
			_, err = u.Wrap(ctx, dataKey(9), ec)
			wantClass(t, "wrap with the key service unreachable", err, keys.ErrKeyUnavailable)
		})
	}
}

// runRevoked checks that a revoked key refuses with ErrKeyRevoked, never
// ErrKeyUnavailable or ErrIntegrity, and serves again once restored.
func runRevoked(t *testing.T, h Harness) {
	ctx := context.Background()
	ec := Context("acct-r", "artifact-r")
	w := h.NewWrapper(t)
	wrapped := mustWrap(t, w, dataKey(10), ec)
	h.Revoke(t, w)
	_, err := w.Unwrap(ctx, wrapped, ec)
	wantClass(t, "unwrap with a revoked key", err, keys.ErrKeyRevoked)
	_, err = w.Wrap(ctx, dataKey(10), ec)
	wantClass(t, "wrap with a revoked key", err, keys.ErrKeyRevoked)
	if h.Restore == nil {
		return
	}
	h.Restore(t, w)
	got, err := w.Unwrap(ctx, wrapped, ec)
	if err != nil || !bytes.Equal(got, dataKey(10)) {
		t.Fatalf("unwrap after restore: got %x, %v; want the key back", got, err)
	}
}

// runEnvelope seals an object with the driver's key and checks that a key
// slot moved to another artifact does not open.
func runEnvelope(t *testing.T, a, b keys.Wrapper) {
	ctx := context.Background()
	kr := keys.NewKeyring()
	kr.Add(a)
	kr.Add(b)
	plain := bytes.Repeat([]byte("sealgate conformance "), 5000)
	seal := func(ec keys.EncryptionContext, keks ...keys.Wrapper) []byte {
		var buf bytes.Buffer
		w, _, err := keys.Seal(ctx, &buf, keys.SealParams{Context: ec, Mode: keys.ModeProvider, KEKs: keks})
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if _, err := w.Write(plain); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		return buf.Bytes()
	}
	open := func(obj []byte) ([]byte, error) {
		r := bytes.NewReader(obj)
		h, err := keys.ReadHeader(r)
		if err != nil {
			return nil, err
		}
		pr, err := h.Open(ctx, r, kr)
		if err != nil {
			return nil, err
		}
		return io.ReadAll(pr)
	}
	one := seal(Context("acct-a", "artifact-1"), a)
	got, err := open(one)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open sealed object: got %d bytes, err %v; want %d bytes", len(got), err, len(plain))
	}
	both := seal(Context("acct-a", "artifact-1"), a, b)
	if got, err := open(both); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open object sealed under two keys: got %d bytes, err %v", len(got), err)
	}
	// Move the wrapped key of artifact-2 into artifact-1's header.
	two := seal(Context("acct-a", "artifact-2"), a)
	h1, _ := keys.ReadHeader(bytes.NewReader(one))
	h2, _ := keys.ReadHeader(bytes.NewReader(two))
	h1.Slots = h2.Slots
	hb, err := h1.Encode()
	if err != nil {
		t.Fatal(err)
	}
	oldLen := len(one) - mustHeaderLen(t, one)
	swapped := append(hb, one[len(one)-oldLen:]...)
	_, err = open(swapped)
	wantClass(t, "wrapped key from another artifact", err, keys.ErrIntegrity)
}

func mustHeaderLen(t *testing.T, obj []byte) int {
	h, err := keys.ReadHeader(bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	return h.Len()
}

// Context returns the encryption context the gateway would use for an artifact.
func Context(account, artifact string) keys.EncryptionContext {
	return keys.EncryptionContext{
		keys.ContextAccount:  account,
		keys.ContextArtifact: artifact,
		keys.ContextType:     "CALL_RECORDING",
		keys.ContextRegion:   "us",
	}
}

func dataKey(seed byte) []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = seed + byte(i)*7
	}
	return k
}

func mustWrap(t *testing.T, w keys.Wrapper, pt []byte, ec keys.EncryptionContext) []byte {
	t.Helper()
	out, err := w.Wrap(context.Background(), pt, ec)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	return out
}

func wantClass(t *testing.T, name string, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Errorf("%s: got error %v, want %v", name, err, class)
	}
	for _, other := range []error{keys.ErrKeyRevoked, keys.ErrKeyUnavailable, keys.ErrIntegrity} {
		if other != class && errors.Is(err, other) {
			t.Errorf("%s: error %v is also %v, want only %v", name, err, other, class)
		}
	}
}

package keys_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/keystest"
	"github.com/sealgate/sealgate/keys/local"
)

// switchable is a KEK that counts its calls and can be revoked or made
// unreachable, like a customer's KMS key.
type switchable struct {
	keys.Wrapper
	calls atomic.Int64
	mu    sync.Mutex
	fail  error
}

func (s *switchable) set(err error) { s.mu.Lock(); s.fail = err; s.mu.Unlock() }

func (s *switchable) failure() error { s.mu.Lock(); defer s.mu.Unlock(); return s.fail }

func (s *switchable) Wrap(ctx context.Context, pt []byte, ec keys.EncryptionContext) ([]byte, error) {
	s.calls.Add(1)
	if err := s.failure(); err != nil {
		return nil, err
	}
	return s.Wrapper.Wrap(ctx, pt, ec)
}

func (s *switchable) Unwrap(ctx context.Context, w []byte, ec keys.EncryptionContext) ([]byte, error) {
	s.calls.Add(1)
	if err := s.failure(); err != nil {
		return nil, err
	}
	return s.Wrapper.Unwrap(ctx, w, ec)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func newCache(t *testing.T, bound time.Duration) (*keys.KeyCache, *switchable, *clock) {
	w, err := local.Open(t.TempDir(), "customer")
	if err != nil {
		t.Fatal(err)
	}
	sw := &switchable{Wrapper: w}
	kr := keys.NewKeyring()
	kr.Add(sw)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	return keys.NewKeyCache(kr, bound, keys.WithClock(clk.now)), sw, clk
}

func sealVia(t *testing.T, c *keys.KeyCache, account, artifact string, plain []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, _, err := keys.Seal(context.Background(), &buf, keys.SealParams{
		Context: keystest.Context(account, artifact), Mode: keys.ModeCustomer,
		Wrappers: []keys.ShareWrapper{c.For("local://customer")},
	})
	if err != nil {
		return nil, err
	}
	w.Write(plain)
	w.Close()
	return buf.Bytes(), nil
}

func openVia(c *keys.KeyCache, obj []byte) ([]byte, error) {
	r := bytes.NewReader(obj)
	h, err := keys.ReadHeader(r)
	if err != nil {
		return nil, err
	}
	pr, err := h.Open(context.Background(), r, c)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	_, err = out.ReadFrom(pr)
	return out.Bytes(), err
}

func TestKeyCacheAmortizesKEKCalls(t *testing.T) {
	c, sw, clk := newCache(t, 30*time.Second)
	var objs [][]byte
	for i := 0; i < 1000; i++ {
		obj, err := sealVia(t, c, "acme", fmt.Sprint("a", i), []byte("small"))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, obj)
		clk.advance(50 * time.Millisecond) // 1000 uploads over 50 s
	}
	// 50 s at a 30 s bound: the first key, and one more after 30 s.
	if got := sw.calls.Load(); got != 2 {
		t.Fatalf("KEK calls for 1000 uploads over 50s = %d, want 2 (one per bound elapsed, plus one)", got)
	}
	sw.calls.Store(0)
	for _, obj := range objs {
		if _, err := openVia(c, obj); err != nil {
			t.Fatal(err)
		}
	}
	// Each of the two intermediate keys is unwrapped once: a key made for
	// sealing never serves reads without a Decrypt of its own.
	if got := sw.calls.Load(); got != 2 {
		t.Fatalf("KEK calls for 1000 reads = %d, want 2 (one unwrap per intermediate key)", got)
	}
	sw.calls.Store(0)
	for _, obj := range objs {
		if _, err := openVia(c, obj); err != nil {
			t.Fatal(err)
		}
	}
	if got := sw.calls.Load(); got != 0 {
		t.Fatalf("KEK calls for 1000 more reads within the bound = %d, want 0", got)
	}
}

// decryptDenied is a KEK whose Encrypt works and whose Decrypt is refused,
// like a Vault policy with encrypt but not decrypt.
type decryptDenied struct{ *switchable }

func (d decryptDenied) Unwrap(context.Context, []byte, keys.EncryptionContext) ([]byte, error) {
	d.calls.Add(1)
	return nil, fmt.Errorf("%w: decrypt denied by policy", keys.ErrKeyRevoked)
}

func TestKeyCacheSealingKeyNeverServesReads(t *testing.T) {
	w, err := local.Open(t.TempDir(), "customer")
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.NewKeyring()
	kr.Add(decryptDenied{&switchable{Wrapper: w}})
	c := keys.NewKeyCache(kr, time.Hour)
	obj, err := sealVia(t, c, "acme", "a1", []byte("fresh upload"))
	if err != nil {
		t.Fatalf("seal with Encrypt allowed: %v", err)
	}
	if got, err := openVia(c, obj); !errors.Is(err, keys.ErrKeyRevoked) {
		t.Fatalf("read with Decrypt denied, right after the upload: got %q, %v; want ErrKeyRevoked", got, err)
	}
}

func TestKeyCacheRevocationWithinBound(t *testing.T) {
	const bound = 30 * time.Second
	c, sw, clk := newCache(t, bound)
	obj, err := sealVia(t, c, "acme", "a1", []byte("recording"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openVia(c, obj); err != nil { // the KEK confirms Decrypt now
		t.Fatal(err)
	}
	sw.set(fmt.Errorf("%w: disabled", keys.ErrKeyRevoked))
	// Within the bound the cached key still serves...
	clk.advance(bound - time.Second)
	if _, err := openVia(c, obj); err != nil {
		t.Fatalf("read within the bound after revocation: %v, want served from cache", err)
	}
	// ...and once the bound has passed, nothing does.
	clk.advance(time.Second)
	if _, err := openVia(c, obj); !errors.Is(err, keys.ErrKeyRevoked) {
		t.Fatalf("read at the bound after revocation: got %v, want ErrKeyRevoked", err)
	}
	if _, err := sealVia(t, c, "acme", "a2", []byte("x")); !errors.Is(err, keys.ErrKeyRevoked) {
		t.Fatalf("upload at the bound after revocation: got %v, want ErrKeyRevoked", err)
	}
	sw.set(fmt.Errorf("%w: connection refused", keys.ErrKeyUnavailable))
	if _, err := openVia(c, obj); !errors.Is(err, keys.ErrKeyUnavailable) || errors.Is(err, keys.ErrKeyRevoked) {
		t.Fatalf("read with the KEK unreachable: got %v, want ErrKeyUnavailable only", err)
	}
	sw.set(nil)
	if got, err := openVia(c, obj); err != nil || string(got) != "recording" {
		t.Fatalf("read after access returned: %q, %v; want the recording", got, err)
	}
}

func TestKeyCacheIsolatesAccounts(t *testing.T) {
	c, _, _ := newCache(t, time.Minute)
	a, _ := sealVia(t, c, "acme", "a1", []byte("acme's"))
	b, _ := sealVia(t, c, "globex", "b1", []byte("globex's"))
	ha, _ := keys.ReadHeader(bytes.NewReader(a))
	hb, _ := keys.ReadHeader(bytes.NewReader(b))
	if bytes.Equal(ha.Slots[0].IKID, hb.Slots[0].IKID) {
		t.Fatal("two accounts share an intermediate key")
	}
	// acme's slot (its intermediate key is hot in the cache) in globex's header.
	hb.Slots = ha.Slots
	hdr, _ := hb.Encode()
	swapped := append(hdr, b[len(b)-int(keys.BodySize(8, keys.DefaultSegmentSize)):]...)
	if _, err := openVia(c, swapped); !errors.Is(err, keys.ErrIntegrity) {
		t.Fatalf("another account's key slot: got %v, want ErrIntegrity", err)
	}
}

func TestKeyCacheOneKEKCallUnderConcurrency(t *testing.T) {
	c, sw, _ := newCache(t, time.Minute)
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := sealVia(t, c, "acme", fmt.Sprint("c", i), []byte("x")); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if got := sw.calls.Load(); got != 1 {
		t.Fatalf("KEK calls for 32 concurrent first uploads = %d, want 1", got)
	}
}

func TestRewrapKeepsBody(t *testing.T) {
	c, _, _ := newCache(t, time.Minute)
	obj, _ := sealVia(t, c, "acme", "a1", pattern(300000))
	r := bytes.NewReader(obj)
	h, _ := keys.ReadHeader(r)
	other, err := local.Open(t.TempDir(), "next")
	if err != nil {
		t.Fatal(err)
	}
	nh, err := h.Rewrap(context.Background(), c, keys.ModeProvider, []keys.ShareWrapper{keys.Direct(other)})
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := nh.Encode()
	moved := append(hdr, obj[h.Len():]...)
	kr := keys.NewKeyring()
	kr.Add(other)
	cache := keys.NewKeyCache(kr, time.Minute)
	got, err := openVia(cache, moved)
	if err != nil || !bytes.Equal(got, pattern(300000)) {
		t.Fatalf("rewrapped object: %d bytes, %v; want the original plaintext under the new key alone", len(got), err)
	}
	if nh.Mode != keys.ModeProvider || nh.KeyURIs()[0] != "local://next" {
		t.Fatalf("rewrapped header mode %v keys %v", nh.Mode, nh.KeyURIs())
	}
}

func TestKeyCacheChecksWrappedKeyWhenHot(t *testing.T) {
	c, _, _ := newCache(t, time.Minute)
	obj, _ := sealVia(t, c, "acme", "a1", []byte("hot"))
	h, _ := keys.ReadHeader(bytes.NewReader(obj))
	h.Slots[0].WrappedIK[10] ^= 1 // past Tink's key id prefix
	hdr, _ := h.Encode()
	bad := append(hdr, obj[h.Len():]...)
	if _, err := openVia(c, bad); !errors.Is(err, keys.ErrIntegrity) {
		t.Fatalf("edited wrapped intermediate key with the key cached: got %v, want ErrIntegrity", err)
	}
	if got, err := openVia(c, obj); err != nil || string(got) != "hot" {
		t.Fatalf("intact object after the tampered one: %q, %v", got, err)
	}
}

// slowKEK delays every call until release is closed.
type slowKEK struct {
	keys.Wrapper
	release chan struct{}
}

func (s *slowKEK) Wrap(ctx context.Context, pt []byte, ec keys.EncryptionContext) ([]byte, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Wrapper.Wrap(ctx, pt, ec)
}

func TestKeyCacheCallerCancellationIsPrivate(t *testing.T) {
	w, _ := local.Open(t.TempDir(), "slow")
	kek := &slowKEK{Wrapper: w, release: make(chan struct{})}
	kr := keys.NewKeyring()
	kr.Add(kek)
	c := keys.NewKeyCache(kr, time.Minute)
	ec := keystest.Context("acme", "a")
	first, cancelFirst := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err := c.For(w.KeyURI()).WrapShare(first, make([]byte, 32), ec); errs <- err }()
	time.Sleep(50 * time.Millisecond)
	go func() { _, err := c.For(w.KeyURI()).WrapShare(context.Background(), make([]byte, 32), ec); errs <- err }()
	time.Sleep(50 * time.Millisecond)
	cancelFirst()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: got %v, want context.Canceled at once", err)
	}
	close(kek.release)
	if err := <-errs; err != nil {
		t.Fatalf("second caller after the first cancelled: %v, want success", err)
	}
}

// failingReader returns data, then a storage error.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestStorageErrorIsNotIntegrity(t *testing.T) {
	f := newFixture(t)
	obj := f.seal(t, keystest.Context("a", "b"), pattern(3*seg))
	h, err := keys.ReadHeader(bytes.NewReader(obj))
	if err != nil {
		t.Fatal(err)
	}
	unavailable := errors.New("connection reset by peer")
	body := &failingReader{data: obj[h.Len() : h.Len()+seg+100], err: unavailable}
	pr, err := h.Open(context.Background(), body, f.kr)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, pr)
	if !errors.Is(err, unavailable) || errors.Is(err, keys.ErrIntegrity) {
		t.Fatalf("body stream failing mid-read: got %v, want the stream's own error, not ErrIntegrity", err)
	}
}

// aliased is a KEK whose URI names an alias: every wrap reports the key
// the alias points to at that moment.
type aliased struct {
	keys.Wrapper
	target string
}

func (a *aliased) KeyURI() string { return "local://alias" }

func (a *aliased) WrapResolved(ctx context.Context, pt []byte, ec keys.EncryptionContext) ([]byte, string, error) {
	b, err := a.Wrapper.Wrap(ctx, pt, ec)
	return b, a.target, err
}

func (a *aliased) ResolveKeyURI(context.Context, string) (string, error) { return a.target, nil }

func TestKeyCacheRecordsTheKeyAnAliasNamed(t *testing.T) {
	w, err := local.Open(t.TempDir(), "customer")
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.NewKeyring()
	kr.Add(&aliased{Wrapper: w, target: "local://customer"})
	kr.Add(w)
	c := keys.NewKeyCache(kr, time.Hour)
	var buf bytes.Buffer
	enc, h, err := keys.Seal(context.Background(), &buf, keys.SealParams{
		Context: keystest.Context("acme", "a1"), Mode: keys.ModeCustomer,
		Wrappers: []keys.ShareWrapper{c.For("local://alias")},
	})
	if err != nil {
		t.Fatal(err)
	}
	enc.Write([]byte("by alias"))
	enc.Close()
	if got := h.KeyURIs(); len(got) != 1 || got[0] != "local://customer" {
		t.Fatalf("slot key URIs %v, want the alias's target [local://customer]", got)
	}
	if got, err := openVia(c, buf.Bytes()); err != nil || string(got) != "by alias" {
		t.Fatalf("read by the recorded key: %q, %v", got, err)
	}
}

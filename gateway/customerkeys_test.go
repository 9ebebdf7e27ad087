package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/mover"
	"github.com/sealgate/sealgate/keys"
	"github.com/sealgate/sealgate/keys/local"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// testKMS serves "test://NAME" keys backed by local keysets, each of which
// a test can revoke or make unreachable, like a customer's KMS.
type testKMS struct {
	clock *fakeClock // the gateway's clock: tests move it past the bound
	dir   string
	mu    sync.Mutex
	fail  map[string]error
	calls map[string]int
}

func newTestKMS(t *testing.T) *testKMS {
	return &testKMS{clock: &fakeClock{t: time.Now()}, dir: t.TempDir(), fail: map[string]error{}, calls: map[string]int{}}
}

func (k *testKMS) set(name string, err error) { k.mu.Lock(); k.fail[name] = err; k.mu.Unlock() }

func (k *testKMS) call(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls[name]++
	return k.fail[name]
}

func (k *testKMS) OpenWrapper(_ context.Context, uri string) (keys.Wrapper, error) {
	name, ok := strings.CutPrefix(uri, "test://")
	if !ok {
		return nil, keys.ErrUnknownKey
	}
	w, err := local.Open(k.dir, name)
	if err != nil {
		return nil, err
	}
	return &testKey{uri: uri, name: name, w: w, kms: k}, nil
}

type testKey struct {
	uri, name string
	w         *local.Wrapper
	kms       *testKMS
}

func (t *testKey) KeyURI() string { return t.uri }

func (t *testKey) Wrap(ctx context.Context, pt []byte, ec keys.EncryptionContext) ([]byte, error) {
	if err := t.kms.call(t.name); err != nil {
		return nil, err
	}
	return t.w.Wrap(ctx, pt, ec)
}

func (t *testKey) Unwrap(ctx context.Context, b []byte, ec keys.EncryptionContext) ([]byte, error) {
	if err := t.kms.call(t.name); err != nil {
		return nil, err
	}
	return t.w.Unwrap(ctx, b, ec)
}

var (
	revoked     = fmt.Errorf("%w: DisabledException", keys.ErrKeyRevoked)
	unreachable = fmt.Errorf("%w: connection refused", keys.ErrKeyUnavailable)
)

const testBound = time.Second

func startWithKMS(t *testing.T, mutate ...func(*config.Config)) (*gatewaytest.Env, *testKMS) {
	kms := newTestKMS(t)
	env := gatewaytest.Start(t, func(c *config.Config) {
		c.Keys.RevocationBound = testBound
		c.Keys.ProviderKeyURI = "test://provider"
		c.ExtraDrivers = map[string]keys.Opener{"test": kms}
		c.Clock = kms.clock.now
		for _, m := range mutate {
			m(c)
		}
	})
	return env, kms
}

// reset forgets the calls counted so far.
func (k *testKMS) reset() { k.mu.Lock(); k.calls = map[string]int{}; k.mu.Unlock() }

// count returns the calls made to key name.
func (k *testKMS) count(name string) int { k.mu.Lock(); defer k.mu.Unlock(); return k.calls[name] }

func setKeyPolicy(t *testing.T, env *gatewaytest.Env, mode sealgatev1.KeyMode, uri string) error {
	_, err := update(env, t, "demo", &sealgatev1.AccountSettings{KeyPolicy: &sealgatev1.KeyPolicy{Mode: mode, CustomerKeyUri: uri}}, "key_policy")
	return err
}

func readErr(env *gatewaytest.Env, ctx context.Context, name string) error {
	_, err := env.Read(ctx, name, io.Discard)
	return err
}

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestCustomerKeyRevocationWithinBound(t *testing.T) {
	env, kms := startWithKMS(t)
	clk := kms.clock
	ctx := env.Ctx(t, "demo")
	if err := setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "test://acme"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(600<<10, 3)
	a := mustUpload(t, env, ctx, callHeader("us-west"), data)
	if a.GetKeyMode() != sealgatev1.KeyMode_KEY_MODE_CUSTOMER || a.GetKeyUris()[0] != "test://acme" {
		t.Fatalf("artifact keys: %v %v, want CUSTOMER test://acme", a.GetKeyMode(), a.GetKeyUris())
	}
	mustRead(t, env, ctx, a.GetName()) // the KMS confirms Decrypt: reads may use the cache for the bound
	kms.set("acme", revoked)
	// Up to the bound, the cached keys still serve: the bound is a promise
	// about the longest delay, and the cache must not call the KMS sooner.
	clk.advance(testBound - time.Millisecond)
	if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
		t.Fatal("read within the bound differs")
	}
	mustUpload(t, env, ctx, callHeader("us-west"), []byte("within the bound"))
	// At the bound, nothing is served and nothing is stored.
	clk.advance(time.Millisecond)
	wantStatus(t, "read at the bound after revocation", readErr(env, ctx, a.GetName()), codes.PermissionDenied, "KEY_REVOKED")
	before := len(objectFiles(t, env.DataDir))
	_, err := env.Upload(ctx, callHeader("us-west"), bytes.NewReader([]byte("new")), 10)
	wantStatus(t, "upload at the bound after revocation", err, codes.PermissionDenied, "KEY_REVOKED")
	if n := len(objectFiles(t, env.DataDir)); n != before {
		t.Fatalf("objects after the refused upload: %d, want %d", n, before)
	}
	kms.set("acme", unreachable)
	wantStatus(t, "read with the KMS unreachable", readErr(env, ctx, a.GetName()), codes.Unavailable, "KEY_SERVICE_UNAVAILABLE")
	st, err := env.Keys.CheckKeyAccess(ctx, &sealgatev1.CheckKeyAccessRequest{Account: "accounts/demo"})
	if err != nil || st.GetKeys()[0].GetState() != sealgatev1.KeyAccess_STATE_UNAVAILABLE {
		t.Fatalf("CheckKeyAccess while unreachable: %v, %v; want UNAVAILABLE", st, err)
	}
	kms.set("acme", revoked)
	st, err = env.Keys.CheckKeyAccess(ctx, &sealgatev1.CheckKeyAccessRequest{Account: "accounts/demo"})
	if err != nil || st.GetKeys()[0].GetState() != sealgatev1.KeyAccess_STATE_REVOKED {
		t.Fatalf("CheckKeyAccess while revoked: %v, %v; want REVOKED", st, err)
	}
	kms.set("acme", nil)
	if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
		t.Fatal("read after access returned is not byte-exact")
	}
	st, err = env.Keys.CheckKeyAccess(ctx, &sealgatev1.CheckKeyAccessRequest{Account: "accounts/demo"})
	if err != nil || st.GetKeys()[0].GetState() != sealgatev1.KeyAccess_STATE_OK {
		t.Fatalf("CheckKeyAccess after restore: %v, %v; want OK", st, err)
	}
}

func TestCustomerAndProviderEachHalfStopsReads(t *testing.T) {
	env, kms := startWithKMS(t)
	ctx := env.Ctx(t, "demo")
	if err := setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER, "test://acme"); err != nil {
		t.Fatal(err)
	}
	a := mustUpload(t, env, ctx, callHeader("us-west"), []byte("two keys"))
	if got := a.GetKeyUris(); len(got) != 2 || got[0] != "test://acme" || got[1] != "test://provider" {
		t.Fatalf("key URIs = %v, want [test://acme test://provider]", got)
	}
	for _, half := range []string{"acme", "provider"} {
		kms.set(half, revoked)
		kms.clock.advance(testBound)
		wantStatus(t, "read with "+half+" revoked", readErr(env, ctx, a.GetName()), codes.PermissionDenied, "KEY_REVOKED")
		kms.set(half, nil)
		if got := mustRead(t, env, ctx, a.GetName()); string(got) != "two keys" {
			t.Fatalf("read after %s restored: %q", half, got)
		}
	}
}

func TestSettingsRefuseUnusableKey(t *testing.T) {
	env, kms := startWithKMS(t)
	kms.set("dead", revoked)
	err := setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "test://dead")
	wantStatus(t, "switch to a revoked key", err, codes.PermissionDenied, "KEY_REVOKED")
	kms.set("dead", unreachable)
	err = setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "test://dead")
	wantStatus(t, "switch to an unreachable key", err, codes.Unavailable, "KEY_SERVICE_UNAVAILABLE")
	err = setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "local://nonexistent")
	wantStatus(t, "switch to a missing local key", err, codes.InvalidArgument, "INVALID_ARGUMENT")
	err = setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "gcp-kms://x")
	wantStatus(t, "switch to an unsupported scheme", err, codes.InvalidArgument, "")
	s, err := env.Accounts.GetAccountSettings(env.Ctx(t, "demo"), &sealgatev1.GetAccountSettingsRequest{Name: "accounts/demo/settings"})
	if err != nil {
		t.Fatal(err)
	}
	if s.GetKeyPolicy().GetMode() == sealgatev1.KeyMode_KEY_MODE_CUSTOMER {
		t.Fatalf("a refused key policy was saved: %v", s.GetKeyPolicy())
	}
}

func TestRewrapMovesAccountToNewKey(t *testing.T) {
	env, kms := startWithKMS(t)
	ctx := env.Ctx(t, "demo")
	if err := setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "test://old"); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for i := 0; i < 30; i++ {
		data := randomBytes(1000+i*5000, uint64(i))
		zone := []string{"us-west", "de-fra", "jp-tyo"}[i%3]
		want[mustUpload(t, env, ctx, callHeader(zone), data).GetName()] = data
	}
	if err := setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "test://new"); err != nil {
		t.Fatal(err)
	}
	// The first call is cancelled after its first progress; the second resumes.
	cctx, cancel := context.WithCancel(ctx)
	stream, err := env.Keys.RewrapArtifacts(cctx, &sealgatev1.RewrapArtifactsRequest{Account: "accounts/demo"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetArtifactsTotal() != 30 || first.GetArtifactsDone() == 0 {
		t.Fatalf("first progress = %v, want total 30 and some done", first)
	}
	last := drain(t, env, ctx, first.GetResumeToken())
	if got := first.GetArtifactsDone() + last.GetArtifactsDone() + last.GetArtifactsSkipped(); got != 30 {
		t.Fatalf("done %d + resumed %v: want all 30 artifacts handled", first.GetArtifactsDone(), last)
	}
	again := drain(t, env, ctx, "")
	if again.GetArtifactsDone() != 0 || again.GetArtifactsSkipped() != 30 {
		t.Fatalf("second full run: %v, want all 30 skipped (idempotent)", again)
	}
	kms.set("old", revoked)
	kms.clock.advance(testBound)
	for name, data := range want {
		if got := mustRead(t, env, ctx, name); !bytes.Equal(got, data) {
			t.Fatalf("%s after rewrap and old key disabled: not byte-exact", name)
		}
		a, _ := env.Artifacts.GetArtifact(ctx, &sealgatev1.GetArtifactRequest{Name: name})
		if a.GetKeyUris()[0] != "test://new" {
			t.Fatalf("%s key URIs %v, want test://new", name, a.GetKeyUris())
		}
	}
}

// drain runs RewrapArtifacts from resume to the end and returns its last message.
func drain(t *testing.T, env *gatewaytest.Env, ctx context.Context, resume string) *sealgatev1.RewrapArtifactsResponse {
	t.Helper()
	stream, err := env.Keys.RewrapArtifacts(ctx, &sealgatev1.RewrapArtifactsRequest{Account: "accounts/demo", ResumeToken: resume})
	if err != nil {
		t.Fatal(err)
	}
	var last *sealgatev1.RewrapArtifactsResponse
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return last
		}
		if err != nil {
			t.Fatalf("rewrap: %v", err)
		}
		last = msg
	}
}

func TestRewrapMidMoveCoversBothCopies(t *testing.T) {
	env, kms := startWithKMS(t)
	ctx := env.Ctx(t, "demo")
	if _, err := update(env, t, "demo", &sealgatev1.AccountSettings{StorageRegion: "de"}, "storage_region"); err != nil {
		t.Fatal(err)
	}
	if err := setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "test://old"); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(300<<10, 5)
	a := mustUpload(t, env, ctx, callHeader("us-west"), data)
	// The mover stops after copying: a staged and a stored copy exist.
	m := env.Runtime.Mover
	m.SetHook(func(step string, _ layout.Ref) error {
		if step == mover.StepCopied {
			return fmt.Errorf("crash after copy")
		}
		return nil
	})
	m.Pass(context.Background())
	m.SetHook(nil)
	if err := setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "test://new"); err != nil {
		t.Fatal(err)
	}
	if last := drain(t, env, ctx, ""); last.GetArtifactsDone() != 1 {
		t.Fatalf("rewrap: %v, want the artifact re-wrapped", last)
	}
	if _, err := m.Pass(context.Background()); err != nil { // finish the move
		t.Fatal(err)
	}
	kms.set("old", revoked)
	kms.clock.advance(testBound)
	if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
		t.Fatal("read after the move and old key disabled is not byte-exact")
	}
}

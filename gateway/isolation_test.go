package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/gateway/limits"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// trap is a TCP listener that counts every connection made to it: a host a
// tenant names, which must never hear from the gateway.
type trap struct {
	lis   net.Listener
	conns atomic.Int64
}

func newTrap(t *testing.T) *trap {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &trap{lis: lis}
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			tr.conns.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { lis.Close() })
	return tr
}

func (tr *trap) addr() string { return tr.lis.Addr().String() }

func keyPolicy(mode sealgatev1.KeyMode, uri string) *sealgatev1.KeyPolicy {
	return &sealgatev1.KeyPolicy{Mode: mode, CustomerKeyUri: uri}
}

func TestUnregisteredKeyEndpointsAreNeverCalled(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "s.provider-vault-token")
	t.Setenv("VAULT_ADDR", "")
	vault, kms := newTrap(t), newTrap(t)
	t.Setenv("AWS_ENDPOINT_URL_KMS", "http://"+kms.addr())
	t.Setenv("AWS_ACCESS_KEY_ID", "AKID")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	for _, uri := range []string{
		"hcvault://" + vault.addr() + "/transit/keys/x",
		"aws-kms://arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
	} {
		for _, mode := range []sealgatev1.KeyMode{sealgatev1.KeyMode_KEY_MODE_CUSTOMER, sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER} {
			_, err := update(env, t, "demo", &sealgatev1.AccountSettings{KeyPolicy: keyPolicy(mode, uri)}, "key_policy")
			st := wantStatus(t, "settings naming "+uri, err, codes.InvalidArgument, "KEY_NOT_ALLOWED")
			if fv := fieldViolations(st); len(fv) != 1 || fv[0].GetField() != "key_policy.customer_key_uri" {
				t.Errorf("field violations %v, want one on key_policy.customer_key_uri", fv)
			}
			stream, err := env.Keys.RewrapArtifacts(ctx, &sealgatev1.RewrapArtifactsRequest{Account: "accounts/demo", KeyPolicy: keyPolicy(mode, uri)})
			if err == nil {
				_, err = stream.Recv()
			}
			wantStatus(t, "rewrap naming "+uri, err, codes.InvalidArgument, "KEY_NOT_ALLOWED")
		}
		// A policy stored before the endpoint was unregistered: probes and
		// uploads must not call it either.
		s, err := env.Runtime.Settings.Get(context.Background(), "demo")
		if err != nil {
			t.Fatal(err)
		}
		s.KeyPolicy = keyPolicy(sealgatev1.KeyMode_KEY_MODE_CUSTOMER, uri)
		if err := env.Runtime.Settings.Put(context.Background(), "demo", s); err != nil {
			t.Fatal(err)
		}
		resp, err := env.Keys.CheckKeyAccess(ctx, &sealgatev1.CheckKeyAccessRequest{Account: "accounts/demo"})
		if err != nil || resp.GetKeys()[0].GetState() != sealgatev1.KeyAccess_STATE_NOT_ALLOWED {
			t.Errorf("CheckKeyAccess of a stored unregistered key: %v, %v; want NOT_ALLOWED", resp, err)
		}
		_, err = env.Upload(ctx, callHeader("us-west"), strings.NewReader("x"), 10)
		wantStatus(t, "upload under "+uri, err, codes.FailedPrecondition, "KEY_NOT_ALLOWED")
		stream, err := env.Keys.RewrapArtifacts(ctx, &sealgatev1.RewrapArtifactsRequest{Account: "accounts/demo"})
		if err == nil {
			_, err = stream.Recv()
		}
		wantStatus(t, "rewrap under the stored "+uri, err, codes.FailedPrecondition, "KEY_NOT_ALLOWED")
	}
	time.Sleep(100 * time.Millisecond) // a connection in flight would have been accepted by now
	if n := vault.conns.Load() + kms.conns.Load(); n != 0 {
		t.Fatalf("the named hosts got %d connections, want none", n)
	}
}

func TestProviderAndLocalKeysAreNotCustomerKeys(t *testing.T) {
	strict := gatewaytest.Start(t, func(c *config.Config) { c.Keys.AllowLocalCustomerKeys = false })
	for _, tc := range []struct {
		env  *gatewaytest.Env
		mode sealgatev1.KeyMode
		uri  string
	}{
		{strict, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "local://provider"},
		{strict, sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER, "local://provider"},
		{strict, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "local://acme"},
	} {
		_, err := update(tc.env, t, "demo", &sealgatev1.AccountSettings{KeyPolicy: keyPolicy(tc.mode, tc.uri)}, "key_policy")
		wantStatus(t, tc.mode.String()+" "+tc.uri, err, codes.InvalidArgument, "KEY_NOT_ALLOWED")
	}
	// The embedded defaults allow local customer keys, never the provider's.
	dev := gatewaytest.Start(t, nil)
	_, err := update(dev, t, "demo", &sealgatev1.AccountSettings{KeyPolicy: keyPolicy(sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER, "local://provider")}, "key_policy")
	wantStatus(t, "the provider's key on both sides", err, codes.InvalidArgument, "KEY_NOT_ALLOWED")
	if _, err := update(dev, t, "demo", &sealgatev1.AccountSettings{KeyPolicy: keyPolicy(sealgatev1.KeyMode_KEY_MODE_CUSTOMER_AND_PROVIDER, "local://acme")}, "key_policy"); err == nil {
		t.Fatal("an unknown local key accepted: the probe should have failed")
	}
}

// auditEvents reads the audit log of env.
func auditEvents(t *testing.T, env *gatewaytest.Env) []audit.Event {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(env.DataDir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var e audit.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func findEvent(events []audit.Event, match func(audit.Event) bool) (audit.Event, bool) {
	for _, e := range events {
		if match(e) {
			return e, true
		}
	}
	return audit.Event{}, false
}

func TestRefusedCallsAndReadOutcomesAreAudited(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	createAccount(t, env, "globex", "us")
	ctx := env.Ctx(t, "demo")
	big := randomBytes(8<<20, 5)
	a := mustUpload(t, env, ctx, callHeader("us-west"), big)
	other := mustUpload(t, env, env.Ctx(t, "globex"), callHeader("us-west"), []byte("globex's"))

	// Unauthenticated, and with a bad token.
	_, err := env.Artifacts.GetArtifact(context.Background(), &sealgatev1.GetArtifactRequest{Name: a.GetName()})
	wantStatus(t, "no token", err, codes.Unauthenticated, "TOKEN_MISSING")
	_, err = env.Artifacts.GetArtifact(gatewaytest.WithToken(context.Background(), "not.a.token"), &sealgatev1.GetArtifactRequest{Name: a.GetName()})
	wantStatus(t, "bad token", err, codes.Unauthenticated, "TOKEN_INVALID")
	// Wrong role.
	_, err = env.Read(env.Ctx(t, "demo", "uploader"), a.GetName(), io.Discard)
	wantStatus(t, "read as uploader", err, codes.PermissionDenied, "ROLE_REQUIRED")
	// Another account's artifact: answered like a missing one.
	_, err = env.Read(ctx, other.GetName(), io.Discard)
	wantStatus(t, "another account's artifact", err, codes.NotFound, "ARTIFACT_NOT_FOUND")
	// A completed read, and one the client abandons after its first message.
	if !bytes.Equal(mustRead(t, env, ctx, a.GetName()), big) {
		t.Fatal("read back differs")
	}
	actx, cancel := context.WithCancel(ctx)
	stream, err := env.Artifacts.ReadArtifact(actx, &sealgatev1.ReadArtifactRequest{Name: a.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()

	var events []audit.Event
	want := map[string]func(audit.Event) bool{
		"unauthenticated": func(e audit.Event) bool {
			return e.Kind == audit.KindAuthDenied && e.Detail == "TOKEN_MISSING" && e.Method == "/sealgate.v1.ArtifactService/GetArtifact"
		},
		"invalid token": func(e audit.Event) bool { return e.Kind == audit.KindAuthDenied && e.Detail == "TOKEN_INVALID" },
		"wrong role": func(e audit.Event) bool {
			return e.Kind == audit.KindAccessDenied && e.Detail == "ROLE_REQUIRED" && e.Account == "demo" && e.Actor == "test"
		},
		"another account": func(e audit.Event) bool {
			return e.Kind == audit.KindAccessDenied && e.Detail == "OTHER_ACCOUNT" && e.Account == "demo" && e.Artifact == other.GetName()
		},
		"completed read": func(e audit.Event) bool {
			return e.Kind == audit.KindRead && e.Outcome == audit.OutcomeOK && e.Artifact == a.GetName() && e.Bytes == int64(len(big))
		},
		"aborted read": func(e audit.Event) bool {
			return e.Kind == audit.KindRead && e.Outcome == audit.OutcomeAborted && e.Artifact == a.GetName() && e.Bytes < int64(len(big))
		},
	}
	if !eventually(func() bool {
		events = auditEvents(t, env)
		for _, m := range want {
			if _, ok := findEvent(events, m); !ok {
				return false
			}
		}
		return true
	}) {
		for name, m := range want {
			if _, ok := findEvent(events, m); !ok {
				t.Errorf("no audit event for %s", name)
			}
		}
		t.Fatalf("audit events: %+v", events)
	}
	reads := 0
	for _, e := range events {
		if e.Kind == audit.KindRead && e.Artifact == a.GetName() {
			reads++
		}
	}
	if reads != 2 {
		t.Fatalf("read events for %s: %d, want 2 (one completed, one aborted)", a.GetName(), reads)
	}
}

// retryDelay returns the RetryInfo delay of a status, or 0.
func retryDelay(err error) time.Duration {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

func TestKeyProbesAreRateLimitedPerAccount(t *testing.T) {
	env, kms := startWithKMS(t, func(c *config.Config) {
		c.Limits = limits.Config{KeyProbesPerSecond: 2, KeyProbeBurst: 4}
	})
	createAccount(t, env, "globex", "us")
	start := time.Now() // the bucket (4 probes, 2 more per second) starts full here
	if err := setKeyPolicy(t, env, sealgatev1.KeyMode_KEY_MODE_CUSTOMER, "test://acme"); err != nil {
		t.Fatal(err)
	}
	ctx := env.Ctx(t, "demo")
	kms.reset()
	var ok, limited atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := env.Keys.CheckKeyAccess(ctx, &sealgatev1.CheckKeyAccessRequest{Account: "accounts/demo"})
			switch {
			case err == nil:
				ok.Add(1)
			case status.Code(err) == codes.ResourceExhausted:
				if errorReason(status.Convert(err)) != "QUOTA_EXCEEDED" || retryDelay(err) <= 0 {
					t.Errorf("refused probe: %v, want QUOTA_EXCEEDED with a retry delay", err)
				}
				limited.Add(1)
			default:
				t.Errorf("probe: %v", err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The settings change took one probe of the burst.
	maxAllowed := 4 - 1 + int64(2*elapsed.Seconds()) + 1
	if ok.Load() > maxAllowed || limited.Load() < 100-maxAllowed {
		t.Fatalf("100 probes in %v: %d allowed, %d refused; want at most %d allowed", elapsed, ok.Load(), limited.Load(), maxAllowed)
	}
	if calls := kms.count("acme"); int64(calls) > 2*ok.Load() {
		t.Fatalf("the customer's key service saw %d calls for %d allowed probes, want at most 2 each", calls, ok.Load())
	}
	// Another account is not limited by demo's probes.
	gctx := env.Ctx(t, "globex")
	if _, err := env.Keys.CheckKeyAccess(gctx, &sealgatev1.CheckKeyAccessRequest{Account: "accounts/globex"}); err != nil {
		t.Fatalf("another account's probe: %v", err)
	}
}

func TestStreamsBeyondTheCapsAreRefused(t *testing.T) {
	env := gatewaytest.Start(t, func(c *config.Config) {
		c.Limits = limits.Config{ReadsPerPrincipal: 2, ReadsPerAccount: 3, UploadsPerPrincipal: 1}
	})
	createAccount(t, env, "globex", "us")
	ctx := env.Ctx(t, "demo")
	a := mustUpload(t, env, ctx, callHeader("us-west"), randomBytes(4<<20, 9))
	// Two reads that take their first message and stop, on a connection
	// with gRPC's default (64 KiB) windows.
	slow := sealgatev1.NewArtifactServiceClient(dial(t, env.Addr))
	var held []context.CancelFunc
	defer func() {
		for _, c := range held {
			c()
		}
	}()
	open := func(ctx context.Context) error {
		rctx, cancel := context.WithCancel(ctx)
		held = append(held, cancel)
		s, err := slow.ReadArtifact(rctx, &sealgatev1.ReadArtifactRequest{Name: a.GetName()})
		if err == nil {
			_, err = s.Recv()
		}
		return err
	}
	for i := 0; i < 2; i++ {
		if err := open(ctx); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	err := open(ctx)
	st := wantStatus(t, "third read of one principal", err, codes.ResourceExhausted, "QUOTA_EXCEEDED")
	if retryDelay(st.Err()) <= 0 {
		t.Errorf("refused read carries no RetryInfo: %v", st.Details())
	}
	// A second principal of the account gets the account's last slot, and
	// a third principal finds the account full.
	if err := open(gatewaytest.WithToken(context.Background(), env.TokenAs(t, "demo", "svc2"))); err != nil {
		t.Fatalf("another principal: %v", err)
	}
	err = open(gatewaytest.WithToken(context.Background(), env.TokenAs(t, "demo", "svc3")))
	wantStatus(t, "a read beyond the account's cap", err, codes.ResourceExhausted, "QUOTA_EXCEEDED")
	// Another account reads and uploads meanwhile.
	g := env.Ctx(t, "globex")
	b := mustUpload(t, env, g, callHeader("us-west"), []byte("globex"))
	if got := mustRead(t, env, g, b.GetName()); string(got) != "globex" {
		t.Fatalf("globex read %q", got)
	}
	// An upload that goes quiet after its header holds the only upload slot.
	quietUpload(t, env, ctx, "demo", callHeader("us-west"), 1)
	_, err = env.Upload(ctx, callHeader("us-west"), strings.NewReader("x"), 1)
	wantStatus(t, "second upload of one principal", err, codes.ResourceExhausted, "QUOTA_EXCEEDED")
	events := auditEvents(t, env)
	if _, ok := findEvent(events, func(e audit.Event) bool {
		return e.Kind == audit.KindRateLimited && e.Account == "demo" && e.Detail == "uploads_per_principal"
	}); !ok {
		t.Errorf("no limit.exceeded audit event for the refused upload")
	}
}

// An upload's memory reservation counts a whole message for its chunk
// whatever size its header declares: gRPC receives, and the codec decodes,
// a message before the upload can compare it with the declared size
// (review: declaring 0 bytes reserved 384 KiB for a stream that could hold
// 4 MiB, letting about 12 times more streams past the budget).
func TestUploadsReserveAWholeMessageWhateverTheyDeclare(t *testing.T) {
	env := gatewaytest.Start(t, func(c *config.Config) {
		c.Limits = limits.Config{StreamMemory: 10 << 20, AccountMemory: 10 << 20}
	})
	ctx := env.Ctx(t, "demo")
	tiny := func() *sealgatev1.UploadHeader {
		h := callHeader("us-west")
		size := int64(4)
		h.SizeBytes = &size
		return h
	}
	for i := range 2 {
		quietUpload(t, env, ctx, "demo", tiny(), i+1)
	}
	// Two quiet uploads hold about 8.8 MiB of the 10: a third is refused.
	_, err := env.Upload(ctx, tiny(), strings.NewReader("abcd"), 4)
	wantStatus(t, "a third upload declaring 4 bytes", err, codes.ResourceExhausted, "QUOTA_EXCEEDED")
}

// No account can take the whole stream memory budget: each may reserve
// half of it by default (second review: one account's idle streams, within
// its stream caps, made another account's 2-byte upload fail).
func TestOneAccountCannotTakeTheWholeMemoryBudget(t *testing.T) {
	env := gatewaytest.Start(t, func(c *config.Config) {
		c.Limits = limits.Config{StreamMemory: 20 << 20} // 10 MiB per account
	})
	createAccount(t, env, "globex", "us")
	ctx := env.Ctx(t, "demo")
	for i := range 2 {
		quietUpload(t, env, ctx, "demo", callHeader("us-west"), i+1)
	}
	// Demo holds about 8.8 MiB of its 10: its third upload is refused...
	_, err := env.Upload(ctx, callHeader("us-west"), strings.NewReader("ab"), 2)
	st := wantStatus(t, "demo's third upload", err, codes.ResourceExhausted, "QUOTA_EXCEEDED")
	if !strings.Contains(st.Message(), "stream_memory_per_account") {
		t.Errorf("refused by %q, want the per-account share", st.Message())
	}
	// ...while the budget has room for globex.
	if _, err := env.Upload(env.Ctx(t, "globex"), callHeader("us-west"), strings.NewReader("ab"), 2); err != nil {
		t.Fatalf("globex's upload: %v", err)
	}
}

// quietUpload starts an upload that sends its header and then nothing, and
// waits until account has active uploads open (this one among them). The
// upload ends with the test.
func quietUpload(t *testing.T, env *gatewaytest.Env, ctx context.Context, account string, h *sealgatev1.UploadHeader, active int) {
	t.Helper()
	uctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	us, err := env.Artifacts.UploadArtifact(uctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := us.Send(&sealgatev1.UploadArtifactRequest{Payload: &sealgatev1.UploadArtifactRequest_Header{Header: h}}); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return env.Runtime.Gateway.ActiveStreams(limits.Upload, account) == active }) {
		t.Fatalf("a quiet upload never took its slot (%d of %s's uploads active, want %d)",
			env.Runtime.Gateway.ActiveStreams(limits.Upload, account), account, active)
	}
}

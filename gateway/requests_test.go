package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/gateway/layout"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// engagementArtifacts lists the artifacts of an engagement.
func engagementArtifacts(t *testing.T, env *gatewaytest.Env, ctx context.Context, engagement string) []string {
	t.Helper()
	resp, err := env.Artifacts.ListArtifacts(ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo", EngagementId: engagement})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range resp.GetArtifacts() {
		out = append(out, a.GetName())
	}
	return out
}

func TestRetriedUploadReturnsTheFirstArtifact(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	h := callHeader("us-west")
	h.EngagementId, h.RequestId = "idem-1", "7d0c9a3e-2f7b-4c1e-9a55-0b6f3c2d1e00"
	data := randomBytes(300<<10, 1)
	first := mustUpload(t, env, ctx, h, data)
	again := mustUpload(t, env, ctx, h, data)
	if again.GetName() != first.GetName() {
		t.Fatalf("retry stored %s, want the first artifact %s", again.GetName(), first.GetName())
	}
	if got := engagementArtifacts(t, env, ctx, "idem-1"); len(got) != 1 {
		t.Fatalf("artifacts %v, want one", got)
	}
	if files := objectFiles(t, env.DataDir); len(files) != 1 {
		t.Fatalf("objects %v, want one", files)
	}
	// The same request_id for another upload is refused.
	other := proto.CloneOf(h)
	other.EngagementId = "idem-2"
	_, err := env.Upload(ctx, other, bytes.NewReader(data), 64<<10)
	wantStatus(t, "a request_id reused for another upload", err, codes.FailedPrecondition, "REQUEST_ID_REUSED")
	// Without a request_id every upload is new.
	h.RequestId = ""
	mustUpload(t, env, ctx, h, data)
	mustUpload(t, env, ctx, h, data)
	if got := engagementArtifacts(t, env, ctx, "idem-1"); len(got) != 3 {
		t.Fatalf("artifacts %v, want three", got)
	}
}

// TestRetryAfterTheFirstGatewayDied crashes the first attempt of an upload
// after its object and record are durable, before (written) and after
// (stored) it marks its request: a retry gets one artifact, never two.
func TestRetryAfterTheFirstGatewayDied(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	env := gatewaytest.Start(t, func(c *config.Config) { c.Clock = clock })
	ctx := env.Ctx(t, "demo")
	for i, step := range []string{gateway.UploadStepWritten, gateway.UploadStepStored} {
		h := callHeader("us-west")
		h.EngagementId, h.RequestId = "died-"+step, "req-"+step
		data := randomBytes(200<<10, uint64(i))
		uploadThatDies(t, env, ctx, h, data, step)
		var a *sealgatev1.Artifact
		var err error
		if step == gateway.UploadStepWritten {
			// The first attempt's lease still runs: it might be alive.
			_, err = env.Upload(ctx, h, bytes.NewReader(data), 64<<10)
			st := wantStatus(t, step+": retry within the lease", err, codes.Unavailable, "REQUEST_IN_PROGRESS")
			if d := retryDelay(st.Err()); d <= 0 || d > 31*time.Second {
				t.Errorf("%s: RetryInfo delay %v, want up to the 30 s lease", step, d)
			}
			offset.Add(int64(31 * time.Second))
		}
		a, err = env.Upload(ctx, h, bytes.NewReader(data), 64<<10)
		if err != nil {
			t.Fatalf("%s: retry: %v", step, err)
		}
		if got := engagementArtifacts(t, env, ctx, h.EngagementId); len(got) != 1 || got[0] != a.GetName() {
			t.Fatalf("%s: artifacts %v, want only %s", step, got, a.GetName())
		}
		if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
			t.Fatalf("%s: the artifact is not the upload", step)
		}
	}
	env.Runtime.Gateway.SetUploadHook(nil)
}

// TestRetryAfterTheClaimWasLost: the first attempt's gateway dies after
// its object and record are durable, and the store loses the request claim
// (a distributed store that loses a node while the claim is rewritten, as
// seen by TestReplicasUnderFaults and make loadtest). A retry finds no
// claim and makes its own; the attempt entries still name the dead
// attempt, so it is purged: one artifact, never two. Also when the retry
// comes on the next day (a request's first claim of a day lists only when
// the day before has one too). An acknowledged attempt is never named by
// an entry, so losing the claim after that costs nothing stored, also when
// the attempt died before removing its entry and a retry was answered.
func TestRetryAfterTheClaimWasLost(t *testing.T) {
	for _, tc := range []struct {
		name     string
		crashAt  string
		retryGap time.Duration // from noon, the first attempt's time
	}{
		{"same day", gateway.UploadStepWritten, 0},
		{"next day", gateway.UploadStepWritten, 14 * time.Hour},
		{"acknowledged", gateway.UploadStepStored, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var offset atomic.Int64
			start := time.Now()
			noon := start.UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)
			env := gatewaytest.Start(t, func(c *config.Config) {
				c.Clock = func() time.Time { return noon.Add(time.Since(start) + time.Duration(offset.Load())) }
			})
			ctx := env.Ctx(t, "demo")
			h := callHeader("us-west")
			h.EngagementId, h.RequestId = "claim-lost", "req-claim-lost"
			data := randomBytes(150<<10, 11)
			uploadThatDies(t, env, ctx, h, data, tc.crashAt)
			offset.Store(int64(tc.retryGap))
			// keptAfterLoss loses the claim of acknowledged a: a retry
			// stores a second copy (it cannot know the first was
			// answered), and keeps the first.
			keptAfterLoss := func(a *sealgatev1.Artifact) {
				t.Helper()
				loseClaims(t, env.DataDir)
				b := mustUpload(t, env, ctx, h, data)
				if b.GetName() == a.GetName() {
					t.Fatal("a retry without its claim answered with the acknowledged artifact")
				}
				if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
					t.Fatal("the acknowledged artifact was removed by a retry that lost its claim")
				}
			}
			if tc.crashAt == gateway.UploadStepStored {
				// Stored but never answered: the retry is answered with
				// it, and from then on it is acknowledged.
				keptAfterLoss(mustUpload(t, env, ctx, h, data))
				return
			}
			loseClaims(t, env.DataDir)
			a := mustUpload(t, env, ctx, h, data)
			if got := engagementArtifacts(t, env, ctx, h.EngagementId); len(got) != 1 || got[0] != a.GetName() {
				t.Fatalf("artifacts %v, want only %s", got, a.GetName())
			}
			if files := objectFiles(t, env.DataDir); len(files) != 1 {
				t.Fatalf("objects %v, want one", files)
			}
			if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
				t.Fatal("the artifact is not the upload")
			}
			keptAfterLoss(a)
		})
	}
}

// uploadThatDies uploads data under h and has its gateway die at step:
// the upload fails there and nothing of it is cleaned up, as after a
// crash. It returns the dead attempt's artifact name.
func uploadThatDies(t *testing.T, env *gatewaytest.Env, ctx context.Context, h *sealgatev1.UploadHeader, data []byte, step string) string {
	t.Helper()
	var dead atomic.Value
	env.Runtime.Gateway.SetUploadHook(func(s string, ref layout.Ref) error {
		if s == step && dead.CompareAndSwap(nil, ref.Name()) {
			return errors.New("crash")
		}
		return nil
	})
	defer env.Runtime.Gateway.SetUploadHook(nil)
	_, err := env.Upload(ctx, h, bytes.NewReader(data), 64<<10)
	name, _ := dead.Load().(string)
	if err == nil || name == "" {
		t.Fatalf("%s: the attempt did not die at %s (%v)", h.GetRequestId(), step, err)
	}
	return name
}

// loseClaims removes every request claim from the control store under
// dataDir, as a store that loses them would.
func loseClaims(t *testing.T, dataDir string) {
	t.Helper()
	claims, err := filepath.Glob(filepath.Join(dataDir, "control", "requests", "demo", "*"))
	if err != nil || len(claims) == 0 {
		t.Fatalf("no claims to lose: %v", err)
	}
	for _, c := range claims {
		if err := os.RemoveAll(c); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttemptThatLostItsClaimLeavesNoCopyAnywhere: an attempt that stalled
// past its lease loses its request to a retry; by then the mover may have
// moved its object to the storage region. The attempt fails and nothing of
// it stays, in staging or in storage. (Found by make loadtest: an object in
// the storage region that no client was ever given.)
func TestAttemptThatLostItsClaimLeavesNoCopyAnywhere(t *testing.T) {
	env := gatewaytest.Start(t, nil)
	ctx := env.Ctx(t, "demo")
	if _, err := update(env, t, "demo", &sealgatev1.AccountSettings{StorageRegion: "de"}, "storage_region"); err != nil {
		t.Fatal(err)
	}
	h := callHeader("us-west")
	h.EngagementId, h.RequestId = "stalled", "req-stalled"
	var fired atomic.Bool
	env.Runtime.Gateway.SetUploadHook(func(step string, ref layout.Ref) error {
		if step != gateway.UploadStepWritten || fired.Swap(true) {
			return nil
		}
		// The mover moves the staged object to de, and a retry takes the
		// claim over, as after a lease run out.
		return moveThenStealClaim(env, h.RequestId, true)
	})
	defer env.Runtime.Gateway.SetUploadHook(nil)
	_, err := env.Upload(ctx, h, bytes.NewReader(randomBytes(100<<10, 7)), 64<<10)
	if !fired.Load() {
		t.Fatal("the hook never ran")
	}
	wantStatus(t, "an attempt that lost its claim", err, codes.Aborted, "REQUEST_IN_PROGRESS")
	var left []string
	for _, f := range objectFiles(t, env.DataDir) {
		if filepath.Base(f) != ".keep" { // the mover's staging folder marker
			left = append(left, f)
		}
	}
	if len(left) != 0 {
		t.Fatalf("the attempt left objects behind: %v", left)
	}
}

// moveThenStealClaim runs a mover pass that must move one object (when
// move is set), then hands the claim on requestID to another attempt, as
// a retry does once the lease has run out: what an upload hook does to
// make the attempt in progress lose its claim.
func moveThenStealClaim(env *gatewaytest.Env, requestID string, move bool) error {
	if move {
		if n, err := env.Runtime.Mover.Pass(context.Background()); err != nil || n != 1 {
			return fmt.Errorf("mover pass: moved %d, %v", n, err)
		}
	}
	lc := env.Runtime.Lifecycle
	cur, ver, err := lc.LoadRequest(context.Background(), "demo", requestID)
	if err != nil || cur == nil {
		return fmt.Errorf("load claim: %v, %v", cur, err)
	}
	cur.Artifact = "another-attempt"
	_, err = lc.SwapRequest(context.Background(), "demo", requestID, cur, ver)
	return err
}

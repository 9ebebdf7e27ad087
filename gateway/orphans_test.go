package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

// failingDeletes is a region whose deletes fail while down is set (a store
// node that went away between a write and a cleanup).
type failingDeletes struct {
	store.Bucket
	down *atomic.Bool
}

func (f failingDeletes) Delete(ctx context.Context, key string) error {
	if f.down.Load() {
		return fmt.Errorf("region down: %w", store.ErrUnavailable)
	}
	return f.Bucket.Delete(ctx, key)
}

func artifactFiles(t *testing.T, env *gatewaytest.Env) []string {
	t.Helper()
	var out []string
	for _, f := range objectFiles(t, env.DataDir) {
		if filepath.Base(f) != ".keep" {
			out = append(out, f)
		}
	}
	return out
}

// TestFailedCleanupIsFinishedBySweeper: an attempt that lost its request
// claim cleans up what it wrote while the region holding its object cannot
// delete. Its record is destroyed first, so the object is unreadable; it
// must not stay: the mover does not move it on, and a sweeper pass deletes
// it once the region is back. (The load test's last open race: objects in
// the storage region that no client was ever given.)
func TestFailedCleanupIsFinishedBySweeper(t *testing.T) {
	for _, c := range []struct {
		name  string
		moved bool // the mover moved it to de before the cleanup
	}{{"staged", false}, {"stored", true}} {
		t.Run(c.name, func(t *testing.T) {
			var down atomic.Bool
			failing := "us"
			if c.moved {
				failing = "de"
			}
			env := gatewaytest.Start(t, func(cfg *config.Config) {
				cfg.WrapRegion = func(region string, b store.Bucket) store.Bucket {
					if region == failing {
						return failingDeletes{Bucket: b, down: &down}
					}
					return b
				}
			})
			ctx := env.Ctx(t, "demo")
			if _, err := update(env, t, "demo", &sealgatev1.AccountSettings{StorageRegion: "de"}, "storage_region"); err != nil {
				t.Fatal(err)
			}
			h := callHeader("us-west")
			h.EngagementId, h.RequestId = "cleanup-"+c.name, "req-cleanup-"+c.name
			var fired atomic.Bool
			env.Runtime.Gateway.SetUploadHook(func(step string, ref layout.Ref) error {
				if step != gateway.UploadStepWritten || fired.Swap(true) {
					return nil
				}
				err := moveThenStealClaim(env, h.RequestId, c.moved)
				down.Store(true)
				return err
			})
			defer env.Runtime.Gateway.SetUploadHook(nil)
			_, err := env.Upload(ctx, h, bytes.NewReader(randomBytes(100<<10, 9)), 64<<10)
			if !fired.Load() {
				t.Fatal("the hook never ran")
			}
			wantStatus(t, "an attempt that lost its claim", err, codes.Aborted, "REQUEST_IN_PROGRESS")
			left := artifactFiles(t, env)
			if len(left) != 1 {
				t.Fatalf("objects left by a cleanup whose deletes failed: %v, want the one it could not delete", left)
			}
			down.Store(false)
			// The mover does not carry the unreadable staged object on.
			if _, err := env.Runtime.Mover.Pass(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := artifactFiles(t, env); len(got) != 1 || got[0] != left[0] {
				t.Fatalf("after a mover pass: %v, want %v untouched (no record: not moved, not yet an orphan)", got, left)
			}
			if _, err := env.Runtime.Sweeper.Pass(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := artifactFiles(t, env); len(got) != 0 {
				t.Fatalf("after a sweeper pass: %v left, want nothing", got)
			}
		})
	}
}

// TestRetryFinishesARemovalThatFailed: a retry that takes over the claim
// of a dead attempt cannot remove it (the region refuses deletes) and
// fails; the next retry removes both earlier attempts before it stores,
// without waiting for a sweeper.
func TestRetryFinishesARemovalThatFailed(t *testing.T) {
	var down atomic.Bool
	var offset atomic.Int64
	env := gatewaytest.Start(t, func(cfg *config.Config) {
		cfg.Clock = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		cfg.WrapRegion = func(region string, b store.Bucket) store.Bucket {
			if region == "us" {
				return failingDeletes{Bucket: b, down: &down}
			}
			return b
		}
	})
	ctx := env.Ctx(t, "demo")
	h := callHeader("us-west")
	h.EngagementId, h.RequestId = "removal-failed", "req-removal-failed"
	data := randomBytes(120<<10, 11)
	uploadThatDies(t, env, ctx, h, data, gateway.UploadStepWritten)
	// Its lease runs out; the retry cannot delete its staged object.
	offset.Add(int64(31 * time.Second))
	down.Store(true)
	if _, err := env.Upload(ctx, h, bytes.NewReader(data), 64<<10); err == nil {
		t.Fatal("a retry that could not remove the dead attempt succeeded")
	}
	down.Store(false)
	offset.Add(int64(31 * time.Second))
	a, err := env.Upload(ctx, h, bytes.NewReader(data), 64<<10)
	if err != nil {
		t.Fatalf("second retry: %v", err)
	}
	if got := artifactFiles(t, env); len(got) != 1 {
		t.Fatalf("objects after the second retry: %v, want only %s's", got, a.GetName())
	}
	if got := mustRead(t, env, ctx, a.GetName()); !bytes.Equal(got, data) {
		t.Fatal("the stored artifact is not the upload")
	}
}

// TestOldRequestClaimsAreSwept: claims past request_id_ttl are removed. A
// stored one leaves its artifact alone; one never marked stored (its
// attempt died and the client gave up) takes its unacknowledged artifact
// with it, unless a legal hold keeps it.
func TestOldRequestClaimsAreSwept(t *testing.T) {
	env, offset := startWithClockOffset(t)
	ctx := env.Ctx(t, "demo")
	kept := callHeader("us-west")
	kept.EngagementId, kept.RequestId = "claims-kept", "req-kept"
	data := randomBytes(50<<10, 13)
	stored := mustUpload(t, env, ctx, kept, data)
	// Three attempts die after writing, and their clients give up; the
	// store loses the last one's claim.
	var names []string
	for _, id := range []string{"req-abandoned", "req-abandoned-held", "req-abandoned-lost"} {
		h := callHeader("us-west")
		h.EngagementId, h.RequestId = "claims-"+id, id
		names = append(names, uploadThatDies(t, env, ctx, h, data, gateway.UploadStepWritten))
	}
	lost := sha256.Sum256([]byte("req-abandoned-lost"))
	if err := os.Remove(filepath.Join(env.DataDir, "control", "requests", "demo", hex.EncodeToString(lost[:])+".json")); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Artifacts.SetLegalHold(ctx, &sealgatev1.SetLegalHoldRequest{Target: names[1], Reason: "litigation"}); err != nil {
		t.Fatal(err)
	}
	sweep := func() lifecycle.Result {
		t.Helper()
		r, err := env.Runtime.Sweeper.Pass(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Within the TTL nothing goes.
	offset.Store(int64(6 * 24 * time.Hour))
	if r := sweep(); r.Claims != 0 || r.Abandoned != 0 {
		t.Fatalf("sweep within the TTL removed %d claims, %d attempts", r.Claims, r.Abandoned)
	}
	offset.Store(int64(8 * 24 * time.Hour))
	if r := sweep(); r.Claims != 2 || r.Abandoned != 2 || r.Held != 1 {
		t.Fatalf("sweep past the TTL: %d claims, %d abandoned attempts, %d held; want 2, 2, 1", r.Claims, r.Abandoned, r.Held)
	}
	for id, want := range map[string]bool{"req-kept": false, "req-abandoned": false, "req-abandoned-held": true} {
		if cur, _, err := env.Runtime.Lifecycle.LoadRequest(context.Background(), "demo", id); err != nil || (cur != nil) != want {
			t.Errorf("claim %s after the sweep: %v, %v; want kept %v", id, cur, err, want)
		}
	}
	if got := mustRead(t, env, ctx, stored.GetName()); !bytes.Equal(got, data) {
		t.Fatal("the stored request's artifact changed")
	}
	for _, name := range []string{names[0], names[2]} {
		if _, err := env.Artifacts.GetArtifact(ctx, &sealgatev1.GetArtifactRequest{Name: name}); status.Code(err) != codes.NotFound {
			t.Fatalf("the abandoned attempt %s: %v, want NOT_FOUND", name, err)
		}
	}
	if _, err := env.Artifacts.GetArtifact(ctx, &sealgatev1.GetArtifactRequest{Name: names[1]}); err != nil {
		t.Fatalf("the held abandoned attempt %s: %v, want it kept", names[1], err)
	}
	// A retry of the swept stored request stores anew.
	again := mustUpload(t, env, ctx, kept, data)
	if again.GetName() == stored.GetName() {
		t.Fatal("a retry after the TTL answered with the first artifact; want a new one")
	}
}

// TestSweeperFencesTheClaimItExpires: while the sweeper removes a request
// past its TTL (its attempt was never acknowledged), a retry of the same
// request_id is refused rather than allowed to take the claim over and
// store an attempt that the sweep would then delete or orphan; after the
// sweep, a retry stores anew.
func TestSweeperFencesTheClaimItExpires(t *testing.T) {
	env, offset := startWithClockOffset(t)
	ctx := env.Ctx(t, "demo")
	h := callHeader("us-west")
	h.EngagementId, h.RequestId = "fenced", "req-fenced"
	data := randomBytes(40<<10, 17)
	dead := uploadThatDies(t, env, ctx, h, data, gateway.UploadStepWritten)
	offset.Store(int64(8 * 24 * time.Hour))
	var during error
	var ran atomic.Bool
	env.Runtime.Sweeper.SetHook(func(step string, ref layout.Ref) error {
		if step == lifecycle.StepShredded && ref.Name() == dead && !ran.Swap(true) {
			_, during = env.Upload(ctx, h, bytes.NewReader(data), 64<<10)
		}
		return nil
	})
	r, err := env.Runtime.Sweeper.Pass(context.Background())
	env.Runtime.Sweeper.SetHook(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ran.Load() {
		t.Fatal("the sweep never purged the dead attempt")
	}
	wantStatus(t, "a retry while the sweeper expires its request", during, codes.Unavailable, "REQUEST_IN_PROGRESS")
	if r.Claims != 1 || r.Abandoned != 1 {
		t.Fatalf("sweep: %d claims, %d abandoned; want 1, 1", r.Claims, r.Abandoned)
	}
	a := mustUpload(t, env, ctx, h, data)
	if got := engagementArtifacts(t, env, ctx, "fenced"); len(got) != 1 || got[0] != a.GetName() {
		t.Fatalf("artifacts %v, want only the new %s", got, a.GetName())
	}
}

// TestRetryTakesOverTheFenceOfASweeperThatDied: a sweeper that died while
// it expired a request leaves its fence (a claim marked expiring, naming no
// fingerprint when the claim was missing). While its lease runs a retry is
// refused; after it, the retry takes the claim over and purges what the
// fence names, as for a dead attempt.
func TestRetryTakesOverTheFenceOfASweeperThatDied(t *testing.T) {
	env, offset := startWithClockOffset(t)
	ctx := env.Ctx(t, "demo")
	h := callHeader("us-west")
	h.EngagementId, h.RequestId = "fence-left", "req-fence-left"
	data := randomBytes(20<<10, 19)
	dead := uploadThatDies(t, env, ctx, h, data, gateway.UploadStepWritten)
	lc := env.Runtime.Lifecycle
	cur, ver, err := lc.LoadRequest(context.Background(), "demo", h.RequestId)
	if err != nil || cur == nil {
		t.Fatalf("claim: %v, %v", cur, err)
	}
	fence := &lifecycle.Request{Expiring: true, LeaseUntil: time.Now().Add(5 * time.Minute), Created: cur.Created, Dead: []string{cur.Artifact}}
	if _, err := lc.SwapRequest(context.Background(), "demo", h.RequestId, fence, ver); err != nil {
		t.Fatal(err)
	}
	_, err = env.Upload(ctx, h, bytes.NewReader(data), 64<<10)
	wantStatus(t, "a retry while the fence is leased", err, codes.Unavailable, "REQUEST_IN_PROGRESS")
	offset.Store(int64(6 * time.Minute))
	a := mustUpload(t, env, ctx, h, data)
	if got := engagementArtifacts(t, env, ctx, "fence-left"); len(got) != 1 || got[0] != a.GetName() || a.GetName() == dead {
		t.Fatalf("artifacts %v, want only the new %s (the dead attempt %s purged)", got, a.GetName(), dead)
	}
}

// startWithClockOffset starts a gateway whose clock runs offset (in
// nanoseconds) ahead of the real one, so that a test can jump days ahead.
func startWithClockOffset(t *testing.T) (*gatewaytest.Env, *atomic.Int64) {
	offset := new(atomic.Int64)
	env := gatewaytest.Start(t, func(cfg *config.Config) {
		cfg.Clock = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	return env, offset
}

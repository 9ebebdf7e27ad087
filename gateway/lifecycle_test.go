package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/sealgate/sealgate/gateway"
	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/config"
	"github.com/sealgate/sealgate/gateway/gatewaytest"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

// lifeEnv is a gateway on a fake clock with the test KMS as provider key.
type lifeEnv struct {
	*gatewaytest.Env
	kms *testKMS
	ctx context.Context
}

func startLife(t *testing.T, mode sealgatev1.DeletionMode, rules ...*sealgatev1.RetentionRule) *lifeEnv {
	t.Helper()
	env, kms := startWithKMS(t)
	ctx := env.Ctx(t, "demo")
	if _, err := env.Accounts.UpdateAccountSettings(ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", DeletionMode: mode, RetentionRules: rules},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"deletion_mode", "retention_rules"}},
	}); err != nil {
		t.Fatal(err)
	}
	return &lifeEnv{Env: env, kms: kms, ctx: ctx}
}

func (e *lifeEnv) advance(d time.Duration) { e.kms.clock.advance(d) }

func (e *lifeEnv) sweep(t *testing.T) lifecycle.Result {
	t.Helper()
	r, err := e.Runtime.Sweeper.Pass(context.Background())
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return r
}

func (e *lifeEnv) list(t *testing.T, showDeleted bool) []string {
	t.Helper()
	resp, err := e.Artifacts.ListArtifacts(e.ctx, &sealgatev1.ListArtifactsRequest{Parent: "accounts/demo", ShowDeleted: showDeleted})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range resp.GetArtifacts() {
		out = append(out, a.GetName())
	}
	return out
}

// objectsOf lists every object file of ref under the data dir's regions.
func objectsOf(t *testing.T, dataDir string, a *sealgatev1.Artifact) []string {
	t.Helper()
	id := a.GetName()[strings.LastIndex(a.GetName(), "/")+1:]
	var out []string
	for _, f := range objectFiles(t, dataDir) {
		if strings.HasSuffix(f, id) {
			out = append(out, f)
		}
	}
	return out
}

func TestSoftDeleteUndeleteAndPurge(t *testing.T) {
	e := startLife(t, sealgatev1.DeletionMode_DELETION_MODE_SOFT)
	data := randomBytes(300<<10, 21)
	a := mustUpload(t, e.Env, e.ctx, callHeader("us-west"), data)
	d, err := e.Artifacts.DeleteArtifact(e.ctx, &sealgatev1.DeleteArtifactRequest{Name: a.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetState() != sealgatev1.Artifact_STATE_DELETED || d.GetPurgeTime().AsTime().Sub(d.GetDeleteTime().AsTime()) != 30*24*time.Hour {
		t.Fatalf("deleted artifact %v, want DELETED with purge 30 days after delete", d)
	}
	_, err = e.Read(e.ctx, a.GetName(), io.Discard)
	wantStatus(t, "read of a soft-deleted artifact", err, codes.FailedPrecondition, "ARTIFACT_DELETED")
	if got := e.list(t, false); len(got) != 0 {
		t.Fatalf("listing without show_deleted: %v, want it hidden", got)
	}
	if got := e.list(t, true); len(got) != 1 || got[0] != a.GetName() {
		t.Fatalf("listing with show_deleted: %v, want it", got)
	}
	// Undelete within the window: byte-exact again.
	e.advance(29 * 24 * time.Hour)
	if _, err := e.Artifacts.UndeleteArtifact(e.ctx, &sealgatev1.UndeleteArtifactRequest{Name: a.GetName()}); err != nil {
		t.Fatalf("undelete within the window: %v", err)
	}
	if got := mustRead(t, e.Env, e.ctx, a.GetName()); !bytes.Equal(got, data) {
		t.Fatal("undeleted artifact is not byte-exact")
	}
	// Deleted again, and left past the window: purged.
	if _, err := e.Artifacts.DeleteArtifact(e.ctx, &sealgatev1.DeleteArtifactRequest{Name: a.GetName()}); err != nil {
		t.Fatal(err)
	}
	e.advance(30*24*time.Hour - time.Minute)
	if r := e.sweep(t); r.Purged != 0 {
		t.Fatalf("sweep a minute before the purge time purged %d", r.Purged)
	}
	e.advance(2 * time.Minute)
	if r := e.sweep(t); r.Purged != 1 {
		t.Fatalf("sweep after the purge time: %+v, want one purged", r)
	}
	if left := objectsOf(t, e.DataDir, a); len(left) != 0 {
		t.Fatalf("objects left after the purge: %v", left)
	}
	_, err = e.Artifacts.UndeleteArtifact(e.ctx, &sealgatev1.UndeleteArtifactRequest{Name: a.GetName()})
	wantStatus(t, "undelete after the purge", err, codes.NotFound, "ARTIFACT_NOT_FOUND")
	_, err = e.Artifacts.GetArtifact(e.ctx, &sealgatev1.GetArtifactRequest{Name: a.GetName()})
	wantStatus(t, "get after the purge", err, codes.NotFound, "ARTIFACT_NOT_FOUND")
	kinds := map[string]bool{}
	for _, ev := range auditEvents(t, e.Env) {
		if ev.Artifact == a.GetName() {
			kinds[ev.Kind+"/"+ev.Actor] = true
		}
	}
	for _, want := range []string{audit.KindDelete + "/test", audit.KindUndelete + "/test", audit.KindPurge + "/sweeper"} {
		if !kinds[want] {
			t.Errorf("no audit event %s; got %v", want, kinds)
		}
	}
}

func TestHardDeleteRemovesEverythingAtOnce(t *testing.T) {
	e := startLife(t, sealgatev1.DeletionMode_DELETION_MODE_HARD)
	a := mustUpload(t, e.Env, e.ctx, callHeader("us-west"), []byte("gone for good"))
	// Mid-move too: a stored copy beside the staged one.
	if _, err := e.Runtime.Mover.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
	b := mustUpload(t, e.Env, e.ctx, callHeader("de-fra"), []byte("staged only"))
	for _, x := range []*sealgatev1.Artifact{a, b} {
		if len(objectsOf(t, e.DataDir, x)) == 0 {
			t.Fatalf("%s has no object before the delete", x.GetName())
		}
		if _, err := e.Artifacts.DeleteArtifact(e.ctx, &sealgatev1.DeleteArtifactRequest{Name: x.GetName()}); err != nil {
			t.Fatal(err)
		}
		if left := objectsOf(t, e.DataDir, x); len(left) != 0 {
			t.Fatalf("objects left right after a hard delete: %v", left)
		}
		_, err := e.Read(e.ctx, x.GetName(), io.Discard)
		wantStatus(t, "read after a hard delete", err, codes.NotFound, "ARTIFACT_NOT_FOUND")
	}
}

func TestExpiryIsEnforcedOnReadAndSweptWithTheKeyRevoked(t *testing.T) {
	for _, mode := range []sealgatev1.DeletionMode{sealgatev1.DeletionMode_DELETION_MODE_SOFT, sealgatev1.DeletionMode_DELETION_MODE_HARD} {
		t.Run(mode.String(), func(t *testing.T) {
			e := startLife(t, mode, &sealgatev1.RetentionRule{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES, RetentionDays: 1})
			vm := &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL, SipZone: "us-west"}
			a := mustUpload(t, e.Env, e.ctx, vm, []byte("voicemail"))
			keep := mustUpload(t, e.Env, e.ctx, callHeader("us-west"), []byte("a recording, kept indefinitely"))
			if got := mustRead(t, e.Env, e.ctx, a.GetName()); string(got) != "voicemail" {
				t.Fatal("fresh voicemail unreadable")
			}
			// The key is revoked: deletion must not need it.
			e.kms.set("provider", revoked)
			e.advance(24 * time.Hour)
			_, err := e.Read(e.ctx, a.GetName(), io.Discard)
			wantStatus(t, "read past expire_time, before any sweep", err, codes.FailedPrecondition, "ARTIFACT_EXPIRED")
			if r := e.sweep(t); r.Expired != 1 {
				t.Fatalf("sweep: %+v, want one expired", r)
			}
			switch mode {
			case sealgatev1.DeletionMode_DELETION_MODE_HARD:
				if left := objectsOf(t, e.DataDir, a); len(left) != 0 {
					t.Fatalf("hard mode: objects left after expiry: %v", left)
				}
			default:
				got, err := e.Artifacts.GetArtifact(e.ctx, &sealgatev1.GetArtifactRequest{Name: a.GetName()})
				if err != nil || got.GetState() != sealgatev1.Artifact_STATE_DELETED {
					t.Fatalf("soft mode: expired artifact %v, %v; want DELETED", got, err)
				}
				e.advance(30 * 24 * time.Hour)
				if r := e.sweep(t); r.Purged != 1 {
					t.Fatalf("sweep after the soft window: %+v, want one purged", r)
				}
				if left := objectsOf(t, e.DataDir, a); len(left) != 0 {
					t.Fatalf("objects left after the purge: %v", left)
				}
			}
			if len(objectsOf(t, e.DataDir, keep)) == 0 {
				t.Fatal("an artifact without retention was deleted")
			}
		})
	}
}

func TestHoldsBlockDeleteAndExpiry(t *testing.T) {
	e := startLife(t, sealgatev1.DeletionMode_DELETION_MODE_HARD,
		&sealgatev1.RetentionRule{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES, RetentionDays: 1})
	vm := func(eng string) *sealgatev1.UploadHeader {
		return &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL, SipZone: "us-west", EngagementId: eng}
	}
	one := mustUpload(t, e.Env, e.ctx, vm("e-1"), []byte("held by itself"))
	two := mustUpload(t, e.Env, e.ctx, vm("case-7"), []byte("held by its engagement"))
	if _, err := e.Artifacts.SetLegalHold(e.ctx, &sealgatev1.SetLegalHoldRequest{Target: one.GetName(), Reason: "litigation 1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Artifacts.SetLegalHold(e.ctx, &sealgatev1.SetLegalHoldRequest{Target: "accounts/demo/engagements/case-7", Reason: "litigation 7"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*sealgatev1.Artifact{one, two} {
		_, err := e.Artifacts.DeleteArtifact(e.ctx, &sealgatev1.DeleteArtifactRequest{Name: a.GetName()})
		wantStatus(t, "delete of held "+a.GetEngagementId(), err, codes.FailedPrecondition, "LEGAL_HOLD")
	}
	e.advance(48 * time.Hour)
	if r := e.sweep(t); r.Expired != 0 || r.Held != 2 {
		t.Fatalf("sweep past expiry with both held: %+v, want nothing expired, 2 held", r)
	}
	for _, a := range []*sealgatev1.Artifact{one, two} {
		if got := mustRead(t, e.Env, e.ctx, a.GetName()); len(got) == 0 {
			t.Fatal("held artifact unreadable")
		}
	}
	if _, err := e.Artifacts.ReleaseLegalHold(e.ctx, &sealgatev1.ReleaseLegalHoldRequest{Target: one.GetName()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Artifacts.ReleaseLegalHold(e.ctx, &sealgatev1.ReleaseLegalHoldRequest{Target: "accounts/demo/engagements/case-7"}); err != nil {
		t.Fatal(err)
	}
	if r := e.sweep(t); r.Expired != 2 {
		t.Fatalf("sweep after the release: %+v, want both expired", r)
	}
	for _, a := range []*sealgatev1.Artifact{one, two} {
		if left := objectsOf(t, e.DataDir, a); len(left) != 0 {
			t.Fatalf("objects left after release and expiry: %v", left)
		}
	}
}

func TestShorterRetentionAppliesToStoredContent(t *testing.T) {
	e := startLife(t, sealgatev1.DeletionMode_DELETION_MODE_HARD,
		&sealgatev1.RetentionRule{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES, RetentionDays: 30})
	a := mustUpload(t, e.Env, e.ctx, &sealgatev1.UploadHeader{Type: sealgatev1.ArtifactType_ARTIFACT_TYPE_VOICEMAIL, SipZone: "us-west"}, []byte("old"))
	e.advance(5 * 24 * time.Hour)
	if r := e.sweep(t); r.Expired != 0 {
		t.Fatal("expired under 30 days")
	}
	if _, err := e.Accounts.UpdateAccountSettings(e.ctx, &sealgatev1.UpdateAccountSettingsRequest{Settings: &sealgatev1.AccountSettings{
		Name:           "accounts/demo/settings",
		RetentionRules: []*sealgatev1.RetentionRule{{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES, RetentionDays: 3}}}}); err != nil {
		t.Fatal(err)
	}
	e.advance(11 * time.Second) // past the read cache of settings
	_, err := e.Read(e.ctx, a.GetName(), io.Discard)
	wantStatus(t, "read after retention was shortened below its age", err, codes.FailedPrecondition, "ARTIFACT_EXPIRED")
	if r := e.sweep(t); r.Expired != 1 {
		t.Fatalf("sweep after retention was shortened: %+v, want it expired", r)
	}
}

func TestPurgedCopyCannotBeDecryptedWithEveryKeyAtHand(t *testing.T) {
	e := startLife(t, sealgatev1.DeletionMode_DELETION_MODE_HARD)
	data := []byte("a copy in a backup must die with the artifact")
	a := mustUpload(t, e.Env, e.ctx, callHeader("us-west"), data)
	files := objectsOf(t, e.DataDir, a)
	copyOf := readFile(t, files[0]) // a stray copy: a version, a replica, a backup
	ref, _ := layout.ParseArtifactName(a.GetName())
	before, _, err := e.Runtime.Lifecycle.Load(context.Background(), ref)
	if err != nil || before == nil {
		t.Fatalf("record before the purge: %v, %v", before, err)
	}
	open := func(rec *lifecycle.Record) ([]byte, error) {
		r := bytes.NewReader(copyOf)
		h, err := keys.ReadHeader(r)
		if err != nil {
			return nil, err
		}
		plain, err := h.Open(context.Background(), r, lifecycle.Opener{Record: rec, Next: e.Runtime.Keys})
		if err != nil {
			return nil, err
		}
		return io.ReadAll(plain)
	}
	if got, err := open(before); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the copy with its record: %v; want it readable (the test's own check)", err)
	}
	if _, err := e.Artifacts.DeleteArtifact(e.ctx, &sealgatev1.DeleteArtifactRequest{Name: a.GetName()}); err != nil {
		t.Fatal(err)
	}
	after, _, err := e.Runtime.Lifecycle.Load(context.Background(), ref)
	if err != nil || after != nil {
		t.Fatalf("record after the purge: %v, %v; want it destroyed", after, err)
	}
	// The provider key, the key cache, the keysets on disk: all at hand.
	if got, err := open(after); err == nil || len(got) != 0 {
		t.Fatalf("the stray copy after the purge decrypted (%d bytes, %v)", len(got), err)
	}
}

// faultyControl is a control store whose writes (Put and Swap) of keys
// under prefix fail while down is set.
type faultyControl struct {
	store.Bucket
	prefix string
	down   *atomic.Bool
}

func (f faultyControl) fails(key string) error {
	if f.down.Load() && strings.HasPrefix(key, f.prefix) {
		return fmt.Errorf("control store down: %w", store.ErrUnavailable)
	}
	return nil
}

func (f faultyControl) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.fails(key); err != nil {
		return err
	}
	return f.Bucket.Put(ctx, key, r, size)
}

func (f faultyControl) Swap(ctx context.Context, key string, data []byte, version string) (string, error) {
	if err := f.fails(key); err != nil {
		return "", err
	}
	return f.Bucket.Swap(ctx, key, data, version)
}

// startSoftDelete starts a gateway on a fake clock whose account demo
// deletes softly, and whose control store writes under prefix fail while
// the returned flag is set.
func startSoftDelete(t *testing.T, prefix string) (*lifeEnv, *atomic.Bool) {
	t.Helper()
	down := &atomic.Bool{}
	env, kms := startWithKMS(t, func(c *config.Config) {
		c.WrapControl = func(b store.Bucket) store.Bucket { return faultyControl{Bucket: b, prefix: prefix, down: down} }
	})
	e := &lifeEnv{Env: env, kms: kms, ctx: env.Ctx(t, "demo")}
	if _, err := e.Accounts.UpdateAccountSettings(e.ctx, &sealgatev1.UpdateAccountSettingsRequest{
		Settings:   &sealgatev1.AccountSettings{Name: "accounts/demo/settings", DeletionMode: sealgatev1.DeletionMode_DELETION_MODE_SOFT},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"deletion_mode"}},
	}); err != nil {
		t.Fatal(err)
	}
	return e, down
}

// A soft delete whose purge entry cannot be written must not leave an
// artifact marked deleted that is never purged (first review: the record
// was marked before the entry was written; second review: a fix that wrote
// the entry on retry needed a client that retries). The entry is written
// first: the failed delete leaves the artifact as it was, and a later
// delete works as usual.
func TestSoftDeleteThatCannotIndexItsPurgeChangesNothing(t *testing.T) {
	e, down := startSoftDelete(t, "purge/")
	a := mustUpload(t, e.Env, e.ctx, callHeader("us-west"), []byte("to be purged"))
	down.Store(true)
	_, err := e.Artifacts.DeleteArtifact(e.ctx, &sealgatev1.DeleteArtifactRequest{Name: a.GetName()})
	wantStatus(t, "a delete whose purge entry cannot be written", err, codes.Unavailable, "")
	down.Store(false)
	if got, err := e.Artifacts.GetArtifact(e.ctx, &sealgatev1.GetArtifactRequest{Name: a.GetName()}); err != nil || got.GetState() == sealgatev1.Artifact_STATE_DELETED {
		t.Fatalf("after the failed delete: %v, %v; want it as it was, not deleted", got.GetState(), err)
	}
	if d, err := e.Artifacts.DeleteArtifact(e.ctx, &sealgatev1.DeleteArtifactRequest{Name: a.GetName()}); err != nil || d.GetState() != sealgatev1.Artifact_STATE_DELETED {
		t.Fatalf("a later delete: %v, %v", d.GetState(), err)
	}
	e.advance(30*24*time.Hour + time.Minute)
	if r := e.sweep(t); r.Purged != 1 {
		t.Fatalf("sweep after the purge time: %+v, want the artifact purged", r)
	}
	if left := objectsOf(t, e.DataDir, a); len(left) != 0 {
		t.Fatalf("objects left after the purge: %v", left)
	}
}

// An artifact without a record (uploaded by a gateway with no control
// store) whose soft delete fails at the record update is told the delete
// failed and must stay: the sweeper purges a purge entry that has no record,
// so the record is made before the entry is written (third review).
func TestFailedSoftDeleteOfAnArtifactWithoutRecordKeepsIt(t *testing.T) {
	e, down := startSoftDelete(t, "records/")
	env, kms := e.Env, e.kms
	// A gateway of an older version: no control store, so no record.
	rt := env.Runtime
	old, err := gateway.New(gateway.Config{Topology: rt.Topology, Settings: rt.Settings, Keyring: rt.Keyring, Keys: rt.Keys,
		ProviderKeyURI: "test://provider", Now: kms.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := gateway.NewServer(old, rt.Verifier, rt.Logger)
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	oldEnv := *env
	oldEnv.Artifacts = sealgatev1.NewArtifactServiceClient(conn)
	a := mustUpload(t, &oldEnv, e.ctx, callHeader("us-west"), []byte("legacy content"))

	down.Store(true)
	_, err = e.Artifacts.DeleteArtifact(e.ctx, &sealgatev1.DeleteArtifactRequest{Name: a.GetName()})
	down.Store(false)
	if err == nil {
		t.Fatal("want the delete to fail")
	}
	got, err := e.Artifacts.GetArtifact(e.ctx, &sealgatev1.GetArtifactRequest{Name: a.GetName()})
	if err != nil || got.GetState() == sealgatev1.Artifact_STATE_DELETED {
		t.Fatalf("after the failed delete: %v %v", got.GetState(), err)
	}
	e.advance(30*24*time.Hour + time.Minute)
	e.sweep(t)
	if left := objectsOf(t, e.DataDir, a); len(left) == 0 {
		_, gerr := e.Artifacts.GetArtifact(e.ctx, &sealgatev1.GetArtifactRequest{Name: a.GetName()})
		t.Fatalf("an artifact never deleted (the delete failed) was purged by the sweeper; GetArtifact now: %v", gerr)
	}
}

// Once the sweeper has claimed an artifact's record for its purge, a hold
// or an undelete is refused as for an artifact already gone, rather than
// accepted and lost with the record.
func TestHoldAndUndeleteAfterThePurgeClaimAreRefused(t *testing.T) {
	e, _ := startSoftDelete(t, "none/")
	a := mustUpload(t, e.Env, e.ctx, callHeader("us-west"), []byte("being purged"))
	if _, err := e.Artifacts.DeleteArtifact(e.ctx, &sealgatev1.DeleteArtifactRequest{Name: a.GetName()}); err != nil {
		t.Fatal(err)
	}
	ref, _ := layout.ParseArtifactName(a.GetName())
	now := e.kms.clock.now()
	if _, err := e.Runtime.Lifecycle.MarkPurging(context.Background(), ref, now, func(*lifecycle.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	_, err := e.Artifacts.SetLegalHold(e.ctx, &sealgatev1.SetLegalHoldRequest{Target: a.GetName(), Reason: "too late"})
	wantStatus(t, "a hold after the purge claimed the record", err, codes.NotFound, "ARTIFACT_NOT_FOUND")
	_, err = e.Artifacts.UndeleteArtifact(e.ctx, &sealgatev1.UndeleteArtifactRequest{Name: a.GetName()})
	wantStatus(t, "an undelete after the purge claimed the record", err, codes.NotFound, "ARTIFACT_NOT_FOUND")
	// A claim left by a sweeper that stopped blocks nothing once it is
	// stale (fifth review: it refused holds for as long as an engagement
	// hold kept the sweeper away).
	e.advance(lifecycle.ClaimTTL + time.Second)
	if _, err := e.Artifacts.SetLegalHold(e.ctx, &sealgatev1.SetLegalHoldRequest{Target: a.GetName(), Reason: "in time"}); err != nil {
		t.Fatalf("a hold on an artifact whose purge claim is stale: %v", err)
	}
	if rec, _, _ := e.Runtime.Lifecycle.Load(context.Background(), ref); rec == nil || rec.Hold == nil || rec.Purging != nil {
		t.Fatalf("record after the hold: %+v; want held and the stale claim gone", rec)
	}
}

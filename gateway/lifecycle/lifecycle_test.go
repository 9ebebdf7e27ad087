package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
	"github.com/sealgate/sealgate/store/filestore"
)

func bucket(t *testing.T) store.Bucket {
	t.Helper()
	b, err := filestore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// newRef returns a fresh artifact of acme created at created, staged and
// stored in us.
func newRef(t *testing.T, created time.Time) layout.Ref {
	t.Helper()
	id, err := layout.NewArtifactID(created, "us", "us")
	if err != nil {
		t.Fatal(err)
	}
	return layout.Ref{Account: "acme", ID: id, Staging: "us", Storage: "us"}
}

func exists(t *testing.T, b store.Bucket, key string) bool {
	t.Helper()
	_, err := b.Stat(context.Background(), key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestRecordsCreateUpdateDestroy(t *testing.T) {
	ctx := context.Background()
	s := NewStore(bucket(t))
	ref := newRef(t, time.Now())
	if r, _, err := s.Load(ctx, ref); r != nil || err != nil {
		t.Fatalf("Load of nothing: %v, %v", r, err)
	}
	ext := &ExternalShare{}
	slot, err := ext.WrapShare(ctx, []byte("share-bytes"), nil)
	if err != nil || slot.Kind != keys.SlotKindExternal || len(slot.Wrapped) != keys.ExternalShareIDLen {
		t.Fatalf("slot %+v, %v", slot, err)
	}
	rec := ext.Record("INBOX_MESSAGES", "eng-1", time.Now())
	if err := s.Create(ctx, ref, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, ref, rec); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("second Create: %v, want ErrPrecondition", err)
	}
	got, _, err := s.Load(ctx, ref)
	if err != nil || !bytes.Equal(got.Share(slot.Wrapped), []byte("share-bytes")) || got.Category != "INBOX_MESSAGES" || got.Engagement != "eng-1" {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	if got.Share([]byte("other")) != nil || (*Record)(nil).Share(slot.Wrapped) != nil {
		t.Fatal("Share of an unknown id or a nil record")
	}
	// Update retries the whole read-modify-write when another writer gets in.
	calls := 0
	updated, err := s.Update(ctx, ref, func(cur *Record) (*Record, error) {
		calls++
		if calls == 1 {
			// A concurrent writer changes the record between load and swap.
			other := *cur
			other.Hold = &Hold{Reason: "concurrent"}
			if _, err := s.Update(ctx, ref, func(*Record) (*Record, error) { return &other, nil }); err != nil {
				t.Fatal(err)
			}
		}
		next := *cur
		next.Deleted = &Deletion{Reason: "deleted"}
		return &next, nil
	})
	if err != nil || calls != 2 || updated.Deleted == nil || updated.Hold == nil {
		t.Fatalf("Update: %+v after %d calls, %v; want both changes", updated, calls, err)
	}
	if r, err := s.Update(ctx, ref, func(*Record) (*Record, error) { return nil, ErrNoChange }); err != nil || r.Deleted == nil {
		t.Fatalf("ErrNoChange: %+v, %v", r, err)
	}
	if err := s.Destroy(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := s.Load(ctx, ref); r != nil {
		t.Fatal("destroyed record still loads")
	}
	if err := s.Destroy(ctx, ref); err != nil {
		t.Fatalf("Destroy twice: %v", err)
	}
	// The opener: external shares from the record, the rest elsewhere.
	o := Opener{Record: rec, Next: nil}
	if sh, err := o.UnwrapShare(ctx, slot, nil); err != nil || string(sh) != "share-bytes" {
		t.Fatalf("UnwrapShare: %q, %v", sh, err)
	}
	if _, err := (Opener{Record: &Record{}}).UnwrapShare(ctx, slot, nil); !errors.Is(err, ErrShredded) {
		t.Fatalf("UnwrapShare without the share: %v, want ErrShredded", err)
	}
}

func TestHoldsSpansRequestsAndRedactionIndex(t *testing.T) {
	ctx := context.Background()
	s := NewStore(bucket(t))
	if h, err := s.EngagementHold(ctx, "acme", "e/1"); h != nil || err != nil {
		t.Fatalf("no hold: %v, %v", h, err)
	}
	if err := s.PutEngagementHold(ctx, "acme", EngagementHold{Engagement: "e/1", Reason: "case"}); err != nil {
		t.Fatal(err)
	}
	s.PutEngagementHold(ctx, "acme", EngagementHold{Engagement: "e2", Reason: "case 2"})
	s.PutEngagementHold(ctx, "globex", EngagementHold{Engagement: "e3"})
	if h, err := s.EngagementHold(ctx, "acme", "e/1"); err != nil || h.Reason != "case" {
		t.Fatalf("hold: %+v, %v", h, err)
	}
	if hs, err := s.EngagementHolds(ctx, "acme"); err != nil || len(hs) != 2 {
		t.Fatalf("acme's holds: %+v, %v", hs, err)
	}
	if err := s.ReleaseEngagementHold(ctx, "acme", "e/1"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.EngagementHold(ctx, "acme", "e/1"); h != nil {
		t.Fatal("released hold still there")
	}

	if _, found, err := s.Spans(ctx, "acme", "call-1", "call"); found || err != nil {
		t.Fatalf("spans before any transcript: found %v, %v", found, err)
	}
	for _, p := range []struct {
		kind, id string
		spans    []TimeSpan
	}{{"call", "t1", []TimeSpan{{StartMs: 2000, EndMs: 5500}}}, {"call", "t2", nil}, {"voicemail", "t3", []TimeSpan{{StartMs: 1, EndMs: 2}}}} {
		if err := s.PutSpans(ctx, "acme", "call-1", p.kind, p.id, p.spans); err != nil {
			t.Fatalf("PutSpans(%s): %v", p.id, err)
		}
	}
	spans, found, err := s.Spans(ctx, "acme", "call-1", "call")
	if err != nil || !found || len(spans) != 1 || spans[0].Start() != 2*time.Second || spans[0].End() != 5500*time.Millisecond {
		t.Fatalf("spans %+v found %v, %v", spans, found, err)
	}
	s.DeleteSpans(ctx, "acme", "call-1", "call", "t1")
	if spans, found, _ := s.Spans(ctx, "acme", "call-1", "call"); !found || len(spans) != 0 {
		t.Fatalf("after deleting t1: %+v, found %v (t2 had none)", spans, found)
	}

	var refs []layout.Ref
	for i := range 5 {
		r := newRef(t, time.Now().Add(time.Duration(i)*time.Second))
		refs = append(refs, r)
		if err := s.IndexRedaction(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	s.UnindexRedaction(ctx, refs[2])
	var seen []layout.Ref
	for after := ""; ; {
		page, next, err := s.PendingRedactions(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, page...)
		if len(page) < 2 {
			break
		}
		after = next
	}
	if len(seen) != 4 || seen[0] != refs[0] || seen[2] != refs[3] {
		t.Fatalf("pending %v", seen)
	}

	if r, v, err := s.LoadRequest(ctx, "acme", "req"); r != nil || v != "" || err != nil {
		t.Fatalf("no request: %v %q %v", r, v, err)
	}
	v1, err := s.SwapRequest(ctx, "acme", "req", &Request{Artifact: "a1", Fingerprint: "f"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SwapRequest(ctx, "acme", "req", &Request{Artifact: "a2"}, ""); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := s.SwapRequest(ctx, "acme", "req", &Request{Artifact: "a1", Stored: true, Fingerprint: "f"}, v1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SwapRequest(ctx, "acme", "req", &Request{Artifact: "a3"}, v1); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("stale swap: %v", err)
	}
	if r, _, err := s.LoadRequest(ctx, "acme", "req"); err != nil || !r.Stored || r.Artifact != "a1" {
		t.Fatalf("request %+v, %v", r, err)
	}
	if r, _, _ := s.LoadRequest(ctx, "globex", "req"); r != nil {
		t.Fatal("a request id is per account")
	}
}

// sweepEnv is a topology of one region and a settings store.
type sweepEnv struct {
	s        *Store
	region   store.Bucket
	settings *policy.SettingsStore
	topo     *policy.Topology
}

func newSweepEnv(t *testing.T, mode sealgatev1.DeletionMode) *sweepEnv {
	t.Helper()
	control, region := bucket(t), bucket(t)
	topo, err := policy.NewTopology(map[string]store.Bucket{"us": region}, map[string]string{"us-west": "us"})
	if err != nil {
		t.Fatal(err)
	}
	settings := policy.NewSettingsStore(control)
	if err := settings.Put(context.Background(), "acme", &sealgatev1.AccountSettings{HomeRegion: "us", DeletionMode: mode,
		RetentionRules: []*sealgatev1.RetentionRule{{Category: sealgatev1.RetentionCategory_RETENTION_CATEGORY_INBOX_MESSAGES, RetentionDays: 1}}}); err != nil {
		t.Fatal(err)
	}
	return &sweepEnv{s: NewStore(control), region: region, settings: settings, topo: topo}
}

// seed stores an artifact created at created, with its record and index.
func (e *sweepEnv) seed(t *testing.T, created time.Time, engagement string) layout.Ref {
	t.Helper()
	ctx := context.Background()
	ref := newRef(t, created)
	if err := e.region.Put(ctx, ref.StoredKey(), strings.NewReader("ct"), 2); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Create(ctx, ref, &Record{Shares: map[string][]byte{"00": {1}}, Category: "INBOX_MESSAGES", Engagement: engagement, Created: created}); err != nil {
		t.Fatal(err)
	}
	if err := e.s.IndexExpiry(ctx, ref, "INBOX_MESSAGES"); err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestSweeperExpiresOnlyWhatIsDueAndNotHeld(t *testing.T) {
	ctx := context.Background()
	e := newSweepEnv(t, sealgatev1.DeletionMode_DELETION_MODE_HARD)
	now := time.Now()
	due := e.seed(t, now.Add(-48*time.Hour), "e-due")
	held := e.seed(t, now.Add(-47*time.Hour), "e-held")
	young := e.seed(t, now.Add(-time.Hour), "e-young")
	e.s.PutEngagementHold(ctx, "acme", EngagementHold{Engagement: "e-held"})
	var steps []string
	sw := NewSweeper(SweeperConfig{Store: e.s, Settings: e.settings, Topology: e.topo, Now: func() time.Time { return now },
		Hook: func(step string, ref layout.Ref) error {
			if ref == due {
				steps = append(steps, step)
			}
			return nil
		}})
	r, err := sw.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Expired != 1 || r.Held != 1 {
		t.Fatalf("result %+v, want 1 expired and 1 held", r)
	}
	if exists(t, e.region, due.StoredKey()) || exists(t, e.s.Bucket(), recordKey("acme", due.ID)) || exists(t, e.s.Bucket(), expiryKey("acme", "INBOX_MESSAGES", due.ID)) {
		t.Fatal("the due artifact is not gone: object, record or index entry left")
	}
	for _, ref := range []layout.Ref{held, young} {
		if !exists(t, e.region, ref.StoredKey()) || !exists(t, e.s.Bucket(), recordKey("acme", ref.ID)) {
			t.Fatalf("%s was swept", ref.ID)
		}
	}
	if len(steps) == 0 || steps[0] != StepExpireStart {
		t.Fatalf("steps %v", steps)
	}
	// A hook error stops the sweep at that step; the next pass finishes.
	again := e.seed(t, now.Add(-48*time.Hour), "e-due2")
	stop := errors.New("stop")
	sw.SetHook(func(step string, ref layout.Ref) error {
		if step == StepShredded {
			return stop
		}
		return nil
	})
	sw.Pass(ctx)
	if exists(t, e.s.Bucket(), recordKey("acme", again.ID)) == true || !exists(t, e.region, again.StoredKey()) {
		t.Fatal("the sweep did not stop right after shredding")
	}
	sw.SetHook(nil)
	if _, err := sw.Pass(ctx); err != nil || exists(t, e.region, again.StoredKey()) {
		t.Fatalf("the next pass did not finish: %v", err)
	}
}

func TestSoftExpiryPurgesAfterTheWindow(t *testing.T) {
	ctx := context.Background()
	e := newSweepEnv(t, sealgatev1.DeletionMode_DELETION_MODE_SOFT)
	now := time.Now()
	ref := e.seed(t, now.Add(-48*time.Hour), "e")
	clock := now
	sw := NewSweeper(SweeperConfig{Store: e.s, Settings: e.settings, Topology: e.topo, Now: func() time.Time { return clock }})
	if r, err := sw.Pass(ctx); err != nil || r.Expired != 1 || r.Purged != 0 {
		t.Fatalf("first pass %+v, %v", r, err)
	}
	rec, _, _ := e.s.Load(ctx, ref)
	if rec == nil || rec.Deleted == nil || rec.Deleted.Reason != "expired" || !exists(t, e.region, ref.StoredKey()) {
		t.Fatalf("soft expiry: %+v", rec)
	}
	clock = now.Add(SoftDeleteWindow - time.Hour)
	if r, _ := sw.Pass(ctx); r.Purged != 0 {
		t.Fatal("purged inside the window")
	}
	clock = now.Add(SoftDeleteWindow + 25*time.Hour)
	if r, err := sw.Pass(ctx); err != nil || r.Purged != 1 {
		t.Fatalf("pass after the window: %+v, %v", r, err)
	}
	if exists(t, e.region, ref.StoredKey()) || exists(t, e.s.Bucket(), recordKey("acme", ref.ID)) {
		t.Fatal("purge left the object or the record")
	}
}

// TestHoldPlacedAfterSoftExpiryStopsThePurge: an engagement put on hold
// while its artifacts wait out the soft-delete window keeps them.
func TestHoldPlacedAfterSoftExpiryStopsThePurge(t *testing.T) {
	ctx := context.Background()
	e := newSweepEnv(t, sealgatev1.DeletionMode_DELETION_MODE_SOFT)
	now := time.Now()
	held := e.seed(t, now.Add(-48*time.Hour), "e-held")
	free := e.seed(t, now.Add(-48*time.Hour), "e-free")
	clock := now
	sw := NewSweeper(SweeperConfig{Store: e.s, Settings: e.settings, Topology: e.topo, Now: func() time.Time { return clock }})
	if r, err := sw.Pass(ctx); err != nil || r.Expired != 2 {
		t.Fatalf("first pass %+v, %v", r, err)
	}
	if err := e.s.PutEngagementHold(ctx, "acme", EngagementHold{Engagement: "e-held"}); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(SoftDeleteWindow + 25*time.Hour)
	r, err := sw.Pass(ctx)
	if err != nil || r.Purged != 1 || r.Held != 1 {
		t.Fatalf("pass after the window: %+v, %v; want 1 purged and 1 held", r, err)
	}
	if !exists(t, e.region, held.StoredKey()) || !exists(t, e.s.Bucket(), recordKey("acme", held.ID)) {
		t.Fatal("the held engagement's artifact was purged")
	}
	if exists(t, e.region, free.StoredKey()) {
		t.Fatal("the other artifact was not purged")
	}
}

// A hold placed between the sweeper's look at a record and its purge keeps
// the artifact: the purge claims the record by compare-and-swap and sees
// the hold, and a hold that comes after the claim is refused rather than
// lost with the record (fourth review: the record was destroyed
// unconditionally, with a hold written in that gap).
func TestHoldPlacedWhileThePurgeChecksKeepsTheArtifact(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []sealgatev1.DeletionMode{sealgatev1.DeletionMode_DELETION_MODE_HARD, sealgatev1.DeletionMode_DELETION_MODE_SOFT} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newSweepEnv(t, mode)
			now := time.Now()
			ref := e.seed(t, now.Add(-48*time.Hour), "e")
			clock := now
			sw := NewSweeper(SweeperConfig{Store: e.s, Settings: e.settings, Topology: e.topo, Now: func() time.Time { return clock }})
			if mode == sealgatev1.DeletionMode_DELETION_MODE_SOFT {
				if _, err := sw.Pass(ctx); err != nil { // expired: soft-deleted, purge due after the window
					t.Fatal(err)
				}
				clock = now.Add(SoftDeleteWindow + 25*time.Hour)
			}
			sw.SetHook(func(step string, r layout.Ref) error {
				if step == StepPurgeClaim && r == ref {
					// What PlaceLegalHold does, after the sweeper's look.
					_, err := e.s.Update(ctx, ref, func(cur *Record) (*Record, error) {
						c := *cur
						c.Hold = &Hold{Reason: "litigation"}
						return &c, nil
					})
					return err
				}
				return nil
			})
			r, err := sw.Pass(ctx)
			if err != nil || r.Held != 1 {
				t.Fatalf("pass with a hold placed during it: %+v, %v; want it held", r, err)
			}
			if !exists(t, e.region, ref.StoredKey()) || !exists(t, e.s.Bucket(), recordKey("acme", ref.ID)) {
				t.Fatal("the artifact held during the purge's checks was purged")
			}
			// The same with a hold on its engagement, an object of its own.
			other := e.seed(t, now.Add(-48*time.Hour), "e-other")
			if mode == sealgatev1.DeletionMode_DELETION_MODE_SOFT {
				sw.SetHook(nil)
				clock = now
				if _, err := sw.Pass(ctx); err != nil {
					t.Fatal(err)
				}
				clock = now.Add(SoftDeleteWindow + 25*time.Hour)
			}
			sw.SetHook(func(step string, r layout.Ref) error {
				if step == StepPurgeClaim && r == other {
					return e.s.PutEngagementHold(ctx, "acme", EngagementHold{Engagement: "e-other", Reason: "litigation"})
				}
				return nil
			})
			if r, err := sw.Pass(ctx); err != nil || r.Held < 1 {
				t.Fatalf("pass with an engagement hold placed during it: %+v, %v", r, err)
			}
			if !exists(t, e.region, other.StoredKey()) {
				t.Fatal("the artifact whose engagement was held during the purge's checks was purged")
			}
			if rec, _, _ := e.s.Load(ctx, other); rec == nil || rec.Purging != nil {
				t.Fatalf("the held artifact's record %+v: want it kept and not claimed", rec)
			}
		})
	}
	// Once claimed, a record refuses a hold.
	e := newSweepEnv(t, sealgatev1.DeletionMode_DELETION_MODE_HARD)
	now := time.Now()
	ref := e.seed(t, now, "e2")
	claim, err := e.s.MarkPurging(ctx, ref, now, func(*Record) error { return nil })
	if err != nil || claim.IsZero() {
		t.Fatal(claim, err)
	}
	if rec, _, _ := e.s.Load(ctx, ref); !rec.Claimed(now) || rec.Claimed(now.Add(ClaimTTL)) {
		t.Fatalf("claimed record %+v, want claimed for ClaimTTL", rec)
	}
	// Another purge shares a live claim without owning it, and cannot give
	// it back.
	if mine, err := e.s.MarkPurging(ctx, ref, now.Add(time.Minute), func(*Record) error { return nil }); err != nil || !mine.IsZero() {
		t.Fatalf("a second claim while the first is live: %v, %v; want none of its own", mine, err)
	}
	if err := e.s.ReleaseClaim(ctx, ref, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if rec, _, _ := e.s.Load(ctx, ref); !rec.Claimed(now) {
		t.Fatal("another purge's release gave back the first's claim")
	}
	// A claim left by a sweeper that stopped is taken over after ClaimTTL.
	if mine, err := e.s.MarkPurging(ctx, ref, now.Add(ClaimTTL+time.Second), func(*Record) error { return nil }); err != nil || mine.IsZero() {
		t.Fatalf("taking over a stale claim: %v, %v", mine, err)
	}
}

// A second sweeper that meets a live claim and finds the engagement held
// does not give back the claim it does not own (fifth review: it cleared
// the first sweeper's claim, after which an artifact hold was accepted and
// destroyed with the record).
func TestSecondSweeperLeavesALiveClaimAlone(t *testing.T) {
	ctx := context.Background()
	e := newSweepEnv(t, sealgatev1.DeletionMode_DELETION_MODE_HARD)
	now := time.Now()
	ref := e.seed(t, now.Add(-48*time.Hour), "e")
	first, err := e.s.MarkPurging(ctx, ref, now, func(*Record) error { return nil }) // sweeper A, mid-purge
	if err != nil {
		t.Fatal(err)
	}
	sw := NewSweeper(SweeperConfig{Store: e.s, Settings: e.settings, Topology: e.topo, Now: func() time.Time { return now.Add(time.Minute) },
		Hook: func(step string, r layout.Ref) error {
			if step == StepPurgeClaim && r == ref {
				return e.s.PutEngagementHold(ctx, "acme", EngagementHold{Engagement: "e", Reason: "litigation"})
			}
			return nil
		}})
	if _, err := sw.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := e.s.Load(ctx, ref)
	if rec == nil || rec.Purging == nil || !rec.Purging.Equal(first) {
		t.Fatalf("record after a second sweeper's pass: %+v; want A's claim untouched", rec)
	}
}

package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/mover"
	"github.com/sealgate/sealgate/store"
)

// Orphans. An artifact is kept exactly as long as its record: a purge and
// the cleanup of a failed upload both destroy the record first, then
// delete the objects. What a crash or an unreachable store leaves between
// the two is collected: the cleanup indexes the artifact for purge before
// its deletes (the sweeper finishes them), the mover never moves a staged
// object whose record is missing (it reports old ones, and never deletes
// one for that alone), and the mover checks the record again after its
// copy, so that a copy landing after the deletes of a purge is removed too
// (docs/scaling.md).

// MoverRecords lets a mover check artifact records in lc.
func MoverRecords(lc *lifecycle.Store) mover.Records { return moverRecords{lc} }

type moverRecords struct{ lc *lifecycle.Store }

func (r moverRecords) Exists(ctx context.Context, ref layout.Ref) (bool, error) {
	rec, _, err := r.lc.Load(ctx, ref)
	return rec != nil, err
}

func (r moverRecords) Needs(ctx context.Context, b store.Bucket, key string, ref layout.Ref) (bool, error) {
	share, err := shareOf(ctx, b, key, ref)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) {
		return false, err
	}
	if err != nil {
		return false, nil // not a header this gateway wrote for ref: never deleted
	}
	return share != "", nil
}

// abandon removes everything an upload that cannot be acknowledged wrote:
// its record first, then its objects (a mover may have moved it already:
// an attempt that lost its request claim can have been staged for
// seconds), its index entries and a transcript's spans. Whatever fails is
// left to the sweeper through a purge index entry.
func (g *Gateway) abandon(plan *uploadPlan) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if plan.record == nil {
		g.deleteObjects(ctx, plan.ref)
		return
	}
	// A store that just lost a node may refuse writes for a few seconds:
	// try for a while before leaving the rest to the sweeper.
	for attempt := 0; ; attempt++ {
		err := g.purgeAttempt(ctx, plan, plan.ref)
		if err == nil {
			g.log.Debug("failed upload: what it wrote is removed", "artifact", plan.ref.Name())
			return
		}
		if attempt == cleanupAttempts-1 || !errors.Is(err, store.ErrUnavailable) || sleepCtx(ctx, cleanupPause<<attempt) != nil {
			g.log.Warn("failed upload: cleanup left to the sweeper", "artifact", plan.ref.Name(), "err", err)
			g.deleteObjects(ctx, plan.ref)
			return
		}
	}
}

// A failed upload's cleanup is tried cleanupAttempts times, the pause
// doubling from cleanupPause (about 4 s in all).
const (
	cleanupAttempts = 5
	cleanupPause    = 250 * time.Millisecond
)

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// deleteObjects deletes ref's objects as well as it can: stored, staged,
// then stored again, so that a copy a mover makes in between is caught.
func (g *Gateway) deleteObjects(ctx context.Context, ref layout.Ref) {
	for _, loc := range []struct{ region, key string }{
		{ref.Storage, ref.StoredKey()}, {ref.Staging, ref.StagingKey()}, {ref.Storage, ref.StoredKey()},
	} {
		b, err := g.cfg.Topology.Bucket(loc.region)
		if err == nil {
			err = b.Delete(ctx, loc.key)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			g.log.Warn("failed upload: object left behind (unreadable: no record)", "artifact", ref.Name(), "key", loc.key, "err", err)
		}
	}
}

// purgeAttempt removes everything an upload attempt wrote under ref, which
// has plan's header (a dead attempt found by a retry of the same request
// has: the request's fingerprint matched). Its record goes first; then a
// purge index entry for today, so that a sweeper finishes what fails
// below; then its objects, index entries and spans; then the entry.
func (g *Gateway) purgeAttempt(ctx context.Context, plan *uploadPlan, ref layout.Ref) error {
	lc := g.cfg.Lifecycle
	if err := lc.Destroy(ctx, ref); err != nil {
		return err
	}
	today := g.now()
	if err := lc.IndexPurge(ctx, ref, today); err != nil {
		return err
	}
	if err := lifecycle.Purge(ctx, lc, g.cfg.Topology, ref, nil); err != nil {
		return err
	}
	if err := lc.UnindexExpiry(ctx, ref, plan.category); err != nil {
		return err
	}
	if err := lc.UnindexRedaction(ctx, ref); err != nil {
		return err
	}
	if kind := recordingKind(plan.header.GetType()); kind != "" && plan.header.GetEngagementId() != "" {
		if err := lc.UnindexRecording(ctx, ref, plan.header.GetEngagementId(), kind); err != nil {
			return err
		}
	}
	if kind := transcriptKind(plan.header.GetType()); kind != "" && plan.header.GetEngagementId() != "" {
		if err := lc.DeleteSpans(ctx, ref.Account, plan.header.GetEngagementId(), kind, ref.ID); err != nil {
			return err
		}
	}
	return lc.UnindexPurge(ctx, ref, today)
}

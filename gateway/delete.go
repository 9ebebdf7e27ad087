package gateway

import (
	"context"
	"errors"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/policy"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// Deletion, undeletion and legal holds are admin decisions: an uploader or
// reader cannot remove content, an auditor can only look.

func (g *Gateway) lifecycleStore() (*lifecycle.Store, error) {
	if g.cfg.Lifecycle == nil {
		return nil, newStatus(codes.FailedPrecondition, "this gateway has no control store for deletion", ReasonInvalidArgument, nil)
	}
	return g.cfg.Lifecycle, nil
}

// DeleteArtifact deletes an artifact per its account's deletion mode. Soft:
// it is hidden and no longer served, and can be undeleted until its purge
// time (delete time + 30 days), when the sweeper purges it. Hard: it is
// purged at once: its record (the external share of its data key) is
// destroyed, then its objects in every region. A held artifact cannot be
// deleted (FAILED_PRECONDITION / LEGAL_HOLD). Deletion needs no key.
func (s *artifactService) DeleteArtifact(ctx context.Context, req *sealgatev1.DeleteArtifactRequest) (*sealgatev1.Artifact, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	ref, err := g.resolveArtifact(ctx, p, req.GetName())
	if err != nil {
		return nil, err
	}
	ls, err := g.lifecycleStore()
	if err != nil {
		return nil, err
	}
	a, err := g.describe(ctx, ref)
	if err != nil {
		return nil, g.toStatus(ctx, "delete", err)
	}
	if a.GetLegalHold() {
		return nil, newStatus(codes.FailedPrecondition, "the artifact is under a legal hold", ReasonLegalHold, nil)
	}
	if a.GetState() == sealgatev1.Artifact_STATE_DELETED {
		// A delete that failed after marking the record may have left the
		// purge entry unwritten: write it now, or the artifact would never
		// be purged. Both steps are idempotent.
		if pt := a.GetPurgeTime(); pt != nil {
			if err := ls.IndexPurge(ctx, ref, pt.AsTime()); err != nil {
				return nil, g.toStatus(ctx, "delete", err)
			}
			if err := ls.UnindexExpiry(ctx, ref, policy.TypeCategory(a.GetType())); err != nil {
				return nil, g.toStatus(ctx, "delete", err)
			}
		}
		return nil, newStatus(codes.FailedPrecondition, "the artifact is deleted already", ReasonArtifactDeleted, nil)
	}
	if eng := a.GetEngagementId(); eng != "" {
		if h, err := ls.EngagementHold(ctx, ref.Account, eng); err != nil {
			return nil, g.toStatus(ctx, "delete", err)
		} else if h != nil {
			return nil, newStatus(codes.FailedPrecondition, "the artifact's engagement is under a legal hold", ReasonLegalHold, nil)
		}
	}
	settings, err := g.cfg.Settings.Get(ctx, ref.Account)
	if err != nil {
		return nil, g.toStatus(ctx, "delete", err)
	}
	now := g.now().UTC()
	category := policy.TypeCategory(a.GetType())
	if !policy.SoftDelete(settings) {
		if err := lifecycle.Purge(ctx, ls, g.cfg.Topology, ref, nil); err != nil {
			return nil, g.toStatus(ctx, "delete", err)
		}
		if err := ls.UnindexExpiry(ctx, ref, category); err != nil {
			return nil, g.toStatus(ctx, "delete", err)
		}
		g.audit.Record(audit.Event{Kind: audit.KindDelete, Account: ref.Account, Artifact: ref.Name(), Actor: p.Subject,
			Outcome: audit.OutcomeOK, Detail: "hard: purged"})
		a.State, a.DeleteTime, a.PurgeTime = sealgatev1.Artifact_STATE_DELETED, timestamppb.New(now), timestamppb.New(now)
		return a, nil
	}
	// The purge entry goes first: a delete that fails after marking the
	// record and is never retried must still be purged. An entry whose
	// record ends up not deleted (this update failed, or an undelete came
	// later) is dropped by the sweeper when it comes due; but one with no
	// record at all is purged, so an artifact from before records (none
	// yet) gets one first.
	newRecord := func() *lifecycle.Record {
		return &lifecycle.Record{Created: a.GetCreateTime().AsTime(), Category: category, Engagement: a.GetEngagementId()}
	}
	if _, err := ls.Update(ctx, ref, func(cur *lifecycle.Record) (*lifecycle.Record, error) {
		if cur != nil {
			return nil, lifecycle.ErrNoChange
		}
		return newRecord(), nil
	}); err != nil {
		return nil, g.toStatus(ctx, "delete", err)
	}
	purgeTime := now.Add(lifecycle.SoftDeleteWindow)
	if err := ls.IndexPurge(ctx, ref, purgeTime); err != nil {
		return nil, g.toStatus(ctx, "delete", err)
	}
	rec, err := ls.Update(ctx, ref, func(cur *lifecycle.Record) (*lifecycle.Record, error) {
		next := newRecord()
		if cur != nil {
			c := *cur
			next = &c
		}
		if next.Hold != nil {
			return nil, errHeld
		}
		if next.Deleted != nil {
			return nil, lifecycle.ErrNoChange
		}
		next.Deleted = &lifecycle.Deletion{Time: now, PurgeTime: purgeTime, Actor: p.Subject, Reason: "deleted"}
		return next, nil
	})
	if errors.Is(err, errHeld) {
		return nil, newStatus(codes.FailedPrecondition, "the artifact is under a legal hold", ReasonLegalHold, nil)
	}
	if err != nil {
		return nil, g.toStatus(ctx, "delete", err)
	}
	if !rec.Deleted.PurgeTime.Equal(purgeTime) {
		// Deleted meanwhile by another call: make sure its entry exists.
		if err := ls.IndexPurge(ctx, ref, rec.Deleted.PurgeTime); err != nil {
			return nil, g.toStatus(ctx, "delete", err)
		}
	}
	if err := ls.UnindexExpiry(ctx, ref, category); err != nil {
		return nil, g.toStatus(ctx, "delete", err)
	}
	g.audit.Record(audit.Event{Kind: audit.KindDelete, Account: ref.Account, Artifact: ref.Name(), Actor: p.Subject,
		Outcome: audit.OutcomeOK, Detail: "soft: purge " + rec.Deleted.PurgeTime.Format(time.RFC3339)})
	a.State = sealgatev1.Artifact_STATE_DELETED
	a.DeleteTime, a.PurgeTime = timestamppb.New(rec.Deleted.Time), timestamppb.New(rec.Deleted.PurgeTime)
	return a, nil
}

var errHeld = errors.New("gateway: legal hold")

// UndeleteArtifact restores a soft-deleted artifact before its purge time
// (AIP-164) and returns it; after the purge time it is gone (NOT_FOUND).
func (s *artifactService) UndeleteArtifact(ctx context.Context, req *sealgatev1.UndeleteArtifactRequest) (*sealgatev1.Artifact, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	ref, err := g.resolveArtifact(ctx, p, req.GetName())
	if err != nil {
		return nil, err
	}
	ls, err := g.lifecycleStore()
	if err != nil {
		return nil, err
	}
	now := g.now()
	var category string
	_, err = ls.Update(ctx, ref, func(cur *lifecycle.Record) (*lifecycle.Record, error) {
		switch {
		case cur == nil:
			return nil, artifactNotFound(ref.Name())
		case cur.Deleted == nil:
			return nil, newStatus(codes.FailedPrecondition, "the artifact is not deleted", ReasonNotDeleted, nil)
		case !now.Before(cur.Deleted.PurgeTime) || cur.Claimed(now):
			return nil, artifactNotFound(ref.Name()) // purged, or about to be
		}
		next := *cur
		next.Deleted = nil
		category = cur.Category
		return &next, nil
	})
	if err != nil {
		return nil, g.toStatus(ctx, "undelete", err)
	}
	// Back in the expiry index: an artifact past its retention is then
	// expired again by the next sweep unless the retention was extended.
	if err := ls.IndexExpiry(ctx, ref, category); err != nil {
		return nil, g.toStatus(ctx, "undelete", err)
	}
	g.audit.Record(audit.Event{Kind: audit.KindUndelete, Account: ref.Account, Artifact: ref.Name(), Actor: p.Subject, Outcome: audit.OutcomeOK})
	a, err := g.describe(ctx, ref)
	if err != nil {
		return nil, g.toStatus(ctx, "undelete", err)
	}
	return a, nil
}

// holdTarget is what a legal hold names: an artifact or an engagement.
type holdTarget struct {
	ref        layout.Ref // set for an artifact
	account    string
	engagement string // set for an engagement
}

func (t holdTarget) name() string {
	if t.engagement != "" {
		return "accounts/" + t.account + "/engagements/" + t.engagement + "/hold"
	}
	return t.ref.Name() + "/hold"
}

// resolveHoldTarget parses "accounts/A/artifacts/ID" or
// "accounts/A/engagements/E" and checks that the caller owns it.
func (g *Gateway) resolveHoldTarget(ctx context.Context, p *auth.Principal, target string) (holdTarget, error) {
	if strings.Contains(target, "/engagements/") {
		acct, eng, _ := strings.Cut(strings.TrimPrefix(target, "accounts/"), "/engagements/")
		if !strings.HasPrefix(target, "accounts/") || !layout.ValidAccountID(acct) || eng == "" || len(eng) > maxIDLen || !printable(eng) {
			return holdTarget{}, invalidArgument("target", "want accounts/{account}/engagements/{engagement_id} or accounts/{account}/artifacts/{artifact}", ReasonInvalidArgument)
		}
		if acct != p.Account {
			g.otherAccount(ctx, p, target)
			return holdTarget{}, newStatus(codes.NotFound, "account not found", ReasonAccountNotFound, nil)
		}
		return holdTarget{account: acct, engagement: eng}, nil
	}
	ref, err := g.resolveArtifact(ctx, p, target)
	if err != nil {
		return holdTarget{}, err
	}
	return holdTarget{ref: ref, account: ref.Account}, nil
}

// SetLegalHold places a legal hold: while it lasts, nothing it covers is
// deleted or expires (reads of expired content are refused all the same
// unless held: a hold keeps content servable).
func (s *artifactService) SetLegalHold(ctx context.Context, req *sealgatev1.SetLegalHoldRequest) (*sealgatev1.LegalHold, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	t, err := g.resolveHoldTarget(ctx, p, req.GetTarget())
	if err != nil {
		return nil, err
	}
	if len(req.GetReason()) > 1024 || !printable(req.GetReason()) {
		return nil, invalidArgument("reason", "printable, at most 1024 bytes", ReasonInvalidArgument)
	}
	ls, err := g.lifecycleStore()
	if err != nil {
		return nil, err
	}
	now := g.now().UTC()
	if t.engagement != "" {
		err = ls.PutEngagementHold(ctx, t.account, lifecycle.EngagementHold{Engagement: t.engagement, Reason: req.GetReason(), Time: now, Creator: p.Subject})
	} else {
		var a *sealgatev1.Artifact
		if a, err = g.describe(ctx, t.ref); err == nil {
			_, err = ls.Update(ctx, t.ref, func(cur *lifecycle.Record) (*lifecycle.Record, error) {
				next := &lifecycle.Record{Created: a.GetCreateTime().AsTime(), Category: policy.TypeCategory(a.GetType()), Engagement: a.GetEngagementId()}
				if cur != nil {
					c := *cur
					next = &c
				}
				if next.Claimed(now) {
					return nil, lifecycle.ErrPurging // too late: its purge has begun
				}
				next.Purging = nil // a claim left by a sweeper that stopped
				next.Hold = &lifecycle.Hold{Time: now, Reason: req.GetReason(), Creator: p.Subject}
				return next, nil
			})
		}
	}
	if err != nil {
		return nil, g.toStatus(ctx, "hold", err)
	}
	g.audit.Record(audit.Event{Kind: audit.KindHold, Account: t.account, Artifact: t.name(), Actor: p.Subject, Outcome: audit.OutcomeOK})
	return &sealgatev1.LegalHold{Name: t.name(), Reason: req.GetReason(), CreateTime: timestamppb.New(now), Creator: p.Subject}, nil
}

// ReleaseLegalHold releases a hold; deletion and expiry go on from then.
func (s *artifactService) ReleaseLegalHold(ctx context.Context, req *sealgatev1.ReleaseLegalHoldRequest) (*sealgatev1.LegalHold, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	t, err := g.resolveHoldTarget(ctx, p, req.GetTarget())
	if err != nil {
		return nil, err
	}
	ls, err := g.lifecycleStore()
	if err != nil {
		return nil, err
	}
	out := &sealgatev1.LegalHold{Name: t.name()}
	if t.engagement != "" {
		h, err := ls.EngagementHold(ctx, t.account, t.engagement)
		if err == nil && h == nil {
			err = newStatus(codes.NotFound, "no legal hold on this engagement", ReasonInvalidArgument, nil)
		}
		if err == nil {
			out.Reason, out.CreateTime, out.Creator = h.Reason, timestamppb.New(h.Time), h.Creator
			err = ls.ReleaseEngagementHold(ctx, t.account, t.engagement)
		}
		if err != nil {
			return nil, g.toStatus(ctx, "release", err)
		}
	} else {
		_, err := ls.Update(ctx, t.ref, func(cur *lifecycle.Record) (*lifecycle.Record, error) {
			if cur == nil || cur.Hold == nil {
				return nil, newStatus(codes.NotFound, "no legal hold on this artifact", ReasonInvalidArgument, nil)
			}
			out.Reason, out.CreateTime, out.Creator = cur.Hold.Reason, timestamppb.New(cur.Hold.Time), cur.Hold.Creator
			next := *cur
			next.Hold = nil
			return &next, nil
		})
		if err != nil {
			return nil, g.toStatus(ctx, "release", err)
		}
	}
	g.audit.Record(audit.Event{Kind: audit.KindRelease, Account: t.account, Artifact: t.name(), Actor: p.Subject, Outcome: audit.OutcomeOK})
	return out, nil
}

// ListLegalHolds lists the account's engagement holds. Holds on single
// artifacts show as legal_hold on the artifact.
func (s *artifactService) ListLegalHolds(ctx context.Context, req *sealgatev1.ListLegalHoldsRequest) (*sealgatev1.ListLegalHoldsResponse, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleAdmin, auth.RoleAuditor)
	if err != nil {
		return nil, err
	}
	account, err := g.resolveAccount(ctx, p, req.GetParent(), "parent")
	if err != nil {
		return nil, err
	}
	ls, err := g.lifecycleStore()
	if err != nil {
		return nil, err
	}
	holds, err := ls.EngagementHolds(ctx, account)
	if err != nil {
		return nil, g.toStatus(ctx, "list holds", err)
	}
	resp := &sealgatev1.ListLegalHoldsResponse{}
	for _, h := range holds {
		resp.LegalHolds = append(resp.LegalHolds, &sealgatev1.LegalHold{
			Name:   holdTarget{account: account, engagement: h.Engagement}.name(),
			Reason: h.Reason, CreateTime: timestamppb.New(h.Time), Creator: h.Creator,
		})
	}
	return resp, nil
}

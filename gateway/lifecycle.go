package gateway

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/keys"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// Reasons of the retention and deletion errors.
const (
	ReasonArtifactExpired = "ARTIFACT_EXPIRED" // FAILED_PRECONDITION
	ReasonLegalHold       = "LEGAL_HOLD"       // FAILED_PRECONDITION
	ReasonNotDeleted      = "ARTIFACT_NOT_DELETED"
)

// settingsTTL is how long a read trusts account settings it read for the
// retention check: a retention change applies to reads within it.
const settingsTTL = 10 * time.Second

// settingsCache remembers account settings for settingsTTL, for reads.
type settingsCache struct {
	mu      sync.Mutex
	entries map[string]cachedSettings
}

type cachedSettings struct {
	s  *sealgatev1.AccountSettings
	at time.Time
}

// forgetSettings drops account's cached settings.
func (g *Gateway) forgetSettings(account string) {
	g.settings.mu.Lock()
	delete(g.settings.entries, account)
	g.settings.mu.Unlock()
}

// cachedSettings returns account's settings, at most settingsTTL old.
func (g *Gateway) cachedSettings(ctx context.Context, account string) (*sealgatev1.AccountSettings, error) {
	now := g.now()
	g.settings.mu.Lock()
	e, ok := g.settings.entries[account]
	g.settings.mu.Unlock()
	if ok && now.Sub(e.at) < settingsTTL && !now.Before(e.at) {
		return e.s, nil
	}
	s, err := g.cfg.Settings.Get(ctx, account)
	if err != nil {
		return nil, err
	}
	g.settings.mu.Lock()
	if g.settings.entries == nil || len(g.settings.entries) > 10000 {
		g.settings.entries = map[string]cachedSettings{}
	}
	g.settings.entries[account] = cachedSettings{s: s, at: now}
	g.settings.mu.Unlock()
	return s, nil
}

// lifecycleState is what an artifact's record and the account's retention
// say about it now.
type lifecycleState struct {
	rec     *lifecycle.Record
	expire  time.Time // zero: kept indefinitely
	expired bool
	held    bool
}

// stateOf loads ref's record and works out its retention. h is its header.
func (g *Gateway) stateOf(ctx context.Context, ref layout.Ref, h *keys.Header) (lifecycleState, error) {
	var st lifecycleState
	if g.cfg.Lifecycle == nil {
		return st, nil
	}
	rec, _, err := g.cfg.Lifecycle.Load(ctx, ref)
	if err != nil {
		return st, err
	}
	st.rec = rec
	settings, err := g.cachedSettings(ctx, ref.Account)
	if err != nil {
		return st, err
	}
	t, _ := policy.ParseTypeName(h.Context[keys.ContextType])
	created := createdOf(ref, h)
	if exp, ok := policy.ExpireTime(settings, policy.TypeCategory(t), created); ok {
		st.expire = exp
		st.expired = !g.now().Before(exp)
	}
	st.held = rec != nil && rec.Hold != nil
	if !st.held && st.expired {
		// Only an expired artifact needs its engagement's hold looked up.
		if eng := h.Metadata[metaEngagementID]; eng != "" {
			hold, err := g.cfg.Lifecycle.EngagementHold(ctx, ref.Account, eng)
			if err != nil {
				return st, err
			}
			st.held = hold != nil
		}
	}
	return st, nil
}

// createdOf returns an artifact's creation time: its header's, or its id's.
func createdOf(ref layout.Ref, h *keys.Header) time.Time {
	if t := metaTime(h.Metadata[metaCreateTime]); t != nil {
		return t.AsTime()
	}
	t, _ := layout.IDTime(ref.ID)
	return t
}

// servable returns nil when the artifact's content may be read now, else
// the status that says why not: deleted, expired (and not held), or purged
// (its external share is gone).
func (st lifecycleState) servable(h *keys.Header) error {
	switch {
	case st.rec != nil && st.rec.Deleted != nil:
		return newStatus(codes.FailedPrecondition, "the artifact is deleted; an admin can undelete it until its purge time", ReasonArtifactDeleted, nil)
	case st.expired && !st.held:
		return newStatus(codes.FailedPrecondition, "the artifact is past its retention and is no longer served", ReasonArtifactExpired, nil)
	case len(h.ExternalShareIDs()) > 0 && st.rec == nil:
		return newStatus(codes.NotFound, "artifact not found", ReasonArtifactNotFound, nil)
	}
	return nil
}

// decorate sets the artifact's lifecycle fields from its state.
func (st lifecycleState) decorate(a *sealgatev1.Artifact) {
	if !st.expire.IsZero() {
		a.ExpireTime = timestamppb.New(st.expire)
	}
	a.LegalHold = st.held || (st.rec != nil && st.rec.Hold != nil)
	if st.rec != nil && st.rec.Redaction != nil {
		a.RedactionState = sealgatev1.Artifact_REDACTION_STATE_REDACTED
		if st.rec.Redaction.Pending {
			a.RedactionState = sealgatev1.Artifact_REDACTION_STATE_PENDING
		}
	}
	if st.rec != nil && st.rec.Deleted != nil {
		a.State = sealgatev1.Artifact_STATE_DELETED
		a.DeleteTime = timestamppb.New(st.rec.Deleted.Time)
		a.PurgeTime = timestamppb.New(st.rec.Deleted.PurgeTime)
	}
}

// opener returns the slot opener of an artifact: external shares from its
// record, everything else through the key cache.
func (g *Gateway) opener(st lifecycleState) keys.SlotOpener {
	return lifecycle.Opener{Record: st.rec, Next: g.cfg.Keys}
}

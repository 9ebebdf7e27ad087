package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/lifecycle"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
	"github.com/sealgate/sealgate/store"
)

// Idempotent uploads (AIP-155). An upload with a request_id claims it in
// the control store before it stores anything: one create-only write. The
// attempt that holds the claim renews a lease while it streams, and marks
// the claim stored (a compare-and-swap) before it answers; only then is
// its artifact the request's. A retry finds the claim:
//
//   - stored: it answers with that artifact and stores nothing;
//   - leased: the first attempt may still be running, so it is refused with
//     UNAVAILABLE / REQUEST_IN_PROGRESS and a RetryInfo delay;
//   - lease run out: the first attempt's gateway died before it was done;
//     the retry purges whatever that attempt left and takes the claim.
//
// An attempt that loses its claim (it stalled past its lease and a retry
// took over) cannot mark it stored, so it removes what it wrote and fails:
// at most one artifact per request_id is ever acknowledged.
//
// A claim is rewritten while its attempt streams, and a distributed store
// that loses a node meanwhile can lose it. So each attempt is also named by
// a create-only entry that is removed once it is acknowledged, never
// before: an attempt that takes a claim purges whatever the entries name
// besides itself, also when it found no claim (docs/scaling.md).

// defaultRequestLease is how long an upload holds its request_id without
// renewing it.
const defaultRequestLease = 30 * time.Second

// requestClaim is a request_id held by an upload in progress.
type requestClaim struct {
	g       *Gateway
	account string
	id      string
	mu      sync.Mutex
	req     lifecycle.Request
	version string
	lost    bool
	stop    chan struct{}
	done    chan struct{}
}

// fingerprint identifies an upload's header, so that a request_id reused
// for a different upload is refused.
func fingerprint(h *sealgatev1.UploadHeader) string {
	sum := sha256.New()
	for _, v := range []string{h.GetType().String(), h.GetSipZone(), h.GetQueueId(), h.GetEngagementId(), h.GetContentType(),
		fmt.Sprint(h.SizeBytes != nil, h.GetSizeBytes())} {
		fmt.Fprintf(sum, "%d:%s;", len(v), v)
	}
	keys := make([]string, 0, len(h.GetLabels()))
	for k := range h.GetLabels() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(sum, "%d:%s=%d:%s;", len(k), k, len(h.GetLabels()[k]), h.GetLabels()[k])
	}
	return hex.EncodeToString(sum.Sum(nil))
}

func (g *Gateway) requestLease() time.Duration {
	if g.cfg.RequestLease > 0 {
		return g.cfg.RequestLease
	}
	return defaultRequestLease
}

// claimRequest takes plan's request_id for plan's artifact. It returns the
// artifact to answer with instead when the request was stored before, or
// the status that refuses the retry.
func (g *Gateway) claimRequest(ctx context.Context, plan *uploadPlan) (*requestClaim, *sealgatev1.Artifact, error) {
	lc, h := g.cfg.Lifecycle, plan.header
	account, id, fp := plan.ref.Account, h.GetRequestId(), fingerprint(h)
	var lastErr error
	for range 8 {
		cur, ver, err := lc.LoadRequest(ctx, account, id)
		if err != nil {
			return nil, nil, err
		}
		now := g.now()
		mine := &lifecycle.Request{Artifact: plan.ref.ID, Fingerprint: fp, LeaseUntil: now.Add(g.requestLease()), Created: now.UTC()}
		if cur != nil && cur.Expiring {
			// The sweeper is removing the request (past its TTL).
			if wait := cur.LeaseUntil.Sub(now); wait > 0 {
				return nil, nil, newStatus(codes.Unavailable,
					"this request_id is being expired; retry after the delay to store the upload anew", ReasonRequestInProgress,
					nil, &errdetails.RetryInfo{RetryDelay: durationpb.New(wait.Round(time.Millisecond) + 100*time.Millisecond)})
			}
			// A sweeper stopped midway: its claim is taken over like a
			// dead attempt's, with the attempts it names.
			mine.Created, mine.Dead = cur.Created, slices.Clone(cur.Dead)
		} else if cur != nil {
			if cur.Fingerprint != fp {
				return nil, nil, newStatus(codes.FailedPrecondition,
					"header.request_id was used for another upload (a different header): pick a new one per artifact", ReasonRequestIDReused, nil)
			}
			old, ok := layout.ParseArtifactName(layout.ArtifactName(account, cur.Artifact))
			if cur.Stored && ok {
				a, err := g.describe(ctx, old)
				if err != nil {
					return nil, nil, err
				}
				// The attempt that stored it may have died before it
				// removed its attempt entry: an entry names only attempts
				// never acknowledged.
				if err := lc.UnindexAttempt(ctx, account, id, cur.Artifact); err != nil {
					return nil, nil, err
				}
				return nil, a, nil
			}
			if wait := cur.LeaseUntil.Sub(now); wait > 0 {
				return nil, nil, newStatus(codes.Unavailable,
					"an upload with this request_id is in progress; retry after the delay to get its result", ReasonRequestInProgress,
					nil, &errdetails.RetryInfo{RetryDelay: durationpb.New(wait.Round(time.Millisecond) + 100*time.Millisecond)})
			}
			mine.Created = cur.Created
			mine.Dead = append(slices.Clone(cur.Dead), cur.Artifact)
		}
		// Attempts named by entries but not by a claim exist only where a
		// claim was made before and lost. A request's first claim skips
		// listing them: its day index entry is new and there is none for
		// the day before (an upload lasts at most upload_max_duration,
		// 12 h, so a claim still renewed today was made today or
		// yesterday). A retry of a claim lost days earlier misses them;
		// the sweeper purges them once that claim's TTL is over.
		list := true
		if cur == nil {
			// The day index comes first: every claim has an entry, so the
			// sweeper finds it once its TTL is over.
			first, err := lc.IndexRequest(ctx, account, id, now)
			if err != nil {
				return nil, nil, err
			}
			if first {
				if list, err = lc.RequestIndexed(ctx, account, id, now.Add(-24*time.Hour)); err != nil {
					return nil, nil, err
				}
			}
		}
		ver, err = lc.SwapRequest(ctx, account, id, mine, ver)
		if errors.Is(err, store.ErrPrecondition) {
			lastErr = err
			continue // another attempt moved first: look again
		}
		if err != nil {
			return nil, nil, err
		}
		// The claim is ours now, so the attempts that held it can no
		// longer mark it stored: they died (or stalled) before they were
		// done, nothing of them was acknowledged, and nothing of them may
		// stay. (Purging before taking the claim could destroy an attempt
		// that renewed its lease in between and completed.) The claim
		// names them, and so do their attempt entries, also when the
		// claim itself was lost; both name them until this attempt is
		// acknowledged: when a removal fails, this attempt fails, and the
		// next one that takes the claim tries again.
		// This attempt is named (alongside, since the listing skips it)
		// before anything of it is stored.
		named := make(chan error, 1)
		go func() { named <- lc.IndexAttempt(ctx, account, id, plan.ref.ID) }()
		err = g.dropDead(ctx, plan, mine, list)
		if nerr := <-named; err == nil {
			err = nerr
		}
		if err != nil {
			return nil, nil, err
		}
		c := &requestClaim{g: g, account: account, id: id, req: *mine, version: ver, stop: make(chan struct{}), done: make(chan struct{})}
		go c.renew()
		return c, nil, nil
	}
	// Eight lost races in a row: busy retries, or a store whose reads and
	// conditional writes disagree about the claim (a distributed store
	// that lost a node mid-write, until it heals).
	g.log.WarnContext(ctx, "request claim: every compare-and-swap failed", "artifact", plan.ref.Name(), "err", lastErr)
	return nil, nil, newStatus(codes.Aborted, "concurrent uploads with this request_id; retry", ReasonRequestInProgress, nil)
}

// renew extends the lease until stopped; a lost claim ends it.
func (c *requestClaim) renew() {
	defer close(c.done)
	every := c.g.requestLease() / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		next := c.req
		next.LeaseUntil = c.g.now().Add(c.g.requestLease())
		ctx, cancel := context.WithTimeout(context.Background(), every)
		ver, err := c.g.cfg.Lifecycle.SwapRequest(ctx, c.account, c.id, &next, c.version)
		if errors.Is(err, store.ErrPrecondition) {
			// A write whose answer was lost may have committed: the claim
			// is still ours if it names this attempt and is not stored.
			ver, err = c.resync(ctx, &next)
		}
		cancel()
		switch {
		case err == nil:
			c.req, c.version = next, ver
		case errors.Is(err, store.ErrPrecondition):
			c.lost = true
		}
		c.mu.Unlock()
		if errors.Is(err, store.ErrPrecondition) {
			return
		}
	}
}

// release stops the renewals.
func (c *requestClaim) release() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// resync reloads the claim after a failed swap: when it still names this
// attempt and is not stored, next is written over its current version.
// It returns an error wrapping store.ErrPrecondition when the claim is
// another attempt's.
func (c *requestClaim) resync(ctx context.Context, next *lifecycle.Request) (string, error) {
	cur, ver, err := c.g.cfg.Lifecycle.LoadRequest(ctx, c.account, c.id)
	if err != nil {
		return "", err
	}
	if cur == nil || cur.Artifact != c.req.Artifact || cur.Stored {
		return "", fmt.Errorf("request claim taken over: %w", store.ErrPrecondition)
	}
	return c.g.cfg.Lifecycle.SwapRequest(ctx, c.account, c.id, next, ver)
}

// complete marks the request stored by this attempt: after it the
// artifact is the request's answer. It fails when a retry took the claim.
// It runs on its own context, and when the outcome of its write is
// unknown it reads the claim back: an upload whose claim was marked must
// never be cleaned up.
func (c *requestClaim) complete(context.Context) error {
	c.release()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lost {
		return lostClaim()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := c.req
	next.Stored, next.LeaseUntil, next.Dead = true, time.Time{}, nil
	_, err := c.g.cfg.Lifecycle.SwapRequest(ctx, c.account, c.id, &next, c.version)
	if errors.Is(err, store.ErrPrecondition) {
		_, err = c.resync(ctx, &next)
	}
	if err != nil && !errors.Is(err, store.ErrPrecondition) {
		// Unknown: did the write commit? The claim says.
		if cur, _, lerr := c.g.cfg.Lifecycle.LoadRequest(ctx, c.account, c.id); lerr == nil && cur != nil &&
			cur.Artifact == c.req.Artifact && cur.Stored {
			return nil
		}
	}
	if errors.Is(err, store.ErrPrecondition) {
		cur, _, lerr := c.g.cfg.Lifecycle.LoadRequest(ctx, c.account, c.id)
		if lerr == nil && cur != nil && cur.Artifact == c.req.Artifact && cur.Stored {
			return nil // our own earlier write, whose answer was lost
		}
		return lostClaim()
	}
	return err
}

func lostClaim() error {
	return newStatus(codes.Aborted, "this upload stalled past its request lease and a retry took over; nothing of it was kept", ReasonRequestInProgress, nil)
}

// dropDead removes the artifacts of the attempts before plan's on its
// request: those req lists as dead and, with list, those named by attempt
// entries (their claim may have been lost), then their entries.
func (g *Gateway) dropDead(ctx context.Context, plan *uploadPlan, req *lifecycle.Request, list bool) error {
	lc, account, id := g.cfg.Lifecycle, plan.ref.Account, plan.header.GetRequestId()
	var listed []string
	if list {
		var err error
		if listed, err = lc.RequestAttempts(ctx, account, id); err != nil {
			return err
		}
	}
	dead := slices.Clone(req.Dead)
	for _, a := range listed {
		if a != plan.ref.ID && !slices.Contains(dead, a) {
			dead = append(dead, a)
			if !slices.Contains(req.Dead, a) {
				// Not in the claim: it lost its claim (a store that lost
				// a node while the claim was rewritten).
				g.log.WarnContext(ctx, "request claim lost: an attempt it named is removed", "artifact", a, "by", plan.ref.Name())
			}
		}
	}
	for _, a := range dead {
		if old, ok := layout.ParseArtifactName(layout.ArtifactName(account, a)); ok {
			if err := g.purgeAttempt(ctx, plan, old); err != nil {
				return err
			}
			g.log.InfoContext(ctx, "request taken over: the attempt that lost it is removed", "artifact", old.Name(), "by", plan.ref.Name())
		}
		if err := lc.UnindexAttempt(ctx, account, id, a); err != nil {
			return err
		}
	}
	return nil
}

// settle removes the attempt's entry once its claim is marked stored: it
// is acknowledged only after that, so that an entry never names an
// acknowledged attempt (a retry that finds no claim purges every attempt
// an entry names).
// Like complete, it runs on its own context: a client that goes away now
// leaves its upload stored and answerable.
func (c *requestClaim) settle(context.Context) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.g.cfg.Lifecycle.UnindexAttempt(ctx, c.account, c.id, c.req.Artifact); err != nil {
		c.g.log.Warn("upload stored but its attempt entry stays: a retry is answered with it", "artifact", c.req.Artifact, "err", err)
		return newStatus(codes.Unavailable, "the upload is stored but could not be settled; retry with the same request_id to get its artifact",
			ReasonStorageUnavailable, nil)
	}
	return nil
}

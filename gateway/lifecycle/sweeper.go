package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/gateway/policy"
	"github.com/sealgate/sealgate/store"
)

// Steps of the sweeper, named for hooks (crash tests) and logs.
const (
	StepExpireStart = "expire-start" // a due artifact was found
	StepSoftDeleted = "soft-deleted" // its record says deleted, purge not yet indexed
	StepPurgeIndex  = "purge-indexed"
	StepPurgeClaim  = "purge-claim"     // checked, about to claim the record (MarkPurging)
	StepShredded    = "shredded"        // its record (and external share) is destroyed
	StepObjectsGone = "objects-deleted" // its objects are deleted, index entries remain
	StepUnindexed   = "unindexed"       // done
)

// SweeperConfig configures a Sweeper.
type SweeperConfig struct {
	Store    *Store
	Settings *policy.SettingsStore
	Topology *policy.Topology
	Audit    audit.Sink
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Interval between passes; default 1 minute.
	Interval time.Duration
	// Batch is how many index entries one list call returns; default 500.
	Batch int
	// Workers is how many artifacts one sweeper deletes at once; default 8.
	Workers int
	// RequestTTL is how long a request claim (an upload's request_id) is
	// kept; a retry after that stores anew. Default 7 days.
	RequestTTL time.Duration
	// Registerer receives the sweeper's metrics; nil: not registered.
	Registerer prometheus.Registerer
	// Hook, when set, is called at every step (fault injection for crash
	// tests); an error aborts the sweep there.
	Hook func(step string, ref layout.Ref) error
}

// Sweeper expires artifacts past their retention and purges soft-deleted
// ones past their window. It lists only index entries that are due (the
// expiry index of each account and category is ordered by creation time, the
// purge index by day), never every artifact. Every step is idempotent and
// ordered so that a crash at any point leaves a state the next pass
// finishes, and several sweepers may run at once. It never needs a key.
type Sweeper struct {
	cfg SweeperConfig
	log *slog.Logger
	m   sweeperMetrics
}

type sweeperMetrics struct {
	expired, purged prometheus.Counter
	listed          prometheus.Counter
	errors          prometheus.Counter
}

// NewSweeper returns a Sweeper.
func NewSweeper(cfg SweeperConfig) *Sweeper {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 500
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.RequestTTL <= 0 {
		cfg.RequestTTL = DefaultRequestTTL
	}
	if cfg.Audit == nil {
		cfg.Audit = audit.Discard{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Sweeper{cfg: cfg, log: cfg.Logger, m: sweeperMetrics{
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "sealgate_sweeper_expired_total", Help: "Artifacts the sweeper expired."}),
		purged:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sealgate_sweeper_purged_total", Help: "Artifacts the sweeper purged."}),
		listed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sealgate_sweeper_index_entries_listed_total", Help: "Index entries the sweeper listed."}),
		errors:  prometheus.NewCounter(prometheus.CounterOpts{Name: "sealgate_sweeper_errors_total", Help: "Sweeps of one artifact that failed (retried next pass)."}),
	}}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.m.expired, s.m.purged, s.m.listed, s.m.errors)
	}
	return s
}

// SetHook sets the step hook; call it before Run.
func (s *Sweeper) SetHook(h func(step string, ref layout.Ref) error) { s.cfg.Hook = h }

// Result counts what one pass did.
type Result struct {
	Expired, Purged, Held int
	// Claims is how many request claims past their TTL were removed, and
	// Abandoned how many never acknowledged attempts were purged with them.
	Claims, Abandoned int
	// Listed is how many index entries the pass listed.
	Listed int
}

// Run makes a pass every interval until ctx ends.
func (s *Sweeper) Run(ctx context.Context) {
	for {
		if r, err := s.Pass(ctx); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "sweep incomplete", "err", err, "expired", r.Expired, "purged", r.Purged)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.Interval):
		}
	}
}

// Pass expires what is due in every account, then purges what is due. It
// returns the first error; the other artifacts are swept all the same.
func (s *Sweeper) Pass(ctx context.Context) (Result, error) {
	var r Result
	var firstErr error
	note := func(err error) {
		if err != nil {
			s.m.errors.Inc()
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	after := ""
	for {
		accounts, err := s.cfg.Settings.Accounts(ctx, after, 1000)
		if err != nil {
			return r, err
		}
		for _, a := range accounts {
			note(s.expireAccount(ctx, a, &r))
			after = a
		}
		if len(accounts) < 1000 || ctx.Err() != nil {
			break
		}
	}
	note(s.purgeDue(ctx, &r))
	note(s.expireRequests(ctx, &r))
	return r, firstErr
}

func (s *Sweeper) hook(step string, ref layout.Ref) error {
	if s.cfg.Hook != nil {
		return s.cfg.Hook(step, ref)
	}
	return nil
}

// expireAccount walks the expiry index of each of the account's categories
// that has a retention rule, oldest first, up to the first entry not due.
func (s *Sweeper) expireAccount(ctx context.Context, account string, r *Result) error {
	settings, err := s.cfg.Settings.Get(ctx, account)
	if err != nil {
		return err
	}
	holds, err := s.cfg.Store.EngagementHolds(ctx, account)
	if err != nil {
		return err
	}
	held := map[string]bool{}
	for _, h := range holds {
		held[h.Engagement] = true
	}
	now := s.cfg.Now()
	var firstErr error
	for _, rule := range settings.GetRetentionRules() {
		category := policy.CategoryName(rule.GetCategory())
		keep, ok := policy.RetentionOf(settings, category)
		if !ok {
			continue
		}
		cutoff := now.Add(-keep)
		prefix := expiryPrefix(account, category)
		after := ""
		for done := false; !done; {
			objs, err := s.cfg.Store.b.List(ctx, prefix, after, s.cfg.Batch)
			if err != nil {
				return err
			}
			r.Listed += len(objs)
			s.m.listed.Add(float64(len(objs)))
			var due []layout.Ref
			for _, o := range objs {
				after = o.Key
				id := strings.TrimPrefix(o.Key, prefix)
				created, ok := layout.IDTime(id)
				if !ok {
					continue
				}
				if created.After(cutoff) {
					done = true // ids are in creation order: nothing later is due
					break
				}
				if ref, ok := layout.RefOf(account, id); ok {
					due = append(due, ref)
				}
			}
			soft := policy.SoftDelete(settings)
			err = s.each(due, func(ref layout.Ref, rr *Result) error {
				return s.expireOne(ctx, ref, category, soft, held, rr)
			}, r)
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if len(objs) < s.cfg.Batch {
				done = true
			}
		}
	}
	return firstErr
}

// each runs fn over refs with the configured number of workers, adding
// their results to r, and returns the first error.
func (s *Sweeper) each(refs []layout.Ref, fn func(layout.Ref, *Result) error, r *Result) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	jobs := make(chan layout.Ref)
	for i := 0; i < min(s.cfg.Workers, len(refs)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range jobs {
				var one Result
				err := fn(ref, &one)
				mu.Lock()
				r.Expired, r.Purged, r.Held = r.Expired+one.Expired, r.Purged+one.Purged, r.Held+one.Held
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, ref := range refs {
		jobs <- ref
	}
	close(jobs)
	wg.Wait()
	return firstErr
}

// expireOne deletes one due artifact per the account's deletion mode,
// unless a hold keeps it.
func (s *Sweeper) expireOne(ctx context.Context, ref layout.Ref, category string, soft bool, held map[string]bool, r *Result) error {
	if err := s.hook(StepExpireStart, ref); err != nil {
		return err
	}
	rec, _, err := s.cfg.Store.Load(ctx, ref)
	if err != nil {
		return err
	}
	if rec != nil && (rec.Hold != nil || held[rec.Engagement]) {
		r.Held++
		return nil
	}
	if rec == nil || !soft {
		// No record (purged by an earlier pass that died before tidying
		// up), or hard deletion: purge now, unless a hold came since.
		if held, err := s.claim(ctx, ref, false); err != nil || held {
			if held {
				r.Held++
			}
			return err
		}
		if err := s.purge(ctx, ref, "expired"); err != nil {
			return err
		}
		if err := s.cfg.Store.UnindexExpiry(ctx, ref, category); err != nil {
			return err
		}
		r.Expired++
		s.m.expired.Inc()
		return s.hook(StepUnindexed, ref)
	}
	now := s.cfg.Now().UTC()
	rec, err = s.cfg.Store.Update(ctx, ref, func(cur *Record) (*Record, error) {
		if cur == nil {
			return nil, ErrNoChange
		}
		if cur.Deleted != nil {
			return nil, ErrNoChange // deleted already: finish the indexing below
		}
		next := *cur
		next.Deleted = &Deletion{Time: now, PurgeTime: now.Add(SoftDeleteWindow), Actor: "sweeper", Reason: "expired"}
		return &next, nil
	})
	if err != nil {
		return err
	}
	if rec == nil {
		return nil // purged meanwhile by another sweeper
	}
	if err := s.hook(StepSoftDeleted, ref); err != nil {
		return err
	}
	if err := s.cfg.Store.IndexPurge(ctx, ref, rec.Deleted.PurgeTime); err != nil {
		return err
	}
	if err := s.hook(StepPurgeIndex, ref); err != nil {
		return err
	}
	if err := s.cfg.Store.UnindexExpiry(ctx, ref, category); err != nil {
		return err
	}
	s.cfg.Audit.Record(audit.Event{Kind: audit.KindExpire, Account: ref.Account, Artifact: ref.Name(), Actor: "sweeper",
		Outcome: audit.OutcomeOK, Detail: "soft-deleted at the end of retention; purge " + rec.Deleted.PurgeTime.Format(time.RFC3339)})
	r.Expired++
	s.m.expired.Inc()
	return s.hook(StepUnindexed, ref)
}

// purgeDue walks the purge index up to today and purges what is due.
func (s *Sweeper) purgeDue(ctx context.Context, r *Result) error {
	now := s.cfg.Now()
	last := purgeKey(now, "~", "~") // sorts after every entry of today
	return s.walkIndex(ctx, purgePrefix, func(key string) bool { return key <= last }, r, func(key string) error {
		return s.purgeEntry(ctx, key, now, r)
	})
}

// walkIndex lists the entries under prefix in key order for as long as due
// says they are due, and calls fn with each. It returns the listing's
// error, or the first error of fn (the other entries are handled all the
// same).
func (s *Sweeper) walkIndex(ctx context.Context, prefix string, due func(key string) bool, r *Result, fn func(key string) error) error {
	after := ""
	var firstErr error
	for {
		objs, err := s.cfg.Store.b.List(ctx, prefix, after, s.cfg.Batch)
		if err != nil {
			return err
		}
		r.Listed += len(objs)
		s.m.listed.Add(float64(len(objs)))
		for _, o := range objs {
			after = o.Key
			if !due(o.Key) {
				return firstErr
			}
			if err := fn(o.Key); err != nil && firstErr == nil {
				firstErr = err
			}
		}
		if len(objs) < s.cfg.Batch {
			return firstErr
		}
	}
}

// purgeEntry handles one purge index entry "purge/DAY/ACCOUNT/ID".
func (s *Sweeper) purgeEntry(ctx context.Context, key string, now time.Time, r *Result) error {
	parts := strings.Split(strings.TrimPrefix(key, purgePrefix), "/")
	if len(parts) != 3 {
		return s.cfg.Store.remove(ctx, key)
	}
	ref, ok := layout.RefOf(parts[1], parts[2])
	if !ok {
		return s.cfg.Store.remove(ctx, key)
	}
	rec, _, err := s.cfg.Store.Load(ctx, ref)
	if err != nil {
		return err
	}
	switch {
	case rec != nil && rec.Deleted == nil:
		return s.cfg.Store.remove(ctx, key) // undeleted
	case rec != nil && rec.Hold != nil:
		r.Held++
		return nil
	case rec != nil && now.Before(rec.Deleted.PurgeTime):
		return nil // due later today
	}
	if rec != nil && rec.Engagement != "" {
		if h, err := s.cfg.Store.EngagementHold(ctx, ref.Account, rec.Engagement); err != nil {
			return err
		} else if h != nil {
			r.Held++
			return nil
		}
	}
	if held, err := s.claim(ctx, ref, true); errors.Is(err, errUndeleted) {
		return s.cfg.Store.remove(ctx, key)
	} else if err != nil || held {
		if held {
			r.Held++
		}
		return err
	}
	if err := s.purge(ctx, ref, "soft-delete window over"); err != nil {
		return err
	}
	if err := s.cfg.Store.remove(ctx, key); err != nil {
		return err
	}
	if rec != nil { // else an earlier entry, or a pass that died, purged it
		r.Purged++
		s.m.purged.Inc()
	}
	return s.hook(StepUnindexed, ref)
}

// errUndeleted: the record a purge was about to claim is no longer
// deleted.
var errUndeleted = errors.New("lifecycle: undeleted")

// claim claims ref's record for a purge (Store.MarkPurging) as the sweeper
// found it: held reports a hold placed since the sweeper looked, which
// keeps the artifact; with deleted (the soft-delete window is over) the
// error errUndeleted says the record was undeleted since. A live claim of
// another purge is shared, never given back.
func (s *Sweeper) claim(ctx context.Context, ref layout.Ref, deleted bool) (held bool, err error) {
	if err := s.hook(StepPurgeClaim, ref); err != nil {
		return false, err
	}
	engagement := ""
	claimed, err := s.cfg.Store.MarkPurging(ctx, ref, s.cfg.Now(), func(cur *Record) error {
		switch {
		case cur.Hold != nil:
			return errHeldNow
		case deleted && cur.Deleted == nil:
			return errUndeleted
		}
		engagement = cur.Engagement
		return nil
	})
	switch {
	case errors.Is(err, errHeldNow):
		return true, nil
	case err != nil || engagement == "":
		return false, err
	}
	// An engagement's hold is an object of its own, which the claim does
	// not cover: look again now that the claim is made. A hold placed
	// before this look keeps the artifact (this claim is given back); one
	// placed after it comes after the purge began.
	h, err := s.cfg.Store.EngagementHold(ctx, ref.Account, engagement)
	if err != nil || h != nil {
		// Give back this pass's claim (ReleaseClaim leaves another's).
		if rerr := s.cfg.Store.ReleaseClaim(ctx, ref, claimed); err == nil {
			err = rerr
		}
		return err == nil, err
	}
	return false, nil
}

var errHeldNow = errors.New("lifecycle: held")

// purge destroys ref's record (its external share) first, then deletes its
// objects in both regions, so that a crash in between leaves objects no one
// can decrypt, which the next pass deletes.
func (s *Sweeper) purge(ctx context.Context, ref layout.Ref, reason string) error {
	if err := Purge(ctx, s.cfg.Store, s.cfg.Topology, ref, s.hook); err != nil {
		return err
	}
	if reason == "" {
		return nil
	}
	s.cfg.Audit.Record(audit.Event{Kind: audit.KindPurge, Account: ref.Account, Artifact: ref.Name(), Actor: "sweeper",
		Outcome: audit.OutcomeOK, Detail: reason})
	return nil
}

// Purge removes ref for good: its record and external share, then its
// staged and stored objects (the stored one twice, around the staged one,
// so that a mover copying it meanwhile leaves nothing behind). hook, when
// not nil, is called after each step. It needs no key.
func Purge(ctx context.Context, st *Store, topo *policy.Topology, ref layout.Ref, hook func(string, layout.Ref) error) error {
	if err := st.Destroy(ctx, ref); err != nil {
		return err
	}
	if hook != nil {
		if err := hook(StepShredded, ref); err != nil {
			return err
		}
	}
	for _, loc := range []struct{ region, key string }{
		{ref.Storage, ref.StoredKey()}, {ref.Staging, ref.StagingKey()}, {ref.Storage, ref.StoredKey()},
	} {
		b, err := topo.Bucket(loc.region)
		if err != nil {
			return fmt.Errorf("lifecycle: purge %s: %w", ref.Name(), err)
		}
		if err := b.Delete(ctx, loc.key); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("lifecycle: purge %s: %w", ref.Name(), err)
		}
	}
	if hook != nil {
		return hook(StepObjectsGone, ref)
	}
	return nil
}

// DefaultRequestTTL is SweeperConfig.RequestTTL's default.
const DefaultRequestTTL = 7 * 24 * time.Hour

// expireRequests removes the request claims made on days that ended more
// than RequestTTL ago, listing only those days of the claims' index. A
// claim never marked stored belongs to attempts that died and whose client
// gave up before any retry succeeded: nothing of them was acknowledged,
// so their artifacts are purged with the claim (unless held).
func (s *Sweeper) expireRequests(ctx context.Context, r *Result) error {
	now := s.cfg.Now()
	cutoff := requestDayPrefix + now.Add(-s.cfg.RequestTTL).UTC().Format("20060102") + "/"
	return s.walkIndex(ctx, requestDayPrefix, func(key string) bool { return key < cutoff }, r, func(key string) error {
		err := s.expireRequest(ctx, key, now, r)
		if err != nil {
			s.m.errors.Inc()
		}
		return err
	})
}

// expireRequest handles one entry "request-days/DAY/ACCOUNT/HASH". The
// attempts its claim names (when it is not stored) and those its attempt
// entries name were never acknowledged: they are purged, unless held. The
// sweeper first takes an unstored (or missing) claim itself, with a
// compare-and-swap to a leased claim marked expiring, so that no retry
// takes it over and stores an attempt the listing then names; a stored
// claim needs no fence, since retries are answered from it and start no
// attempt. The entries go before the claim, so that no entry outlives a
// stored claim.
func (s *Sweeper) expireRequest(ctx context.Context, key string, now time.Time, r *Result) error {
	parts := strings.Split(strings.TrimPrefix(key, requestDayPrefix), "/")
	day, derr := time.Parse("20060102", parts[0])
	if len(parts) != 3 || !layout.ValidAccountID(parts[1]) || derr != nil {
		return s.cfg.Store.remove(ctx, key)
	}
	account, hash := parts[1], parts[2]
	claimKey := requestKeyOf(account, hash)
	cur, ver, err := s.cfg.Store.loadRequestAt(ctx, claimKey)
	if err != nil {
		return err
	}
	if cur != nil && cur.Created.After(now.Add(-s.cfg.RequestTTL)) {
		// A later claim on the request (the one this entry indexed was
		// lost): its own entry expires it, with every attempt entry.
		return s.cfg.Store.remove(ctx, key)
	}
	if cur == nil || !cur.Stored {
		if cur != nil && cur.LeaseUntil.After(now) {
			return nil // an attempt (or a sweeper) holds it: look again later
		}
		fence := &Request{Expiring: true, LeaseUntil: now.Add(requestSweepLease), Created: day}
		if cur != nil {
			fence.Fingerprint, fence.Created = cur.Fingerprint, cur.Created
			fence.Dead = slices.Clone(cur.Dead)
			if cur.Artifact != "" {
				fence.Dead = append(fence.Dead, cur.Artifact)
			}
		}
		data, err := json.Marshal(fence)
		if err != nil {
			return err
		}
		if _, err := s.cfg.Store.swapRequestAt(ctx, claimKey, data, ver); err != nil {
			if errors.Is(err, store.ErrPrecondition) {
				return nil // a retry moved first: look again on the next pass
			}
			return err
		}
	}
	listed, err := s.cfg.Store.attemptsOf(ctx, account, hash)
	if err != nil {
		return err
	}
	var never []string
	if cur != nil && cur.Stored {
		never = slices.DeleteFunc(slices.Clone(listed), func(id string) bool { return id == cur.Artifact })
	} else {
		never = append(never, listed...)
		if cur != nil {
			never = append(append(never, cur.Dead...), cur.Artifact)
		}
	}
	slices.Sort(never)
	for _, id := range slices.Compact(never) {
		ref, ok := layout.RefOf(account, id)
		if !ok {
			continue
		}
		held, err := s.heldArtifact(ctx, ref)
		if err != nil {
			return err
		}
		if held {
			r.Held++
			return nil // kept with its claim while the hold lasts
		}
		if err := s.purge(ctx, ref, "request abandoned: never acknowledged, its client gave up"); err != nil {
			return err
		}
		r.Abandoned++
	}
	for _, id := range listed {
		if err := s.cfg.Store.remove(ctx, requestAttemptsOf(account, hash)+id); err != nil {
			return err
		}
	}
	if err := s.cfg.Store.remove(ctx, claimKey); err != nil {
		return err
	}
	if cur != nil {
		r.Claims++
	}
	return s.cfg.Store.remove(ctx, key)
}

// requestSweepLease is how long the sweeper holds a request claim it
// removes: retries are refused meanwhile, and a sweeper that dies leaves
// the claim to the next retry or pass once it has run out.
const requestSweepLease = 5 * time.Minute

// heldArtifact reports whether ref, or its engagement, is under a legal
// hold.
func (s *Sweeper) heldArtifact(ctx context.Context, ref layout.Ref) (bool, error) {
	rec, _, err := s.cfg.Store.Load(ctx, ref)
	if err != nil || rec == nil {
		return false, err
	}
	if rec.Hold != nil {
		return true, nil
	}
	if rec.Engagement == "" {
		return false, nil
	}
	h, err := s.cfg.Store.EngagementHold(ctx, ref.Account, rec.Engagement)
	return h != nil, err
}

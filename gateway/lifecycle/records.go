// Package lifecycle keeps what an artifact's life needs outside its object:
// its record in the control store (the external share of its data key, its
// deletion state and legal hold), the indexes the sweeper walks (by
// retention category and creation time, and by purge day), engagement holds,
// and the sweeper that expires and purges on time. Deletion never needs a
// key: a purge destroys the record, and with it the external share of the
// data key, so that any copy of the object that survives (a bucket version,
// a replica, a backup) stays unreadable.
package lifecycle

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sealgate/sealgate/gateway/layout"
	"github.com/sealgate/sealgate/store"
)

// SoftDeleteWindow is how long a soft-deleted artifact can be undeleted
// before it is purged.
const SoftDeleteWindow = 30 * 24 * time.Hour

// maxRecordSize bounds a record; records hold a few shares and times.
const maxRecordSize = 64 << 10

// Record is an artifact's state outside its object.
type Record struct {
	// Shares are the external shares of data keys, by hex share id: one
	// per version of the object (a redacted replacement gets its own).
	Shares map[string][]byte `json:"shares,omitempty"`
	// Category is the retention category ("" for none) and Engagement the
	// engagement id, for the sweeper.
	Category   string    `json:"category,omitempty"`
	Engagement string    `json:"engagement,omitempty"`
	Created    time.Time `json:"created"`
	Deleted    *Deletion `json:"deleted,omitempty"`
	Hold       *Hold     `json:"hold,omitempty"`
	// Redaction is set for a recording of an account that redacts audio.
	Redaction *Redaction `json:"redaction,omitempty"`
	// Purging is when a purge claimed the record (MarkPurging): for
	// ClaimTTL after it no hold or undelete may change the record.
	Purging *time.Time `json:"purging,omitempty"`
}

// Deletion is a soft deletion.
type Deletion struct {
	Time      time.Time `json:"time"`
	PurgeTime time.Time `json:"purge_time"`
	Actor     string    `json:"actor"`
	Reason    string    `json:"reason"` // "deleted" or "expired"
}

// Hold is a legal hold.
type Hold struct {
	Time    time.Time `json:"time"`
	Reason  string    `json:"reason"`
	Creator string    `json:"creator"`
}

// Share returns the external share with id, or nil.
func (r *Record) Share(id []byte) []byte {
	if r == nil {
		return nil
	}
	return r.Shares[hex.EncodeToString(id)]
}

// Store keeps records, indexes and holds in the control bucket.
type Store struct {
	b store.Bucket
}

// NewStore returns a Store over the control bucket b.
func NewStore(b store.Bucket) *Store { return &Store{b: b} }

// Bucket returns the control bucket.
func (s *Store) Bucket() store.Bucket { return s.b }

func recordKey(account, id string) string { return "records/" + account + "/" + id + ".json" }

// Load returns ref's record and its version, or (nil, "", nil) when it has
// none (an artifact written before records, or one purged).
func (s *Store) Load(ctx context.Context, ref layout.Ref) (*Record, string, error) {
	data, ver, err := s.b.Load(ctx, recordKey(ref.Account, ref.ID), maxRecordSize)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("lifecycle: load record of %s: %w", ref.Name(), err)
	}
	r := &Record{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, "", fmt.Errorf("lifecycle: record of %s: %w", ref.Name(), err)
	}
	return r, ver, nil
}

// Create writes a new artifact's record; it fails with an error wrapping
// store.ErrPrecondition when the artifact has one already.
func (s *Store) Create(ctx context.Context, ref layout.Ref, r *Record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := s.b.Swap(ctx, recordKey(ref.Account, ref.ID), data, ""); err != nil {
		return fmt.Errorf("lifecycle: create record of %s: %w", ref.Name(), err)
	}
	return nil
}

// ErrNoChange, returned by an Update function, ends the update without
// writing.
var ErrNoChange = errors.New("lifecycle: no change")

// Update changes ref's record by compare-and-swap, retrying the whole
// read-modify-write when another writer got in between. change gets the
// current record (nil when there is none) and returns the new one.
func (s *Store) Update(ctx context.Context, ref layout.Ref, change func(*Record) (*Record, error)) (*Record, error) {
	for attempt := 0; attempt < 16; attempt++ {
		cur, ver, err := s.Load(ctx, ref)
		if err != nil {
			return nil, err
		}
		next, err := change(cur)
		if errors.Is(err, ErrNoChange) {
			return cur, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := json.Marshal(next)
		if err != nil {
			return nil, err
		}
		_, err = s.b.Swap(ctx, recordKey(ref.Account, ref.ID), data, ver)
		if errors.Is(err, store.ErrPrecondition) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("lifecycle: update record of %s: %w", ref.Name(), err)
		}
		return next, nil
	}
	return nil, fmt.Errorf("lifecycle: update record of %s: too many concurrent writers", ref.Name())
}

// Destroy deletes ref's record, and with it the external shares of its data
// keys: from then on no copy of the object can be decrypted. Destroying a
// missing record is not an error.
// ErrPurging is what an update that would keep a record returns once a
// purge has claimed it.
var ErrPurging = errors.New("lifecycle: the artifact is being purged")

// ClaimTTL is how long a purge's claim keeps holds and undeletes off the
// record: far longer than the few writes between a claim and the record's
// destruction. An older claim was left by a sweeper that stopped, and
// blocks nothing.
const ClaimTTL = 10 * time.Minute

// Claimed reports whether a purge holds a live claim on r at now.
func (r *Record) Claimed(now time.Time) bool {
	return r != nil && r.Purging != nil && now.Sub(*r.Purging) < ClaimTTL
}

// MarkPurging claims ref's record for a purge at now, by compare-and-swap:
// ok sees the record as it is at that moment and refuses the purge with an
// error (a hold placed since the caller last looked), which MarkPurging
// returns. Once claimed, holds and undeletes refuse the record (ErrPurging)
// for ClaimTTL, so nothing placed after the check is lost with it. It
// returns the claim's time for ReleaseClaim, or zero when the caller does
// not own a claim: a missing record needs none, and a live claim of another
// purge is left as it is (the caller may purge too: purging is idempotent,
// and the next pass after a sweeper stopped must finish its purges).
func (s *Store) MarkPurging(ctx context.Context, ref layout.Ref, now time.Time, ok func(*Record) error) (time.Time, error) {
	var claim time.Time
	_, err := s.Update(ctx, ref, func(cur *Record) (*Record, error) {
		claim = time.Time{}
		if cur == nil {
			return nil, ErrNoChange
		}
		if err := ok(cur); err != nil {
			return nil, err
		}
		if cur.Claimed(now) {
			return nil, ErrNoChange
		}
		c := *cur
		claim = now
		c.Purging = &claim
		return &c, nil
	})
	if err != nil {
		return time.Time{}, err
	}
	return claim, nil
}

// ReleaseClaim gives back the claim MarkPurging made at claim, and no
// other.
func (s *Store) ReleaseClaim(ctx context.Context, ref layout.Ref, claim time.Time) error {
	if claim.IsZero() {
		return nil
	}
	_, err := s.Update(ctx, ref, func(cur *Record) (*Record, error) {
		if cur == nil || cur.Purging == nil || !cur.Purging.Equal(claim) {
			return nil, ErrNoChange
		}
		c := *cur
		c.Purging = nil
		return &c, nil
	})
	return err
}

func (s *Store) Destroy(ctx context.Context, ref layout.Ref) error {
	if err := s.b.Delete(ctx, recordKey(ref.Account, ref.ID)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("lifecycle: destroy record of %s: %w", ref.Name(), err)
	}
	return nil
}

// Index keys. Artifact ids sort by creation time, so an account's expiry
// index per category lists oldest first and a sweep stops at the first
// entry that is not yet due.
func expiryPrefix(account, category string) string { return "expiry/" + account + "/" + category + "/" }
func expiryKey(account, category, id string) string {
	return expiryPrefix(account, category) + id
}

const purgePrefix = "purge/"

func purgeKey(day time.Time, account, id string) string {
	return purgePrefix + day.UTC().Format("20060102") + "/" + account + "/" + id
}

// touch creates an empty index entry; an existing one is fine.
func (s *Store) touch(ctx context.Context, key string) error {
	if err := s.b.Put(ctx, key, bytes.NewReader(nil), 0); err != nil {
		return fmt.Errorf("lifecycle: index %s: %w", key, err)
	}
	return nil
}

func (s *Store) remove(ctx context.Context, key string) error {
	if err := s.b.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("lifecycle: index %s: %w", key, err)
	}
	return nil
}

// IndexExpiry adds ref to its account's expiry index for category.
func (s *Store) IndexExpiry(ctx context.Context, ref layout.Ref, category string) error {
	if category == "" {
		return nil
	}
	return s.touch(ctx, expiryKey(ref.Account, category, ref.ID))
}

// UnindexExpiry removes ref from the expiry index for category.
func (s *Store) UnindexExpiry(ctx context.Context, ref layout.Ref, category string) error {
	if category == "" {
		return nil
	}
	return s.remove(ctx, expiryKey(ref.Account, category, ref.ID))
}

// IndexPurge adds ref to the purge index of the day it is due.
func (s *Store) IndexPurge(ctx context.Context, ref layout.Ref, due time.Time) error {
	return s.touch(ctx, purgeKey(due, ref.Account, ref.ID))
}

// UnindexPurge removes ref from the purge index of day.
func (s *Store) UnindexPurge(ctx context.Context, ref layout.Ref, day time.Time) error {
	return s.remove(ctx, purgeKey(day, ref.Account, ref.ID))
}

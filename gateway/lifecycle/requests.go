package lifecycle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sealgate/sealgate/store"
)

// Request is the claim an idempotent upload (AIP-155) holds on its
// request_id: which attempt's artifact it is, and whether it was stored.
// The attempt that holds the claim renews LeaseUntil while it streams; a
// retry may take over only once the lease has run out (its gateway died).
type Request struct {
	// Artifact is the id of the artifact of the attempt holding the claim.
	Artifact string `json:"artifact"`
	// Fingerprint identifies the request (a hash of its header), so that a
	// request_id reused for another upload is refused.
	Fingerprint string `json:"fingerprint"`
	Stored      bool   `json:"stored"`
	// Dead lists the artifacts of earlier attempts that lost the claim and
	// may not be removed yet: an attempt that takes the claim over removes
	// them, and carries them on when it cannot, so that a removal that
	// failed is done by the next attempt.
	Dead []string `json:"dead,omitempty"`
	// Expiring marks a claim the sweeper holds while it removes the
	// request past its TTL: retries are refused until its lease ends.
	Expiring   bool      `json:"expiring,omitempty"`
	LeaseUntil time.Time `json:"lease_until,omitzero"`
	Created    time.Time `json:"created"`
}

func requestKey(account, requestID string) string {
	return requestKeyOf(account, requestHash(requestID))
}

// requestHash names a request id in keys: ids are the client's, of any
// length and alphabet.
func requestHash(requestID string) string {
	sum := sha256.Sum256([]byte(requestID))
	return hex.EncodeToString(sum[:])
}

func requestKeyOf(account, hash string) string { return "requests/" + account + "/" + hash + ".json" }

// Claims are indexed by the day they were made, so that the sweeper
// removes old ones by listing only the days past the claims' TTL.
const requestDayPrefix = "request-days/"

func requestDayKey(day time.Time, account, hash string) string {
	return requestDayPrefix + day.UTC().Format("20060102") + "/" + account + "/" + hash
}

// IndexRequest adds the claim on requestID, made at created, to the index
// of claims by day. It is written before the claim, so every claim has an
// entry (an entry without a claim is dropped by the sweeper). It reports
// whether the entry is new: when it is not, a claim on requestID was made
// before on that day.
func (s *Store) IndexRequest(ctx context.Context, account, requestID string, created time.Time) (bool, error) {
	_, err := s.b.Swap(ctx, requestDayKey(created, account, requestHash(requestID)), nil, "")
	if errors.Is(err, store.ErrPrecondition) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lifecycle: request index: %w", err)
	}
	return true, nil
}

// RequestIndexed reports whether a claim on requestID was made on day.
func (s *Store) RequestIndexed(ctx context.Context, account, requestID string, day time.Time) (bool, error) {
	_, err := s.b.Stat(ctx, requestDayKey(day, account, requestHash(requestID)))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lifecycle: request index: %w", err)
	}
	return true, nil
}

// LoadRequest returns the claim on a request id and its version, or nil.
func (s *Store) LoadRequest(ctx context.Context, account, requestID string) (*Request, string, error) {
	return s.loadRequestAt(ctx, requestKey(account, requestID))
}

func (s *Store) loadRequestAt(ctx context.Context, key string) (*Request, string, error) {
	data, ver, err := s.b.Load(ctx, key, maxRecordSize)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("lifecycle: request: %w", err)
	}
	r := &Request{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, "", fmt.Errorf("lifecycle: request: %w", err)
	}
	return r, ver, nil
}

// SwapRequest writes the claim if it is still at version ("" creates it);
// it returns the new version, or an error wrapping store.ErrPrecondition
// when another attempt got there first.
func (s *Store) SwapRequest(ctx context.Context, account, requestID string, r *Request, version string) (string, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	return s.swapRequestAt(ctx, requestKey(account, requestID), data, version)
}

func (s *Store) swapRequestAt(ctx context.Context, key string, data []byte, version string) (string, error) {
	v, err := s.b.Swap(ctx, key, data, version)
	if err != nil {
		return "", fmt.Errorf("lifecycle: request: %w", err)
	}
	return v, nil
}

// Every attempt on a request id is also named by an entry of its own,
// "request-attempts/ACCOUNT/HASH/ARTIFACT", written once before the
// attempt stores anything and removed once its claim is marked stored
// (before it is acknowledged) or after the attempt was purged. The claim
// is rewritten while an attempt streams (lease renewals), and a store that
// loses a node during such a rewrite can lose the claim with it; entries
// are never rewritten, so a retry that finds no claim still finds the
// attempts that held it, and knows none of them was acknowledged.
const requestAttemptPrefix = "request-attempts/"

func requestAttemptsOf(account, hash string) string {
	return requestAttemptPrefix + account + "/" + hash + "/"
}

// IndexAttempt names artifactID as an attempt on requestID. The entry is
// written create-only: once removed, no late copy of the write brings it
// back.
func (s *Store) IndexAttempt(ctx context.Context, account, requestID, artifactID string) error {
	_, err := s.b.Swap(ctx, requestAttemptsOf(account, requestHash(requestID))+artifactID, nil, "")
	if err != nil && !errors.Is(err, store.ErrPrecondition) {
		return fmt.Errorf("lifecycle: request attempt: %w", err)
	}
	return nil
}

// UnindexAttempt removes artifactID's entry among requestID's attempts.
func (s *Store) UnindexAttempt(ctx context.Context, account, requestID, artifactID string) error {
	return s.remove(ctx, requestAttemptsOf(account, requestHash(requestID))+artifactID)
}

// RequestAttempts lists the artifact ids of the attempts on requestID
// that are named and were not acknowledged.
func (s *Store) RequestAttempts(ctx context.Context, account, requestID string) ([]string, error) {
	return s.attemptsOf(ctx, account, requestHash(requestID))
}

func (s *Store) attemptsOf(ctx context.Context, account, hash string) ([]string, error) {
	prefix := requestAttemptsOf(account, hash)
	var ids []string
	after := ""
	for {
		objs, err := s.b.List(ctx, prefix, after, store.DefaultListLimit)
		if err != nil {
			return nil, fmt.Errorf("lifecycle: request attempts: %w", err)
		}
		for _, o := range objs {
			after = o.Key
			ids = append(ids, strings.TrimPrefix(o.Key, prefix))
		}
		if len(objs) < store.DefaultListLimit {
			return ids, nil
		}
	}
}

// Package layout names artifacts and says where their objects live. It is
// shared by the gateway, which writes and reads objects, and the mover, which
// carries them from staging to storage: the bucket itself is the queue, so
// both must agree on every key.
//
// Artifact ids are "<time-ordered id>-<staging region><storage region>", for
// example "06f3kq0bm1r4c5tkeg6zgq8y4c-usde". The first part sorts by creation
// time (48-bit milliseconds, then 80 random bits, in lowercase Crockford
// base32), so listings come out oldest first. The region suffix lets a read
// find the ciphertext in at most two lookups (staging, then storage) with no
// catalog, whatever the account's settings are by now.
package layout

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Key prefixes inside a region's bucket.
const (
	StagingPrefix = "staging/"
	StoredPrefix  = "artifacts/"
)

var (
	artifactIDRE = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{26}-([a-z]{2})([a-z]{2})$`)
	accountIDRE  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	crockford    = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
)

// NewArtifactID returns a new id for an artifact staged in staging and kept
// in storage.
func NewArtifactID(now time.Time, staging, storage string) (string, error) {
	var random [10]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", fmt.Errorf("layout: random artifact id: %w", err)
	}
	return timePart(uint64(now.UnixMilli()), random[:]) + "-" + staging + storage, nil
}

// timePart encodes 48 bits of milliseconds then 80 random bits (zero when
// random is nil) as 26 base32 characters.
func timePart(ms uint64, random []byte) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	copy(b[6:], random)
	return crockford.EncodeToString(b[:])
}

// IDFloor returns a string that sorts before every artifact id created at or
// after t and after every id created earlier.
func IDFloor(t time.Time) string { return timePart(uint64(t.UnixMilli()), nil) }

// ParseArtifactID splits an id into its region parts.
func ParseArtifactID(id string) (staging, storage string, ok bool) {
	m := artifactIDRE.FindStringSubmatch(id)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// IDTime returns the creation time encoded in an artifact id.
func IDTime(id string) (time.Time, bool) {
	if len(id) < 26 {
		return time.Time{}, false
	}
	b, err := crockford.DecodeString(id[:26])
	if err != nil || len(b) != 16 {
		return time.Time{}, false
	}
	ms := binary.BigEndian.Uint64(b[:8]) >> 16
	return time.UnixMilli(int64(ms)).UTC(), true
}

// ValidAccountID reports whether s is a valid account id.
func ValidAccountID(s string) bool { return accountIDRE.MatchString(s) }

// Ref is a parsed artifact resource name.
type Ref struct {
	Account, ID      string
	Staging, Storage string
}

// Name returns "accounts/{account}/artifacts/{id}".
func (r Ref) Name() string { return ArtifactName(r.Account, r.ID) }

// StagingKey is where r's ciphertext waits in its staging region's bucket.
func (r Ref) StagingKey() string { return StagingKey(r.Account, r.ID) }

// StoredKey is where r's ciphertext lives in its storage region's bucket.
func (r Ref) StoredKey() string { return StoredKey(r.Account, r.ID) }

// ArtifactName returns "accounts/{account}/artifacts/{id}".
func ArtifactName(account, id string) string { return "accounts/" + account + "/artifacts/" + id }

// StagingKey returns the staging object key of an artifact.
func StagingKey(account, id string) string { return StagingPrefix + account + "/" + id }

// StoredKey returns the storage object key of an artifact.
func StoredKey(account, id string) string { return StoredPrefix + account + "/" + id }

// ParseArtifactName parses "accounts/{account}/artifacts/{artifact}".
func ParseArtifactName(name string) (Ref, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "accounts" || parts[2] != "artifacts" || !ValidAccountID(parts[1]) {
		return Ref{}, false
	}
	return refOf(parts[1], parts[3])
}

// ParseStagingKey parses "staging/{account}/{id}", as the mover finds it.
func ParseStagingKey(key string) (Ref, bool) { return parseKeyUnder(StagingPrefix, key) }

// ParseStoredKey parses "artifacts/{account}/{id}", a stored object's key.
func ParseStoredKey(key string) (Ref, bool) { return parseKeyUnder(StoredPrefix, key) }

// parseKeyUnder parses "{prefix}{account}/{id}".
func parseKeyUnder(prefix, key string) (Ref, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return Ref{}, false
	}
	account, id, ok := strings.Cut(rest, "/")
	if !ok || !ValidAccountID(account) {
		return Ref{}, false
	}
	return refOf(account, id)
}

func refOf(account, id string) (Ref, bool) {
	st, sr, ok := ParseArtifactID(id)
	if !ok {
		return Ref{}, false
	}
	return Ref{Account: account, ID: id, Staging: st, Storage: sr}, true
}

// ParseAccountName parses "accounts/{account}".
func ParseAccountName(name string) (string, bool) {
	acct, ok := strings.CutPrefix(name, "accounts/")
	if !ok || !ValidAccountID(acct) {
		return "", false
	}
	return acct, true
}

// RefOf returns the Ref of artifact id in account, or false when either is
// malformed.
func RefOf(account, id string) (Ref, bool) {
	if !ValidAccountID(account) {
		return Ref{}, false
	}
	return refOf(account, id)
}

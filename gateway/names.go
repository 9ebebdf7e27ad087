package gateway

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Artifact ids are "<time-ordered id>-<staging region><storage region>", for
// example "06f3kq0bm1r4c5tkeg6zgq8y4c-usde". The first part sorts by creation
// time (48-bit milliseconds, then 80 random bits, in lowercase Crockford
// base32), so listings come out oldest first. The region suffix lets a read
// find the ciphertext in at most two lookups (staging, then storage) with no
// catalog, whatever the account's settings are by now.
var (
	artifactIDRE = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{26}-([a-z]{2})([a-z]{2})$`)
	crockford    = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
)

// newArtifactID returns a new id for an artifact staged in staging and kept in
// storage.
func newArtifactID(now time.Time, staging, storage string) (string, error) {
	var random [10]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", fmt.Errorf("gateway: random artifact id: %w", err)
	}
	id, _ := newArtifactIDFromBytes(uint64(now.UnixMilli()), random[:])
	return id + "-" + staging + storage, nil
}

// newArtifactIDFromBytes encodes the time-ordered part of an id: 48 bits of
// milliseconds then 80 random bits (zero when random is nil), as 26 base32
// characters.
func newArtifactIDFromBytes(ms uint64, random []byte) (string, error) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], ms<<16)
	copy(b[6:], random)
	return crockford.EncodeToString(b[:]), nil
}

// artifactRef is a parsed artifact resource name.
type artifactRef struct {
	Account, ID      string
	Staging, Storage string
}

func (r artifactRef) name() string { return artifactName(r.Account, r.ID) }

func (r artifactRef) stagingKey() string { return stagingKey(r.Account, r.ID) }

func (r artifactRef) storedKey() string { return storedKey(r.Account, r.ID) }

func artifactName(account, id string) string { return "accounts/" + account + "/artifacts/" + id }

// stagingKey is where an artifact's ciphertext waits in its staging region.
func stagingKey(account, id string) string { return "staging/" + account + "/" + id }

// storedKey is where an artifact's ciphertext lives in its storage region.
func storedKey(account, id string) string { return "artifacts/" + account + "/" + id }

// parseArtifactID splits an id into its region parts.
func parseArtifactID(id string) (staging, storage string, ok bool) {
	m := artifactIDRE.FindStringSubmatch(id)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// parseArtifactName parses "accounts/{account}/artifacts/{artifact}".
func parseArtifactName(name string) (artifactRef, bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "accounts" || parts[2] != "artifacts" || !validAccountID(parts[1]) {
		return artifactRef{}, false
	}
	st, sr, ok := parseArtifactID(parts[3])
	if !ok {
		return artifactRef{}, false
	}
	return artifactRef{Account: parts[1], ID: parts[3], Staging: st, Storage: sr}, true
}

// parseAccountName parses "accounts/{account}".
func parseAccountName(name string) (string, bool) {
	acct, ok := strings.CutPrefix(name, "accounts/")
	if !ok || !validAccountID(acct) {
		return "", false
	}
	return acct, true
}

var accountIDRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

func validAccountID(s string) bool { return accountIDRE.MatchString(s) }

// idTime returns the creation time encoded in an artifact id.
func idTime(id string) (time.Time, bool) {
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

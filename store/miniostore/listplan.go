package miniostore

import (
	"strings"
	"unicode/utf8"

	"github.com/sealgate/sealgate/store"
)

// listPrefix returns the prefix to send to the server for a listing of the
// keys that start with prefix, and false when no valid key can start with
// prefix. The returned prefix is prefix itself or a shorter one (cut after
// its last slash) when the last, partial segment is one that S3 servers
// such as MinIO refuse in a prefix ("." or "..", or a UTF-8 sequence cut
// short), though a valid key can start with it ("..x", "é"); the caller
// then filters the keys itself.
func listPrefix(prefix string) (string, bool) {
	if prefix == "" {
		return "", true
	}
	if len(prefix) > store.MaxKeyLen || strings.ContainsAny(prefix, "\x00\\") {
		return "", false
	}
	cut := strings.LastIndexByte(prefix, '/') + 1
	if cut > 0 {
		// Every segment before the last slash is a whole key segment.
		if err := store.ValidateKey(prefix[:cut-1]); err != nil {
			return "", false
		}
		for seg := range strings.SplitSeq(prefix[:cut-1], "/") {
			if s := strings.TrimSpace(seg); s == "." || s == ".." {
				return "", false // MinIO can store no such key
			}
		}
	}
	last := prefix[cut:]
	if strings.HasPrefix(last, store.TempPrefix) {
		return "", false
	}
	if s := strings.TrimSpace(last); s == "." || s == ".." || !utf8.ValidString(last) {
		return prefix[:cut], true
	}
	return prefix, true
}

// looserStart returns the start to list from for the keys that start with
// prefix and sort after startAfter, and false when no such key can exist.
// The start sorts at or before startAfter, is valid UTF-8 and is "" or
// starts with prefix, so the keys after it include every wanted key; the
// caller filters out the others.
func looserStart(prefix, startAfter string) (string, bool) {
	if startAfter < prefix {
		return "", true // every key with the prefix sorts after startAfter
	}
	if !strings.HasPrefix(startAfter, prefix) {
		return "", false // every key with the prefix sorts before startAfter
	}
	// Keys hold no NUL, so the keys after "k\x00..." are the keys after "k".
	after, _, _ := strings.Cut(startAfter, "\x00")
	// Servers refuse invalid UTF-8; a shorter valid start is looser.
	after = validUTF8Prefix(after)
	if !strings.HasPrefix(after, prefix) {
		return "", true // after is shorter than prefix, so before every key
	}
	return after, true
}

// listQuery is one listing request of a List call.
type listQuery struct {
	prefix, startAfter string
	// exact, when set, is a key to look up before the listing, since the
	// listing starts after it.
	exact string
}

// listPlan returns the listing requests that together give, in order, every
// valid key that starts with prefix and sorts after startAfter (and maybe
// others, which the caller filters out). It returns no request when no key
// can match.
//
// No request's start has a slash after the directory part of its prefix.
// MinIO counts the keys that sort between such a start's directory name and
// the start itself ("a/x-1" for the start "a/x/1" under "a/") against the
// request's max-keys and then drops them, ending the listing early; so when
// startAfter lies below the directory of prefix, the plan lists its own
// directory after it, then each directory above from just after the
// subdirectory it came from: for "a/x/1" under "a/", "a/x/" after "a/x/1",
// then the key "a/x0" and "a/" after "a/x0" ('0' follows '/').
func listPlan(prefix, startAfter string) []listQuery {
	serverPrefix, ok := listPrefix(prefix)
	if !ok {
		return nil
	}
	after, ok := looserStart(prefix, startAfter)
	if !ok {
		return nil
	}
	base := prefix[:strings.LastIndexByte(prefix, '/')+1]
	if !strings.Contains(after[min(len(base), len(after)):], "/") {
		return []listQuery{{prefix: serverPrefix, startAfter: after}}
	}
	segs := strings.Split(after[len(base):], "/")
	n := len(segs)
	var plan []listQuery
	if dir := base + strings.Join(segs[:n-1], "/") + "/"; validDir(dir) {
		plan = append(plan, listQuery{prefix: dir, startAfter: after})
	}
	for j := n - 2; j >= 0; j-- {
		// The directory base+segs[:j+1] is done; go on in its parent.
		parent, listed := base, serverPrefix
		if j > 0 {
			parent = base + strings.Join(segs[:j], "/") + "/"
			if !validDir(parent) {
				continue
			}
			listed = parent
		}
		next := parent + segs[j] + "0"
		plan = append(plan, listQuery{prefix: listed, startAfter: next, exact: next})
	}
	return plan
}

// validDir reports whether some valid key can start with dir, which ends in
// a slash, and the server accepts it as a prefix.
func validDir(dir string) bool {
	p, ok := listPrefix(dir)
	return ok && p == dir
}

// validUTF8Prefix returns s up to its first byte that is not part of a valid
// UTF-8 sequence.
func validUTF8Prefix(s string) string {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return s[:i]
			}
		}
	}
	return s
}

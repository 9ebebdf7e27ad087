package store

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateKeyAccepts(t *testing.T) {
	keys := []string{
		"a",
		"a/b/c",
		"accounts/demo/artifacts/0190f1a2-7c3e",
		".a",
		"..a",
		"a..",
		"a.sg-tmp",
		"x/.sg-tm",
		"ü/日本語/κλειδί",
		"a b/c\td",
		"a-b/a_b/a~b/a@b",
		strings.Repeat("x", MaxKeyLen),
		strings.Repeat("abcdefg/", MaxKeyLen/8-1) + "abcdefgh",
	}
	for _, key := range keys {
		if err := ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", key, err)
		}
	}
}

func TestValidateKeyRejects(t *testing.T) {
	keys := []string{
		"",
		"/",
		"/a",
		"a/",
		"a//b",
		".",
		"..",
		"./a",
		"a/.",
		"a/./b",
		"../a",
		"a/..",
		"a/../b",
		"a\\b",
		"\\",
		"a\x00b",
		"\x00",
		"\xff",
		"a/\xc3",
		".sg-tmp",
		".sg-tmp-123",
		"a/.sg-tmpfile",
		"a/.sg-tmp/b",
		strings.Repeat("x", MaxKeyLen+1),
		strings.Repeat("abcdefg/", MaxKeyLen/8) + "a",
	}
	for _, key := range keys {
		err := ValidateKey(key)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v, want an error wrapping ErrInvalidKey", key, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("ValidateKey(%q) error = %q, want a message starting with %q", key, err, "store: ")
		}
	}
}

func TestValidateKeyErrorHidesKey(t *testing.T) {
	const secret = "accounts/acme/ssn-123-45-6789/.."
	err := ValidateKey(secret)
	if err == nil {
		t.Fatalf("ValidateKey(%q) = nil, want an error", secret)
	}
	if strings.Contains(err.Error(), "6789") {
		t.Errorf("error = %q, want a message that does not echo the key", err)
	}
}

func TestSentinelMessages(t *testing.T) {
	for _, err := range []error{ErrNotFound, ErrUnavailable, ErrInvalidKey, ErrSizeMismatch} {
		if !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("error = %q, want a message starting with %q", err, "store: ")
		}
	}
}

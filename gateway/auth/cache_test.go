package auth

import (
	"errors"
	"testing"
	"time"
)

func TestVerifiedTokensAreCachedOnlyUntilExpiry(t *testing.T) {
	iss, v := newPair(t)
	now := time.Now()
	v.now = func() time.Time { return now }
	tok, err := iss.Issue(Principal{Subject: "svc", Account: "acme", Roles: []string{RoleReader}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(tok)
	if err != nil || p.Account != "acme" {
		t.Fatalf("first Verify: %+v, %v", p, err)
	}
	p.Roles[0] = RoleAdmin // a caller must not be able to edit the cached principal
	p2, err := v.Verify(tok)
	if err != nil || p2.Roles[0] != RoleReader {
		t.Fatalf("cached Verify: %+v, %v; want the reader role, untouched", p2, err)
	}
	// Past expiry (and past the leeway) the cache must not answer.
	now = now.Add(2 * time.Minute)
	if _, err := v.Verify(tok); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Verify after expiry: got %v, want ErrTokenExpired", err)
	}
	// A tampered token is never served from the cache of the original.
	if _, err := v.Verify(tok[:len(tok)-2] + "xx"); err == nil {
		t.Fatal("tampered token accepted")
	}
}

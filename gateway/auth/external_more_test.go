package auth

import (
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// countingTransport counts the requests made through it.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// The JWKS is fetched through the client given and again every Refresh.
func TestExternalJWKSUsesItsClientAndRefreshInterval(t *testing.T) {
	p := newIDP(t, "k1")
	url := p.serve(t)
	tr := &countingTransport{}
	e, err := NewExternal(ExternalOptions{Issuer: "https://idp.example", Audience: "sealgate", JWKSURL: url,
		Refresh: 100 * time.Millisecond, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	deadline := time.Now().Add(5 * time.Second)
	for p.fetches.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d fetches in 5 s with a 100 ms refresh", p.fetches.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if tr.n.Load() < 3 {
		t.Fatalf("the configured HTTP client made %d of the %d fetches", tr.n.Load(), p.fetches.Load())
	}
	e.Close()
	e.Close() // twice is fine
	time.Sleep(300 * time.Millisecond)
	after := p.fetches.Load()
	time.Sleep(300 * time.Millisecond)
	if p.fetches.Load() != after {
		t.Fatal("the key set is still refreshed after Close")
	}
}

// Close is safe on a file key set and on nil.
func TestExternalCloseWithoutRefresh(t *testing.T) {
	p := newIDP(t, "k1")
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, p.jwks(), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := NewExternal(ExternalOptions{Issuer: "https://idp.example", Audience: "sealgate", JWKSFile: path})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	var none *External
	none.Close()
}

// The cache keeps every verified token, not only the last one.
func TestCacheKeepsSeveralTokens(t *testing.T) {
	iss, v := newPair(t)
	var toks []string
	for _, sub := range []string{"a", "b", "c"} {
		tok, err := iss.Issue(Principal{Subject: sub, Account: "acme", Roles: []string{RoleReader}}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
	}
	// With the key gone, only the cache can answer.
	v.key = make([]byte, len(v.key))
	for i, tok := range toks {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("token %d is not cached: %v", i, err)
		}
	}
}

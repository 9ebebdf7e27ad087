package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// maxCachedTokens bounds the verified-token cache; when full it is emptied,
// which costs one signature check per token afterwards.
const maxCachedTokens = 4096

// verifiedCache remembers tokens whose signature and claims were checked, so
// that a client sending the same token on every call pays for one Ed25519
// verification, not one per call. An entry is used only until its token
// expires; tokens are keyed by SHA-256, so the cache holds no token text.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[[32]byte]cachedPrincipal
}

type cachedPrincipal struct {
	p   Principal
	exp time.Time
}

func (c *verifiedCache) get(token string, now time.Time) (*Principal, bool) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !now.Before(e.exp) {
		return nil, false
	}
	p := e.p
	p.Roles = append([]string(nil), e.p.Roles...)
	return &p, true
}

func (c *verifiedCache) put(token string, p *Principal, exp time.Time) {
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedTokens {
		c.entries = make(map[[32]byte]cachedPrincipal)
	}
	e := cachedPrincipal{p: *p, exp: exp}
	e.p.Roles = append([]string(nil), p.Roles...)
	c.entries[k] = e
}

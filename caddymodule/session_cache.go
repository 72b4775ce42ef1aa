package caddymodule

import (
	"sync"
)

// sessionCache remembers the sessions opened from exact cookie values,
// so a browser's repeated requests skip the HMAC check, decryption and
// decoding, which are most of the authenticated path's cost. A hit
// means these very bytes were verified before; expiry, revocation and
// the application's connections are still checked on every request.
// The cookie's name is part of what was verified (securecookie MACs it),
// so a hit must match the name too. A nil cache caches nothing.
type sessionCache struct {
	mu sync.RWMutex
	m  map[string]cachedSession // by cookie value
}

type cachedSession struct {
	name    string
	session *Session
}

// maxCachedSessions bounds the cache (about 1 KiB an entry).
const maxCachedSessions = 10_000

func newSessionCache() *sessionCache {
	return &sessionCache{m: make(map[string]cachedSession)}
}

func (c *sessionCache) get(name, value string) *Session {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e, ok := c.m[value]
	c.mu.RUnlock()
	if !ok || e.name != name {
		return nil
	}
	return e.session
}

func (c *sessionCache) put(name, value string, s *Session, nowUnix int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	makeRoom(c.m, maxCachedSessions, func(e cachedSession) bool { return e.session.ExpiresAt <= nowUnix })
	c.m[value] = cachedSession{name: name, session: s}
}

// makeRoom keeps a bounded cache under limit: once it is full, the
// expired entries go first and, if that frees too little, an arbitrary
// half (map order is random). A dropped entry only costs recomputing it.
func makeRoom[K comparable, V any](m map[K]V, limit int, expired func(V) bool) {
	if len(m) < limit {
		return
	}
	for k, v := range m {
		if expired(v) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < limit/2 {
			break
		}
		delete(m, k)
	}
}

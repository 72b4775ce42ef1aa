package caddymodule

import (
	"strings"
	"sync"
	"sync/atomic"
)

// sessionCache remembers the sessions opened from exact cookie values,
// so a browser's repeated requests skip the HMAC check, decryption and
// decoding, which are most of the authenticated path's cost. A hit
// means these very bytes were verified before; expiry and the
// application's connections are still checked on every request, the
// revocations and the user's status whenever either has changed since
// the entry's last check (sessions.admitted).
// The cookie's name is part of what was verified (securecookie MACs it),
// so a hit must match the name too. A nil cache caches nothing.
type sessionCache struct {
	// m maps a cookie value to its *cachedSession. A sync.Map, because
	// every authenticated request reads it from every CPU: its reads
	// take no lock, where a read lock's counter moved between the CPUs
	// on every request (BenchmarkSessionCacheParallel).
	m sync.Map
	// n counts the entries, for the bound; evicting serialises the
	// evictions.
	n        atomic.Int64
	evicting sync.Mutex
}

// cachedSession is one opened cookie: the session, and the outcome of
// its last check against the revocations and the user's status
// (sessions.admitted).
type cachedSession struct {
	name    string
	session *Session
	checked atomic.Pointer[sessionCheck]
}

// maxCachedSessions bounds the cache (about 1 KiB an entry).
const maxCachedSessions = 10_000

func newSessionCache() *sessionCache { return &sessionCache{} }

// entry returns the cache's entry for the cookie name=value, or nil.
func (c *sessionCache) entry(name, value string) *cachedSession {
	if c == nil {
		return nil
	}
	v, ok := c.m.Load(value)
	if !ok {
		return nil
	}
	if e := v.(*cachedSession); e.name == name {
		return e
	}
	return nil
}

// put caches s, opened from the cookie name=value, and returns its
// entry. A nil cache returns an entry of its own that nothing keeps.
func (c *sessionCache) put(name, value string, s *Session, nowUnix int64) *cachedSession {
	e := &cachedSession{name: name, session: s}
	if c == nil {
		return e
	}
	if c.n.Load() >= maxCachedSessions {
		c.makeRoom(nowUnix)
	}
	// The key is a copy: value is a slice of the request's Cookie line,
	// which carries the site's other cookies too and may be as long as
	// net/http's header limit (1 MB) allows. Kept as it came, every entry
	// would hold its whole line, and anyone able to log in could fill
	// memory with long lines around valid sessions.
	if _, replaced := c.m.Swap(strings.Clone(value), e); !replaced {
		c.n.Add(1)
	}
	return e
}

// makeRoom is the generic makeRoom below for the session cache: once it
// is full, the expired entries go first and, if that frees too little,
// an arbitrary half.
func (c *sessionCache) makeRoom(nowUnix int64) {
	c.evicting.Lock()
	defer c.evicting.Unlock()
	if c.n.Load() < maxCachedSessions {
		return // another put made room meanwhile
	}
	drop := func(expiredOnly bool) {
		c.m.Range(func(k, v any) bool {
			if !expiredOnly && c.n.Load() < maxCachedSessions/2 {
				return false
			}
			if (!expiredOnly || v.(*cachedSession).session.ExpiresAt <= nowUnix) && c.m.CompareAndDelete(k, v) {
				c.n.Add(-1)
			}
			return true
		})
	}
	drop(true)
	if c.n.Load() >= maxCachedSessions {
		drop(false)
	}
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

package caddymodule

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

// A cached session is still checked for expiry, revocation and the
// application's connections on every request.
func TestCachedSessionStillChecked(t *testing.T) {
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs(), revoked: &revocations{}, cache: newSessionCache()}}, conns: []*Connection{{name: "c"}}}
	now := time.Now()
	s := &Session{ID: "sid", Username: "u", Connection: "c", ExpiresAt: now.Add(time.Hour).Unix()}
	value, err := sealForTest(h, s)
	if err != nil {
		t.Fatal(err)
	}
	req := func() *http.Request {
		r, _ := http.NewRequest("GET", "http://localhost/", nil)
		r.Header.Set("Cookie", "jitauth_session="+value)
		return r
	}
	if h.session(req()) == nil || h.app.sessions.cache.get("jitauth_session", value) == nil {
		t.Fatal("valid session not accepted and cached")
	}

	h.app.sessions.cache.get("jitauth_session", value).ExpiresAt = now.Add(-time.Second).Unix()
	if h.session(req()) != nil {
		t.Fatal("expired cached session accepted")
	}
	h.app.sessions.cache.get("jitauth_session", value).ExpiresAt = now.Add(time.Hour).Unix()

	h.conns = []*Connection{{name: "other"}}
	if h.session(req()) != nil {
		t.Fatal("cached session accepted by an application that does not offer its connection")
	}
	h.conns = []*Connection{{name: "c"}}

	// The name is part of what was verified: the same value under
	// another cookie name is not a hit.
	if h.app.sessions.cache.get(hostPrefix+"jitauth_session", value) != nil {
		t.Fatal("cache hit under another cookie name")
	}

	h.app.sessions.revoked.add("sid", now.Add(time.Hour))
	if h.session(req()) != nil {
		t.Fatal("revoked cached session accepted")
	}
}

func TestSessionCacheIsBounded(t *testing.T) {
	c := newSessionCache()
	now := time.Now().Unix()
	for i := 0; i < maxCachedSessions*3; i++ {
		c.put("n", strconv.Itoa(i), &Session{ExpiresAt: now + 3600}, now)
	}
	if n := len(c.m); n > maxCachedSessions {
		t.Fatalf("cache holds %d sessions, bound is %d", n, maxCachedSessions)
	}
	var nilCache *sessionCache
	nilCache.put("n", "x", &Session{}, now)
	if nilCache.get("n", "x") != nil {
		t.Fatal("nil cache returned a session")
	}
}

func sealForTest(h *Handler, s *Session) (string, error) {
	return securecookie.EncodeMulti(cookieName(sessionCookieBase, false), s, h.app.sessions.seal...)
}

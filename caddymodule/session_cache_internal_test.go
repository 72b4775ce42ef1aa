package caddymodule

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/gorilla/securecookie"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// get returns the session cached for the cookie name=value, or nil.
func (c *sessionCache) get(name, value string) *Session {
	if e := c.entry(name, value); e != nil {
		return e.session
	}
	return nil
}

// len is the number of cached sessions.
func (c *sessionCache) len() int { return int(c.n.Load()) }

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

// A cached session keeps its cookie value, not the request's Cookie line
// the value was read from: the line also carries the site's other
// cookies and can be up to net/http's header limit long.
func TestSessionCacheKeepsNoCookieLine(t *testing.T) {
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs(), revoked: &revocations{}, cache: newSessionCache()}}, conns: []*Connection{{name: "c"}}}
	s := &Session{ID: "sid", Username: "u", Connection: "c", ExpiresAt: time.Now().Add(time.Hour).Unix()}
	value, err := sealForTest(h, s)
	if err != nil {
		t.Fatal(err)
	}
	line := "jitauth_session=" + value + "; padding=" + strings.Repeat("p", 64<<10)
	r, _ := http.NewRequest("GET", "http://localhost/", nil)
	r.Header.Set("Cookie", line)
	if h.session(r) == nil {
		t.Fatal("valid session not accepted")
	}
	start := uintptr(unsafe.Pointer(unsafe.StringData(line)))
	end := start + uintptr(len(line))
	keys := 0
	h.app.sessions.cache.m.Range(func(k, _ any) bool {
		keys++
		if p := uintptr(unsafe.Pointer(unsafe.StringData(k.(string)))); p >= start && p < end {
			t.Errorf("the cache key points into the request's %d-byte Cookie line", len(line))
		}
		return true
	})
	if keys != 1 {
		t.Fatalf("%d cache entries, want 1", keys)
	}
}

func TestSessionCacheIsBounded(t *testing.T) {
	c := newSessionCache()
	now := time.Now().Unix()
	for i := 0; i < maxCachedSessions*3; i++ {
		c.put("n", strconv.Itoa(i), &Session{ExpiresAt: now + 3600}, now)
	}
	if n := c.len(); n > maxCachedSessions {
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

// A user cutoff refuses that user's sessions issued at or before its
// second, and nothing else; a later cutoff wins, an earlier one does
// not undo it; expiry forgets it. A malformed cutoff ID refuses nothing.
func TestUserCutoffs(t *testing.T) {
	var r revocations
	at := time.Unix(1_000_000, 0)
	r.add(userCutoffID("u1", at), at.Add(time.Hour))
	for _, c := range []struct {
		s    Session
		want bool
	}{
		{Session{ID: "a", UserID: "u1", IssuedAt: at.Unix() - 5}, true},
		{Session{ID: "b", UserID: "u1", IssuedAt: at.Unix()}, true},
		{Session{ID: "c", UserID: "u1", IssuedAt: at.Unix() + 1}, false},
		{Session{ID: "d", UserID: "u2", IssuedAt: at.Unix() - 5}, false},
		{Session{ID: "e", IssuedAt: at.Unix() - 5}, false},
	} {
		if got := r.refuses(&c.s); got != c.want {
			t.Errorf("%+v: refused %v, want %v", c.s, got, c.want)
		}
	}
	r.add(userCutoffID("u1", at.Add(-time.Minute)), at.Add(time.Hour))
	if !r.refuses(&Session{ID: "f", UserID: "u1", IssuedAt: at.Unix()}) {
		t.Error("an earlier cutoff undid a later one")
	}
	r.add(userCutoffID("u1", at.Add(10*time.Second)), at.Add(2*time.Hour))
	if !r.refuses(&Session{ID: "g", UserID: "u1", IssuedAt: at.Unix() + 5}) {
		t.Error("a later cutoff did not move the cut")
	}
	for _, bad := range []string{"user:", "user:x:u3", "user:12", "user:12:"} {
		r.add(bad, at.Add(time.Hour))
	}
	if r.refuses(&Session{ID: "h", UserID: "u3", IssuedAt: 1}) || len(r.revoked) != 0 {
		t.Errorf("a malformed cutoff refused something: %v", r.revoked)
	}
	r.prune(at.Add(3 * time.Hour))
	if r.refuses(&Session{ID: "i", UserID: "u1", IssuedAt: at.Unix()}) {
		t.Error("an expired cutoff still refuses")
	}
}

// FuzzRevocationID: whatever ID the store hands back, adding it never
// panics, and an ID that is not a cutoff refuses exactly that session.
func FuzzRevocationID(f *testing.F) {
	for _, s := range []string{"abc", "user:1:u", "user:-5:x", "user:99999999999999999999:u", "user::", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		var r revocations
		r.add(id, time.Now().Add(time.Hour))
		if !strings.HasPrefix(id, userCutoffPrefix) && !r.refuses(&Session{ID: id}) {
			t.Fatalf("session %q revoked but not refused", id)
		}
	})
}

// A profile read after a session's second speaks for it; one read before
// (older than the login that made the session) never takes it back; an
// unchanged user costs no copy.
func TestLiveProfileOnlyMovesForward(t *testing.T) {
	issued := time.Unix(2_000_000, 0)
	s := &Session{ID: "s", UserID: "u", Name: "New", Roles: []string{"ops"}, IssuedAt: issued.Unix()}
	stale := &liveProfile{readAt: issued.Add(500 * time.Millisecond).UnixNano(), name: "Old"}
	if got := stale.current(s); got != s {
		t.Errorf("a profile read in the session's own second changed it: %+v", got)
	}
	fresh := &liveProfile{readAt: issued.Add(1500 * time.Millisecond).UnixNano(), name: "Newer", roles: []string{"auditor"}}
	if got := fresh.current(s); got == s || got.Name != "Newer" || got.Roles[0] != "auditor" || s.Name != "New" {
		t.Errorf("a later profile: %+v (session now %+v)", got, s)
	}
	same := &liveProfile{readAt: issued.Add(time.Hour).UnixNano(), name: "New", roles: []string{"ops"}}
	if got := same.current(s); got != s {
		t.Error("an unchanged user copied the session")
	}
	if got := (*liveProfile)(nil).current(s); got != s {
		t.Error("no profile changed the session")
	}
}

// The outcome of a cached session's check is reused only until a
// revocation or a user status changes: every kind of change reaches the
// next request, and a poll that brings known revocations again, or a
// request, changes nothing.
func TestSessionCheckFollowsChanges(t *testing.T) {
	status := newUserStatus()
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs(), revoked: &revocations{}, status: status, cache: newSessionCache()}},
		conns: []*Connection{{name: "c"}}}
	now := time.Now()
	s := &Session{ID: "sid", UserID: "u1", Username: "alice", Name: "Alice", Connection: "c",
		IssuedAt: now.Add(-time.Minute).Unix(), ExpiresAt: now.Add(time.Hour).Unix()}
	value, err := sealForTest(h, s)
	if err != nil {
		t.Fatal(err)
	}
	load := func() *Session {
		r, _ := http.NewRequest("GET", "http://localhost/", nil)
		r.Header.Set("Cookie", "jitauth_session="+value)
		return h.session(r)
	}
	if load() == nil || load() == nil {
		t.Fatal("valid session not accepted")
	}
	gens := func() [2]uint64 { return [2]uint64{h.app.sessions.revoked.generation(), status.generation()} }
	before := gens()
	if load(); gens() != before {
		t.Fatal("a request changed a generation")
	}

	status.set("u1", true)
	if load() != nil {
		t.Fatal("session of a user disabled here still accepted")
	}
	status.set("u1", false)
	if load() == nil {
		t.Fatal("session of a user enabled again refused")
	}

	status.update("u1", &provisioner.User{ID: "u1", Username: "alice", Name: "Alice Renamed", Status: provisioner.StatusActive}, zap.NewNop())
	if got := load(); got == nil || got.Name != "Alice Renamed" || got.identity == nil || got.identity.name != "Alice Renamed" {
		t.Fatalf("profile change not shown: %+v", got)
	}
	status.update("u1", nil, zap.NewNop()) // deleted in the store
	if load() != nil {
		t.Fatal("session of a deleted user still accepted")
	}
	status.update("u1", &provisioner.User{ID: "u1", Username: "alice", Name: "Alice", Status: provisioner.StatusActive}, zap.NewNop())
	if load() == nil {
		t.Fatal("session of a user back in the store refused")
	}

	// Forgotten by the refresh (not seen for longer than it keeps
	// users): the next request registers the user again, where the
	// refresh looks.
	status.users["u1"].lastSeen.Store(now.Add(-time.Hour).Unix())
	status.refresh(t.Context(), nil, time.Minute, zap.NewNop()) // no user left to read
	if _, ok := status.users["u1"]; ok {
		t.Fatal("refresh kept a user not seen for an hour")
	}
	if load() == nil {
		t.Fatal("session refused after its user was forgotten")
	}
	if _, ok := status.users["u1"]; !ok {
		t.Fatal("a request after the refresh forgot the user did not register it again")
	}

	h.app.sessions.revoked.add(userCutoffID("u1", now), now.Add(time.Hour))
	if load() != nil {
		t.Fatal("session accepted after its user signed out everywhere")
	}
	before = gens()
	h.app.sessions.revoked.add(userCutoffID("u1", now), now.Add(time.Hour))
	h.app.sessions.revoked.add("other", now.Add(time.Hour))
	after := gens()
	h.app.sessions.revoked.add("other", now.Add(time.Hour))
	if gens() != after || after[0] != before[0]+1 {
		t.Fatalf("generations %v → %v → %v: a revocation known already counted as a change, or a new one did not", before, after, gens())
	}
	if load() != nil {
		t.Fatal("session accepted after an unrelated revocation")
	}

	// A used login state or logout token is recorded as a revocation but
	// ends no session: every login adds one, so it must not make the
	// cached sessions be checked again.
	before = gens()
	for _, id := range []string{spentID("a login state"), spentID(logoutTokenUse("corp", "jti-1"))} {
		h.app.sessions.revoked.add(id, now.Add(time.Minute))
		if !h.app.sessions.revoked.has(id) {
			t.Fatalf("%s not recorded", id)
		}
	}
	h.app.sessions.revoked.prune(now.Add(2 * time.Minute))
	if gens() != before {
		t.Fatalf("generations %v → %v: a spent ID counted as a change to the sessions", before, gens())
	}
	if h.app.sessions.revoked.has(spentID("a login state")) {
		t.Fatal("a spent ID outlived its expiry")
	}
}

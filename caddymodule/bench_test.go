package caddymodule

// Benchmarks of the authenticated request path, and a test that this path
// never reaches the user store. Run with
//
//	go test -run '^$' -bench . -benchmem ./caddymodule/
//
// The end-to-end comparison with a bare reverse_proxy is bench/run.sh.

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/gorilla/securecookie"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/assertion"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// benchSession is a session as a real login through a JIT connection
// leaves it: a provisioned user with a few groups.
func benchSession(now time.Time) *Session {
	return &Session{
		ID:         newSessionID(),
		UserID:     "0b8f5c3e-6a1d-4c52-9e0a-3f1b2d4c5e6f",
		Username:   "alice@example.com",
		Email:      "alice@example.com",
		Name:       "Alice Liddell",
		Groups:     []string{"staff", "wonderland", "engineering"},
		Connection: "corp",
		Subject:    "248289761001",
		IssuedAt:   now.Unix(),
		ExpiresAt:  now.Add(defaultSessionLifetime).Unix(),
	}
}

// benchHandler is a provisioned Handler with the default header rules,
// production-sized cookie keys (64-byte HMAC, AES-256) and one JIT
// connection, built directly instead of through Caddy.
func benchHandler(store provisioner.Store) *Handler {
	keys := []rawKeyPair{{hash: randomBytes(64), block: randomBytes(32)}}
	app := &App{
		SessionLifetime: caddy.Duration(defaultSessionLifetime),
		store:           store,
		provisioner:     &provisioner.Provisioner{Store: store},
		sessions: &sessions{seal: newCodecs(keys, int(defaultSessionLifetime/time.Second)), cache: newSessionCache(),
			revoked: &revocations{}, status: newUserStatus(), used: &usedStates{}},
	}
	conn := &Connection{name: "corp", JIT: &JITConfig{Enabled: true}}
	app.Connections = map[string]*Connection{"corp": conn}
	h := &Handler{app: app, conns: []*Connection{conn}, PathPrefix: defaultPathPrefix}
	h.headers, h.stripKeys = buildHeaderRules(nil)
	// As Provision leaves a one-handler configuration (the default
	// assertion header is always stripped).
	app.identityKeys, app.handlers = mergeKeys(h.stripKeys, []string{headerKey(defaultAssertionHeader)}), 1
	return h
}

// sealSession returns the session cookie value for s, sealed with h's keys.
func sealSession(tb testing.TB, h *Handler, s *Session) string {
	tb.Helper()
	v, err := securecookie.EncodeMulti(sessionCookieBase, s, h.app.sessions.seal...)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// browserHeaders is what a browser sends on a top-level navigation to an
// app on localhost, minus the cookie: eleven headers.
func browserHeaders() http.Header {
	return http.Header{
		"Accept":                    {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"},
		"Accept-Encoding":           {"gzip, deflate, br, zstd"},
		"Accept-Language":           {"en-GB,en;q=0.9"},
		"Cache-Control":             {"max-age=0"},
		"Connection":                {"keep-alive"},
		"Sec-Fetch-Dest":            {"document"},
		"Sec-Fetch-Mode":            {"navigate"},
		"Sec-Fetch-Site":            {"same-origin"},
		"Sec-Fetch-User":            {"?1"},
		"Upgrade-Insecure-Requests": {"1"},
		"User-Agent":                {"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
	}
}

// authedRequest is a browser navigation carrying a valid session cookie
// (twelve headers), with a Caddy replacer in its context as Caddy's
// server puts one there.
func authedRequest(tb testing.TB, h *Handler) (*http.Request, *caddy.Replacer) {
	tb.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://localhost/reports/q3?year=2026", nil)
	r.Header = browserHeaders()
	r.Header.Set("Cookie", sessionCookieBase+"="+sealSession(tb, h, benchSession(time.Now())))
	repl := caddy.NewReplacer()
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)), repl
}

// minimalRequest is bench/run.sh's default request: the session cookie
// and Accept only, to a loopback host with a port (plain HTTP, as the
// bench runs).
func minimalRequest(tb testing.TB, h *Handler) *http.Request {
	tb.Helper()
	r, _ := authedRequest(tb, h)
	r.Host = "127.0.0.1:8080"
	r.Header = http.Header{"Accept": {"text/html"}, "Cookie": {r.Header.Get("Cookie")}}
	return r
}

// identityHeaders are the headers setIdentity adds with the default rules.
var identityHeaders = []string{"Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups"}

// resetIdentity removes what setIdentity added, so that the next
// iteration strips what a fresh request would carry (no Remote-*), not
// the previous iteration's output. Map deletes do not allocate.
func resetIdentity(r *http.Request) {
	for _, k := range identityHeaders {
		delete(r.Header, k)
	}
}

// cookieReset puts a request's Cookie lines back as they were before the
// handler took its own cookies off them, without allocating.
type cookieReset struct{ orig, buf []string }

func newCookieReset(r *http.Request) *cookieReset {
	return &cookieReset{orig: r.Header["Cookie"]}
}

func (c *cookieReset) reset(r *http.Request) {
	c.buf = append(c.buf[:0], c.orig...)
	r.Header["Cookie"] = c.buf
}

// requestRing hands out shallow copies of one request (same headers),
// each with the context and replacer Caddy's server gives a request
// (caddyhttp.PrepareRequest: the request variables, the replacer with
// its HTTP provider). Reusing one replacer would make every iteration
// pay for a provider list grown by all the iterations before it, which
// no request does. The copies are made in batches with the timer
// stopped.
type requestRing struct {
	base *http.Request
	reqs []*http.Request
	next int
}

func newRequestRing(r *http.Request) *requestRing {
	return &requestRing{base: r, reqs: make([]*http.Request, 4096), next: 4096}
}

func (q *requestRing) get(b *testing.B) *http.Request {
	if q.next == len(q.reqs) {
		b.StopTimer()
		for i := range q.reqs {
			q.reqs[i] = prepared(q.base)
		}
		q.next = 0
		b.StartTimer()
	}
	r := q.reqs[q.next]
	q.reqs[q.next] = nil
	q.next++
	return r
}

// prepared is a shallow copy of r as Caddy's server hands it to the
// first handler: with the request context and a new replacer.
func prepared(r *http.Request) *http.Request {
	return caddyhttp.PrepareRequest(r, caddy.NewReplacer(), &discardWriter{h: http.Header{}}, nil)
}

// appCookies is a Cookie line as a browser sends it to an app that sets
// cookies of its own: the module's session cookie in the middle.
func appCookies(session string) string {
	return "_ga=GA1.1.1234567890.1700000000; theme=dark; " + sessionCookieBase + "=" + session + "; csrftoken=Zm9vYmFyYmF6"
}

var noopNext = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// discardWriter is a ResponseWriter that does nothing, so the benchmarks
// measure the handler and not a recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkSession: reading and opening the sealed session cookie
// (cookie parsing, HMAC check, AES-CTR decrypt, JSON decode, revocation
// and connection checks).
func BenchmarkSession(b *testing.B) {
	h := benchHandler(nil)
	r, _ := authedRequest(b, h)
	if h.session(r) == nil {
		b.Fatal("no session from a valid cookie")
	}
	b.ReportAllocs()
	for b.Loop() {
		if h.session(r) == nil {
			b.Fatal("session lost")
		}
	}
}

// BenchmarkStripIdentityHeaders: removing client copies of the identity
// headers from a browser's header set.
func BenchmarkStripIdentityHeaders(b *testing.B) {
	_, keys := buildHeaderRules(nil)
	b.Run("clean-12", func(b *testing.B) {
		// The common case: nothing to strip.
		hdr := browserHeaders()
		hdr.Set("Cookie", "jitauth_session=x")
		b.ReportAllocs()
		for b.Loop() {
			stripIdentityHeaders(hdr, keys)
		}
	})
	b.Run("spoofed-12", func(b *testing.B) {
		// Eleven browser headers and a spoofed Remote_User; the loop puts
		// the spoofed header back each time (one map insert).
		hdr := browserHeaders()
		spoof := []string{"admin"}
		b.ReportAllocs()
		for b.Loop() {
			hdr["Remote_User"] = spoof
			stripIdentityHeaders(hdr, keys)
		}
		if _, ok := hdr["Remote_User"]; ok {
			b.Fatal("spoofed header survived")
		}
	})
}

// BenchmarkSetIdentity: the {http.auth.user.*} placeholders and the
// default identity headers.
func BenchmarkSetIdentity(b *testing.B) {
	h := benchHandler(nil)
	s := benchSession(time.Now())
	b.Run("warm-replacer", func(b *testing.B) {
		// One replacer for every iteration: its map already has the keys.
		r, repl := authedRequest(b, h)
		b.ReportAllocs()
		for b.Loop() {
			h.setIdentity(r, repl, s)
		}
	})
	b.Run("fresh-replacer", func(b *testing.B) {
		// A new replacer per iteration, as per request in Caddy; this
		// includes caddy.NewReplacer itself (see BenchmarkNewReplacer).
		r, _ := authedRequest(b, h)
		b.ReportAllocs()
		for b.Loop() {
			resetIdentity(r)
			h.setIdentity(r, caddy.NewReplacer(), s)
		}
	})
	b.Run("custom-template-header", func(b *testing.B) {
		// An extra header built from a placeholder template.
		h := benchHandler(nil)
		h.headers, h.stripKeys = buildHeaderRules(map[string]string{"X-Auth-Request-User": "{http.auth.user.local_id}@{http.auth.user.connection}"})
		r, repl := authedRequest(b, h)
		b.ReportAllocs()
		for b.Loop() {
			h.setIdentity(r, repl, s)
		}
	})
}

// BenchmarkSessionJSON isolates the JSON step of opening the cookie, the
// largest cost of the authenticated path, and what a different serializer
// would save: securecookie's JSONEncoder (a json.Decoder per call) against
// json.Unmarshal on the same bytes.
func BenchmarkSessionJSON(b *testing.B) {
	payload, err := json.Marshal(benchSession(time.Now()))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("securecookie.JSONEncoder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s Session
			if err := (securecookie.JSONEncoder{}).Deserialize(payload, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s Session
			if err := json.Unmarshal(payload, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkNewReplacer is the baseline to subtract from the fresh-replacer
// variants: Caddy pays it per request whether or not jit_auth runs.
func BenchmarkNewReplacer(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = caddy.NewReplacer()
	}
}

// serveRepeatedly runs h on r in every iteration as on a request of its
// own: the identity headers of the last iteration removed, the Cookie
// line put back as it came, a replacer of its own (requestRing).
func serveRepeatedly(b *testing.B, h *Handler, w http.ResponseWriter, r *http.Request) {
	cookies := newCookieReset(r)
	reqs := newRequestRing(r)
	b.ReportAllocs()
	for b.Loop() {
		resetIdentity(r)
		cookies.reset(r)
		if err := h.ServeHTTP(w, reqs.get(b), noopNext); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeHTTP: the whole handler for an authenticated browser
// navigation with a no-op next handler.
func BenchmarkServeHTTP(b *testing.B) {
	h := benchHandler(nil)
	w := &discardWriter{h: http.Header{}}
	b.Run("warm-replacer", func(b *testing.B) {
		r, _ := authedRequest(b, h)
		serveRepeatedly(b, h, w, r)
		if r.Header.Get("Remote-User") != "alice@example.com" {
			b.Fatalf("not authenticated: %v", r.Header)
		}
	})
	b.Run("warm-replacer-minimal", func(b *testing.B) {
		r := minimalRequest(b, h)
		serveRepeatedly(b, h, w, r)
		if r.Header.Get("Remote-User") != "alice@example.com" || r.Header.Get("Cookie") != "" {
			b.Fatalf("not authenticated, or the cookie went on: %v", r.Header)
		}
	})
	b.Run("warm-replacer-changed-profile", func(b *testing.B) {
		// The user's record changed after the session was issued (an
		// administrator's edit, or a login in another browser): the
		// session shows the stored profile. That copy and what it
		// forwards are made once per change, not per request.
		hc := benchHandler(nil)
		s := benchSession(time.Now().Add(-time.Minute))
		r, _ := authedRequest(b, hc)
		r.Header.Set("Cookie", sessionCookieBase+"="+sealSession(b, hc, s))
		hc.app.sessions.status.set(s.UserID, false) // the user as a first request registers it
		hc.app.sessions.status.update(s.UserID, &provisioner.User{ID: s.UserID, Username: s.Username, Email: s.Email,
			Name: "Alice Pleasance Liddell", Groups: s.Groups, Status: provisioner.StatusActive}, zap.NewNop())
		serveRepeatedly(b, hc, w, r)
		if r.Header.Get("Remote-Name") != "Alice Pleasance Liddell" {
			b.Fatalf("stored profile not shown: %v", r.Header)
		}
	})
	b.Run("warm-replacer-app-cookies", func(b *testing.B) {
		// The session cookie between cookies of the app's own: taking it
		// out of the middle of the line costs one copy of the line.
		r, _ := authedRequest(b, h)
		r.Header.Set("Cookie", appCookies(sealSession(b, h, benchSession(time.Now()))))
		serveRepeatedly(b, h, w, r)
		if r.Header.Get("Remote-User") != "alice@example.com" {
			b.Fatalf("not authenticated: %v", r.Header)
		}
	})
	b.Run("warm-replacer-assertion", func(b *testing.B) {
		// With a signed assertion: signed at the first request of the
		// session, then taken from the signer's cache.
		ha := benchHandler(nil)
		keys := newAssertionKeys(nil, defaultAssertionKeyRotation, nil)
		ha.assertion = newAssertionSigner(&AssertionConfig{}, keys, nil)
		ring, _, err := assertion.Rotate(nil, assertion.ES256, time.Now(), defaultAssertionKeyRotation, defaultAssertionLifetime)
		if err != nil {
			b.Fatal(err)
		}
		keys.ring(assertion.ES256).Store(ring)
		r, _ := authedRequest(b, ha)
		serveRepeatedly(b, ha, w, r)
		if r.Header.Get("Jit-Assertion") == "" {
			b.Fatalf("no assertion: %v", r.Header)
		}
	})
	b.Run("sign-assertion", func(b *testing.B) {
		// What each new session (or each half lifetime) costs once.
		ring, _, _ := assertion.Rotate(nil, assertion.ES256, time.Now(), defaultAssertionKeyRotation, defaultAssertionLifetime)
		key := ring.Signing(time.Now())
		c := assertion.Claims{Issuer: "https://wiki.example.com", Audience: "https://wiki.example.com", Subject: "0b8f5c3e-6a1d-4c52-9e0a-3f1b2d4c5e6f",
			Username: "alice@example.com", Email: "alice@example.com", Groups: []string{"staff", "wonderland"}, Connection: "corp"}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := key.Sign(c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fresh-replacer", func(b *testing.B) {
		// A new replacer and context per iteration, as Caddy's server
		// makes per request (includes caddyhttp.PrepareRequest).
		r, _ := authedRequest(b, h)
		cookies := newCookieReset(r)
		b.ReportAllocs()
		for b.Loop() {
			resetIdentity(r)
			cookies.reset(r)
			if err := h.ServeHTTP(w, prepared(r), noopNext); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkServeHTTPCold: the handler as a request under load meets it.
// Between two requests a core runs the upstream, the load generator, the
// kernel and other requests, so the handler's own data (configuration,
// session cache, the session, revocations, user statuses) has left the
// core's caches, while the request the server has just read is in them.
// Each iteration therefore first writes over a buffer larger than a
// core's L2 cache, then builds the request's copy, context and replacer
// as Caddy's server does and reads its headers, and only then times the
// handler. The figure is "handler-ns/op"; ns/op includes the eviction.
// bench/run.sh's CPU per request follows this figure, where the warm
// benchmarks above stay at a third of it.
func BenchmarkServeHTTPCold(b *testing.B) {
	h := benchHandler(nil)
	w := &discardWriter{h: http.Header{}}
	evict := make([]byte, 8<<20)
	run := func(b *testing.B, r *http.Request) {
		cookies := newCookieReset(r)
		var handler time.Duration
		for b.Loop() {
			resetIdentity(r)
			cookies.reset(r)
			for i := 0; i < len(evict); i += 64 {
				evict[i]++
			}
			rr := prepared(r)
			n := 0
			for k, vs := range rr.Header {
				n += len(k)
				for _, v := range vs {
					n += strings.Count(v, ";")
				}
			}
			start := time.Now()
			if err := h.ServeHTTP(w, rr, noopNext); err != nil {
				b.Fatal(err)
			}
			handler += time.Since(start)
			if n == 0 {
				b.Fatal("no headers")
			}
		}
		b.ReportMetric(float64(handler.Nanoseconds())/float64(b.N), "handler-ns/op")
		if r.Header.Get("Remote-User") != "alice@example.com" || r.Header.Get("Cookie") != "" {
			b.Fatalf("not authenticated, or the cookie went on: %v", r.Header)
		}
	}
	b.Run("minimal", func(b *testing.B) {
		run(b, minimalRequest(b, h))
	})
	b.Run("browser", func(b *testing.B) {
		r, _ := authedRequest(b, h)
		run(b, r)
	})
}

// BenchmarkSessionCacheParallel: the session cache's lookup on every
// CPU at once, as every authenticated request makes it. A read lock
// here cost about 100 ns a lookup on two CPUs, its counter moving
// between them; sync.Map's reads take no lock.
func BenchmarkSessionCacheParallel(b *testing.B) {
	c := newSessionCache()
	h := benchHandler(nil)
	value := sealSession(b, h, benchSession(time.Now()))
	c.put(sessionCookieBase, value, benchSession(time.Now()), time.Now().Unix())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		v := strings.Clone(value) // a request's own copy, as net/http reads it
		for pb.Next() {
			if c.entry(sessionCookieBase, v) == nil {
				b.Fatal("cached session not found")
			}
		}
	})
}

// BenchmarkServeHTTPParallel runs the handler on every P, sharing one
// Handler (and so the session cache and the revocation set) as Caddy
// does. Each iteration first gives the request a new context and
// replacer as Caddy's server does (prepared), so the figure includes
// that setup: compare it with BenchmarkServeHTTP/fresh-replacer.
func BenchmarkServeHTTPParallel(b *testing.B) {
	h := benchHandler(nil)
	cookie := sessionCookieBase + "=" + sealSession(b, h, benchSession(time.Now()))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &discardWriter{h: http.Header{}}
		r := httptest.NewRequest(http.MethodGet, "http://localhost/reports/q3?year=2026", nil)
		r.Header = browserHeaders()
		r.Header.Set("Cookie", cookie)
		cookies := newCookieReset(r)
		served := false
		for pb.Next() {
			resetIdentity(r)
			cookies.reset(r)
			if err := h.ServeHTTP(w, prepared(r), noopNext); err != nil {
				b.Fatal(err)
			}
			served = true
		}
		if served && r.Header.Get("Remote-User") != "alice@example.com" {
			b.Fatalf("not authenticated: %v", r.Header)
		}
	})
}

// countingStore counts every Store call. The embedded Store is left nil on
// purpose: a method added to provisioner.Store later and not counted here
// panics when called instead of passing through unnoticed.
type countingStore struct {
	provisioner.Store // nil: see above
	inner             provisioner.Store
	calls             atomic.Int64
}

func (c *countingStore) count() { c.calls.Add(1) }

func (c *countingStore) UserByIdentity(ctx context.Context, key provisioner.IdentityKey) (*provisioner.User, error) {
	c.count()
	return c.inner.UserByIdentity(ctx, key)
}

func (c *countingStore) User(ctx context.Context, id string) (*provisioner.User, error) {
	c.count()
	return c.inner.User(ctx, id)
}

func (c *countingStore) UserByUsername(ctx context.Context, username string) (*provisioner.User, error) {
	c.count()
	return c.inner.UserByUsername(ctx, username)
}

func (c *countingStore) CreateUser(ctx context.Context, u *provisioner.User, id provisioner.Identity) (*provisioner.User, error) {
	c.count()
	return c.inner.CreateUser(ctx, u, id)
}

func (c *countingStore) RecordLogin(ctx context.Context, key provisioner.IdentityKey, rawClaims []byte, at time.Time, update provisioner.UpdateFunc) (*provisioner.User, error) {
	c.count()
	return c.inner.RecordLogin(ctx, key, rawClaims, at, update)
}

func (c *countingStore) UsersByEmail(ctx context.Context, email string) ([]provisioner.User, error) {
	c.count()
	return c.inner.UsersByEmail(ctx, email)
}

func (c *countingStore) UpdateUser(ctx context.Context, userID string, update provisioner.UpdateFunc) (*provisioner.User, error) {
	c.count()
	return c.inner.UpdateUser(ctx, userID, update)
}

func (c *countingStore) ListUsers(ctx context.Context, offset, limit int) ([]provisioner.User, error) {
	c.count()
	return c.inner.ListUsers(ctx, offset, limit)
}

func (c *countingStore) Identities(ctx context.Context, userID string) ([]provisioner.Identity, error) {
	c.count()
	return c.inner.Identities(ctx, userID)
}

func (c *countingStore) SetStatus(ctx context.Context, userID string, s provisioner.Status, reason string) error {
	c.count()
	return c.inner.SetStatus(ctx, userID, s, reason)
}

func (c *countingStore) DeleteUser(ctx context.Context, userID string) error {
	c.count()
	return c.inner.DeleteUser(ctx, userID)
}

func (c *countingStore) RevokeSession(ctx context.Context, sessionID string, expires time.Time) error {
	c.count()
	return c.inner.RevokeSession(ctx, sessionID, expires)
}

func (c *countingStore) RevokedSessions(ctx context.Context, since time.Time) ([]provisioner.RevokedSession, error) {
	c.count()
	return c.inner.RevokedSessions(ctx, since)
}

func (c *countingStore) Close() error {
	c.count()
	return c.inner.Close()
}

// TestAuthenticatedRequestsDoNotTouchTheStore: the session cookie carries
// everything the identity headers need, so requests with a valid session
// make no store call at all (performance, and availability: the store
// being slow or down must not affect logged-in users).
func TestAuthenticatedRequestsDoNotTouchTheStore(t *testing.T) {
	db, err := sqlitestore.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &countingStore{inner: db}

	// The session's user exists in the store, so a handler that looked
	// it up would find it and could otherwise go unnoticed.
	ctx := context.Background()
	s := benchSession(time.Now())
	u, err := store.CreateUser(ctx, &provisioner.User{Username: s.Username, Email: s.Email, Name: s.Name, Groups: s.Groups},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: s.Connection, Issuer: "https://idp.example", Subject: s.Subject}})
	if err != nil {
		t.Fatal(err)
	}
	s.UserID = u.ID
	// The wrapper counts.
	if n := store.calls.Load(); n != 1 {
		t.Fatalf("counting store saw %d calls for one CreateUser", n)
	}
	store.calls.Store(0)

	h := benchHandler(store)
	cookie := sessionCookieBase + "=" + sealSession(t, h, s)
	const n = 200
	var reached int
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if got := r.Header.Get("Remote-User"); got != s.Username {
			t.Errorf("Remote-User upstream = %q, want %q", got, s.Username)
		}
		reached++
		w.WriteHeader(http.StatusOK)
		return nil
	})
	for i := 0; i < n; i++ {
		r := httptest.NewRequest(http.MethodGet, "http://localhost/reports/q3?year=2026", nil)
		r.Header = browserHeaders()
		r.Header.Set("Cookie", cookie)
		r.Header.Set("Remote-User", "mallory") // stripped, never looked up
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusOK {
			t.Fatalf("request %d: status %d, want 200 from next", i, w.Code)
		}
	}
	if reached != n {
		t.Fatalf("next reached %d times, want %d: the requests were not authenticated", reached, n)
	}
	if got := store.calls.Load(); got != 0 {
		t.Fatalf("%d authenticated requests made %d store calls, want 0", n, got)
	}
}

// BenchmarkSessionCacheMemory reports the heap that 10,000 live sessions
// take in the session cache (issue #14): each is a browser's cookie,
// opened once and kept with its decoded session, as a real login leaves
// it. bench/run.sh prints it beside the throughput figures.
func BenchmarkSessionCacheMemory(b *testing.B) {
	h := benchHandler(nil)
	const sessions = 10_000
	cookies := make([]string, sessions)
	now := time.Now()
	for i := range cookies {
		cookies[i] = sealSession(b, h, benchSession(now))
	}
	var perSession float64
	for b.Loop() {
		h.app.sessions.cache = newSessionCache()
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for _, c := range cookies {
			r := httptest.NewRequest(http.MethodGet, "http://localhost/", nil)
			r.Header.Set("Cookie", sessionCookieBase+"="+c)
			if h.session(r) == nil {
				b.Fatal("a sealed session did not open")
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perSession = float64(after.HeapAlloc-before.HeapAlloc) / sessions
	}
	b.ReportMetric(perSession*sessions/(1<<20), "MiB/10k-sessions")
	b.ReportMetric(perSession, "B/session")
}

// BenchmarkUpstreamHeaderMap is not jit_auth's code: it is what
// reverse_proxy then does with the request's header map (clone it, add
// User-Agent, X-Forwarded-For, -Proto, -Host and Via, write it to the
// upstream), for bench/run.sh's minimal request (Accept and the session
// cookie) as bare reverse_proxy forwards it, and as it leaves jit_auth
// (the cookie withheld, the four identity headers added). Ten entries
// take Go's map past the 8 a small map holds, so the clone grows into a
// table: that step, not the headers' bytes, is most of what forwarding
// them costs on such a request (bench/README.md). A browser's request
// has more than 8 headers already, and pays the step either way.
func BenchmarkUpstreamHeaderMap(b *testing.B) {
	cookie := sessionCookieBase + "=" + strings.Repeat("A", 520)
	for _, tc := range []struct {
		name string
		h    http.Header
	}{
		{"bare-minimal", http.Header{"Accept": {"text/html"}, "Cookie": {cookie}}},
		{"jit_auth-minimal", http.Header{"Accept": {"text/html"}, "Remote-User": {"bench@example.com"},
			"Remote-Email": {"bench@example.com"}, "Remote-Name": {"Bench User"}, "Remote-Groups": {"staff,bench"}}},
		{"jit_auth-minimal-one-header", http.Header{"Accept": {"text/html"}, "Remote-User": {"bench@example.com"}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			w := bufio.NewWriter(io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				c := tc.h.Clone()
				c["User-Agent"] = []string{""}
				c["X-Forwarded-For"] = []string{"127.0.0.1"}
				c["X-Forwarded-Proto"] = []string{"http"}
				c["X-Forwarded-Host"] = []string{"127.0.0.1:4000"}
				c["Via"] = append(c["Via"], "1.1 Caddy")
				if err := c.Write(w); err != nil {
					b.Fatal(err)
				}
				w.Flush()
			}
		})
	}
}

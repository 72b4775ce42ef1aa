package caddymodule

import (
	"context"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

func TestSafeReturnPath(t *testing.T) {
	good := []string{"/", "/a", "/a/b?c=d&e=%2F", "/reports/q3?year=2026#top", "/a//b", "/%7Euser", "/search?q=two%20words", "/files/Q3%20report.pdf", "/" + strings.Repeat("a", maxReturnURLLength-1)}
	bad := []string{
		"", "a", "//evil.example", "/\\evil.example", "\\\\evil.example", "https://evil.example",
		"http:evil.example", "javascript:alert(1)", "/%2F%2Fevil.example", "/%2fevil.example", "/%5cevil.example",
		"/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/ /evil.example", "/a\\b", "/%09/x",
		"/%0d%0aSet-Cookie:x", "/%00", "/x?q=%0a", "/x?q=%00", "/ü", "/" + strings.Repeat("a", maxReturnURLLength), "/%zz",
	}
	for _, p := range good {
		if got, ok := safeReturnPath(p); !ok || got != p {
			t.Errorf("safeReturnPath(%q) = %q, %v; want it accepted", p, got, ok)
		}
	}
	for _, p := range bad {
		if got, ok := safeReturnPath(p); ok {
			t.Errorf("safeReturnPath(%q) = %q accepted", p, got)
		}
	}
}

// FuzzSafeReturnPath checks that no accepted return path can take a
// browser to another host.
func FuzzSafeReturnPath(f *testing.F) {
	for _, s := range []string{"/", "//evil", "/\\evil", "/a?b=c", "/%2F%2Fx", "https://x", "/\t/x", "/.//x", "/./%2F%2Fx", "/a/%2e%2E/%5cx", "/#/../%2F%2Fx", "/x#/../../%5Cx"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://site.example/some/page")
	f.Fuzz(func(t *testing.T, raw string) {
		p, ok := safeReturnPath(raw)
		if !ok {
			return
		}
		if p != raw {
			t.Fatalf("accepted path was altered: %q -> %q", raw, p)
		}
		// What a browser would do: drop tabs/newlines, read "\" as "/".
		browserish := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(p)
		ref, err := url.Parse(browserish)
		if err != nil {
			t.Fatalf("accepted %q, which does not parse: %v", p, err)
		}
		if got := base.ResolveReference(ref); got.Host != base.Host || got.Scheme != base.Scheme || got.User != nil {
			t.Fatalf("accepted %q resolves to %s", p, got)
		}
		// Decoded once (an upstream that redirects again), it must still
		// not be scheme-relative.
		if dec, err := url.PathUnescape(p); err == nil && (strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\")) {
			t.Fatalf("accepted %q decodes to scheme-relative %q", p, dec)
		}
		// Nor once the browser has resolved its dot segments ("%2e" is
		// "." to it) and the redirect has been cleaned.
		resolved := base.ResolveReference(&url.URL{Path: path.Clean(strings.ReplaceAll(strings.ToLower(strings.SplitN(p, "?", 2)[0]), "%2e", "."))})
		if dec, err := url.PathUnescape(resolved.Path); err == nil && (strings.HasPrefix(dec, "//") || strings.HasPrefix(dec, "/\\") || strings.HasPrefix(strings.ToLower(resolved.Path), "/%2f") || strings.HasPrefix(strings.ToLower(resolved.Path), "/%5c")) {
			t.Fatalf("accepted %q resolves to %q, scheme-relative once decoded", p, resolved.Path)
		}
		for _, c := range p {
			if c < 0x21 || c == 0x7f {
				t.Fatalf("accepted %q with a control or space character", p)
			}
		}
	})
}

// mountOf goes into URLs the browser follows: only a plain path prefix
// that a rewrite stripped, never one that would leave the site.
func TestMountOf(t *testing.T) {
	for _, c := range []struct{ orig, now, want string }{
		{"/app/reports", "/reports", "/app"},
		{"/app/", "/", "/app"},
		{"/a/b/.jitauth/login", "/.jitauth/login", "/a/b"},
		{"/reports", "/reports", ""},        // nothing stripped
		{"/old/x", "/new/x", ""},            // rewritten, not stripped
		{"//evil.example/x", "/x", ""},      // scheme-relative
		{"/%2F%2Fevil.example/x", "/x", ""}, // encoded slashes
		{"/app;x/x", "/x", ""},              // a parameter
		{"/./app/x", "/x", ""},              // a dot segment
		{"/app/x", "x", ""},                 // not a path
	} {
		orig := httptest.NewRequest(http.MethodGet, "http://site.test"+c.orig, nil)
		r := httptest.NewRequest(http.MethodGet, "http://site.test/", nil)
		r.URL.Path, r.URL.RawPath = c.now, ""
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, *orig))
		if got := mountOf(r); got != c.want {
			t.Errorf("%q stripped to %q: mount %q, want %q", c.orig, c.now, got, c.want)
		}
	}
	if got := mountOf(httptest.NewRequest(http.MethodGet, "http://site.test/x", nil)); got != "" {
		t.Errorf("without the original request: %q", got)
	}
}

// The way back after signing in, and after the second factor, is the URL
// the browser asked for, whatever rewrites before jit_auth made of it:
// a prefix handle_path stripped, a path try_files replaced, a query a
// rewrite changed.
func TestReturnPathIsTheURLAskedFor(t *testing.T) {
	h := &Handler{PathPrefix: defaultPathPrefix, conns: []*Connection{{name: "corp"}}}
	for _, c := range []struct{ orig, now, want string }{
		{"/reports/q3?x=1", "/index.html?x=1", "/reports/q3?x=1"}, // try_files
		{"/reports?x=1", "/app/reports?x=1&y=2", "/reports?x=1"},  // rewrite
		{"/app/reports?x=1", "/reports?x=1", "/app/reports?x=1"},  // handle_path
		{"//evil.example/x", "/x", ""},                            // still vetted
		{"", "/reports?x=1", "/reports?x=1"},                      // no original request
	} {
		r := httptest.NewRequest(http.MethodGet, "http://site.test"+c.now, nil)
		r.Header.Set("Accept", "text/html")
		if c.orig != "" {
			orig := httptest.NewRequest(http.MethodGet, "http://site.test/", nil)
			orig.URL.Path, orig.URL.RawQuery, _ = strings.Cut(c.orig, "?")
			r = r.WithContext(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, *orig))
		}
		rd := ""
		if c.want != "" {
			rd = "?rd=" + url.QueryEscape(c.want)
		}
		w := httptest.NewRecorder()
		h.unauthenticated(w, r)
		if got, want := w.Header().Get("Location"), "/.jitauth/start/corp"+rd; got != want {
			t.Errorf("%q rewritten to %q: sign-in at %q, want %q", c.orig, c.now, got, want)
		}
		w = httptest.NewRecorder()
		h.secondFactorNeeded(w, r, &Session{UserID: "uid"})
		if got, want := w.Header().Get("Location"), "/.jitauth/mfa"+rd; got != want {
			t.Errorf("%q rewritten to %q: second factor at %q, want %q", c.orig, c.now, got, want)
		}
	}
}

// randomPath is a return path of n bytes of random URL characters,
// which do not compress.
func randomPath(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
	rng := rand.New(rand.NewSource(int64(n)))
	b := []byte("/x?t=")
	for len(b) < n {
		b = append(b, alphabet[rng.Intn(len(alphabet))])
	}
	return string(b)
}

// A paused login whose return path does not fit beside the provider's
// claims in one cookie is still held, going on to "/" afterwards, and
// the log says so (its length, not the path); a path that fits is kept,
// and claims too large on their own are still refused.
func TestPendingDropsAReturnPathTooLongToHold(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs()}}, logger: zap.New(core)}
	now := time.Now()
	pending := func(raw, returnTo string) *pendingLogin {
		return &pendingLogin{ID: "id", CSRF: "x", Connection: "corp", ReturnTo: returnTo, ExpiresAt: now.Add(time.Minute).Unix(),
			Claims: toPendingClaims(provisioner.Claims{Subject: "s", Raw: []byte(`{"note":"` + raw + `"}`)})}
	}
	reopen := func(w *httptest.ResponseRecorder) *pendingLogin {
		t.Helper()
		r := httptest.NewRequest(http.MethodGet, "http://localhost/", nil)
		for _, c := range w.Result().Cookies() {
			r.AddCookie(c)
		}
		p, ok := h.openPending(r, false, now)
		if !ok {
			t.Fatal("the pending login does not open")
		}
		return p
	}

	fits := randomPath(1000)
	w := httptest.NewRecorder()
	if err := h.sealPending(w, pending(randomPath(1000)[5:], fits), false, now); err != nil {
		t.Fatal(err)
	}
	if got := reopen(w).ReturnTo; got != fits || logs.Len() != 0 {
		t.Fatalf("a return path that fits came back as %.40q (%d log lines)", got, logs.Len())
	}

	// Over what one cookie holds, and (sealed) over the codecs' own bound.
	for _, long := range []string{randomPath(3000), randomPath(2 * maxReturnURLLength)} {
		logs.TakeAll()
		w = httptest.NewRecorder()
		if err := h.sealPending(w, pending(randomPath(1000)[5:], long), false, now); err != nil {
			t.Fatalf("a paused login with a return path of %d bytes was not held: %v", len(long), err)
		}
		if got := reopen(w).ReturnTo; got != "/" {
			t.Fatalf("the return path of %d bytes came back as %.40q, want /", len(long), got)
		}
		said := logs.FilterMessageSnippet("too long to carry through the sign-in").All()
		if len(said) != 1 || said[0].ContextMap()["return_url_bytes"] != int64(len(long)) || said[0].ContextMap()["connection"] != "corp" {
			t.Fatalf("the log did not say why: %+v", logs.All())
		}
		for _, f := range said[0].Context {
			if strings.Contains(f.String, long[5:40]) {
				t.Fatal("the log holds the return path, which may carry tokens")
			}
		}
	}

	if err := h.sealPending(httptest.NewRecorder(), pending(randomPath(5000)[5:], "/a"), false, now); err == nil {
		t.Fatal("claims too large for a cookie on their own were held")
	}
}

// endSessionState records the state a sign-out sends to the provider.
type endSessionState struct{ got *string }

func (e endSessionState) EndSessionURL(_ context.Context, _, _, state string) (string, bool, error) {
	*e.got = state
	return "https://idp.example/end", true, nil
}

// A sign-out through the provider sends the page to go to afterwards as
// its state only up to the length providers take (maxEndSessionState);
// a longer one is left out, and the sign-out still reaches the provider.
func TestEndSessionStateBounded(t *testing.T) {
	var got string
	conn := &Connection{name: "corp", LogoutAtProvider: true, endSession: endSessionState{&got}}
	h := &Handler{PathPrefix: defaultPathPrefix, logger: zap.NewNop(),
		app: &App{sessions: &sessions{seal: testCodecs()}, Connections: map[string]*Connection{"corp": conn}}}
	s := &Session{ID: "sid", Connection: "corp"}
	for rd, want := range map[string]string{
		"/goodbye": "/goodbye", randomPath(maxEndSessionState): randomPath(maxEndSessionState), randomPath(maxEndSessionState + 1): "",
	} {
		got = "unset"
		w := httptest.NewRecorder()
		if !h.logoutAtProvider(w, httptest.NewRequest(http.MethodPost, "http://localhost/.jitauth/logout", nil), s, rd) ||
			w.Code != http.StatusSeeOther || w.Header().Get("Location") != "https://idp.example/end" {
			t.Fatalf("rd of %d bytes: %d to %q, want the provider", len(rd), w.Code, w.Header().Get("Location"))
		}
		if got != want {
			t.Errorf("rd of %d bytes: state of %d bytes sent, want %d", len(rd), len(got), len(want))
		}
	}
}

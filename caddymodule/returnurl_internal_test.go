package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestSafeReturnPath(t *testing.T) {
	good := []string{"/", "/a", "/a/b?c=d&e=%2F", "/reports/q3?year=2026#top", "/a//b", "/%7Euser", "/search?q=two%20words"}
	bad := []string{
		"", "a", "//evil.example", "/\\evil.example", "\\\\evil.example", "https://evil.example",
		"http:evil.example", "javascript:alert(1)", "/%2F%2Fevil.example", "/%2fevil.example", "/%5cevil.example",
		"/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/ /evil.example", "/a\\b", "/%09/x",
		"/%0d%0aSet-Cookie:x", "/%00", "/a%20b", "/x?q=%0a", "/x?q=%00", "/ü", "/" + strings.Repeat("a", 3000), "/%zz",
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

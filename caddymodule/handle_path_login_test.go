package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// jit_auth inside handle_path (or after any rewrite that strips a prefix)
// sees its endpoints without the prefix, but the browser must be sent to
// them with it: the login, the callback the provider returns to, the
// return to the page asked for, and the sign-out all stay under /app/.
func TestLoginUnderHandlePathCompletes(t *testing.T) {
	base, up, _ := partialSite(t, `
	handle_path /app/* {
		jit_auth
		reverse_proxy {UPSTREAM}
	}
	handle {
		respond "the site's other pages" 200
	}`)
	b := newBrowser(t)
	// mockoidc signs in its default user (no JIT on this connection).
	resp, body, visited := b.follow(base+"/app/reports?x=1", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/app/reports?x=1" {
		t.Fatalf("a browser asking for /app/reports?x=1 ended at %s with %d %q, want /app/reports?x=1 after signing in; visited %v",
			resp.Request.URL, resp.StatusCode, body, visited)
	}
	if !strings.Contains(strings.Join(visited, " "), "redirect_uri="+url.QueryEscape(base+"/app/.jitauth/callback/corp")) {
		t.Errorf("the provider was not given the callback under /app: %v", visited)
	}
	if seen, ok := up.take("/reports"); !ok || seen.header.Get("Remote-User") == "" {
		t.Fatalf("the upstream was not reached with an identity after the login")
	}

	// The sign-out page posts to itself under /app, and signs out.
	resp, page := b.get(base + "/app/.jitauth/logout")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `action="/app/.jitauth/logout"`) {
		t.Fatalf("sign-out page: %d, want a form posting to /app/.jitauth/logout: %s", resp.StatusCode, page)
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no token on the sign-out page")
	}
	if resp, body := b.postForm(base+"/app/.jitauth/logout", url.Values{"csrf": {m[1]}}); resp.StatusCode != http.StatusOK || !strings.Contains(body, "signed out") {
		t.Fatalf("sign-out: %d %s", resp.StatusCode, body)
	}
	r := b.do(http.MethodGet, base+"/app/reports", http.Header{"Accept": {"text/html"}})
	r.Body.Close()
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/app/.jitauth/start/corp?rd=%2Fapp%2Freports") {
		t.Errorf("after signing out, /app/reports: %d to %q, want a login under /app returning to /app/reports", r.StatusCode, loc)
	}
}

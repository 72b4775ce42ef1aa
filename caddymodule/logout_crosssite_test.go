package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// S7/CSRF: a page on another site auto-submits <form method=post
// action=https://site/.jitauth/logout>. The session cookie is
// SameSite=Lax, so the browser does NOT send it on that cross-site POST;
// but the response is a top-level navigation, on which a browser does
// apply Set-Cookie (RFC 6265bis 5.7, step "top-level navigations can
// create a cookie with any SameSite value"). README: "a POST without [the
// token] gets 403 and signs nobody out". The module instead skips the
// CSRF check when no session opened and answers with Set-Cookie lines
// that delete the session cookie: the victim is signed out by any page.
func TestCrossSiteLogoutPostSignsNobodyOut(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if b.cookie(s.base, "jitauth_session") == nil {
		t.Fatal("no session after login")
	}

	// What the browser sends for the cross-site form: no cookies (Lax),
	// no token, a foreign Origin, Sec-Fetch-Site cross-site.
	req, _ := http.NewRequest(http.MethodPost, s.base+"/.jitauth/logout", strings.NewReader(url.Values{"rd": {"/"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Sec-Fetch-Dest", "document")
	noCookies := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noCookies.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The browser applies the answer's Set-Cookie to its jar (top-level
	// navigation).
	u, _ := url.Parse(s.base)
	b.client.Jar.SetCookies(u, resp.Cookies())

	var deletes []string
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "jitauth_session") && c.MaxAge < 0 {
			deletes = append(deletes, c.Name)
		}
	}
	if resp.StatusCode != http.StatusForbidden || len(deletes) > 0 || b.cookie(s.base, "jitauth_session") == nil {
		t.Errorf("cross-site logout POST without token and without the (Lax) session cookie: status %d, deletes %v, browser still has the session: %v; want 403 and no Set-Cookie (README: a POST without the token gets 403 and signs nobody out)",
			resp.StatusCode, deletes, b.cookie(s.base, "jitauth_session") != nil)
	}
}

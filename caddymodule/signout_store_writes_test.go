package caddymodule_test

import (
	"html"
	"net/http"
	"net/url"
	"testing"
)

// A sign-out opens the session cookie whatever its state (openAny), so
// one copy of a session cookie and its form token can be posted again
// and again. Each post revoked the session again: a write to the store
// per request, at whatever rate anyone with an account sends them. The
// session's sign-out is written once; the copies posted after it are
// answered as signed out without writing.
func TestRepeatedSignOutWritesTheStoreOnce(t *testing.T) {
	s := startSiteOpts(t, siteOptions{faultyStore: true})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	jar := b.client.Jar.Cookies(mustParseURL(t, s.base))
	_, page := b.get(s.base + "/.jitauth/logout")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no token on the sign-out page:\n%s", page)
	}
	form := url.Values{"csrf": {html.UnescapeString(m[1])}}
	before := revokeCalls.Load()
	for i := range floodRequests {
		resp := postSignOut(t, s.base, jar, form)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-out %d: %d, want 200", i, resp.StatusCode)
		}
	}
	if n := revokeCalls.Load() - before; n != 1 {
		t.Errorf("%d revocations written to the store for %d sign-outs of one session, want 1", n, floodRequests)
	}
	// The sign-out itself holds: the cookie opens no session.
	req, _ := http.NewRequest(http.MethodGet, s.base+"/app", nil)
	req.Header.Set("Accept", "application/json")
	for _, c := range jar {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("the signed-out session's cookie still reaches the application")
	}
}

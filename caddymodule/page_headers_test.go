package caddymodule_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingTransport keeps every response a browser gets, redirects
// included, so a test can check the headers of each.
type recordingTransport struct {
	mu        sync.Mutex
	responses []*http.Response
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		rt.mu.Lock()
		rt.responses = append(rt.responses, resp)
		rt.mu.Unlock()
	}
	return resp, err
}

// take returns the responses since the last call.
func (rt *recordingTransport) take() []*http.Response {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := rt.responses
	rt.responses = nil
	return out
}

// The module's answers on a sign-in with a second factor, its enrolment
// (the secret, the recovery codes) and a sign-out are never stored by a
// cache (each sets a cookie or shows a secret), and its pages cannot be
// framed (clickjacking of the Allow, code and Sign out buttons), sniffed
// into another type, or leak their URL (state, codes, return paths) as
// a Referer.
func TestModuleAnswersAreNotCachedFramedOrSniffed(t *testing.T) {
	s := mfaSite(t, siteOptions{})
	b := newBrowser(t)
	rt := &recordingTransport{}
	b.client.Transport = rt
	check := func(what string) {
		t.Helper()
		seen := 0
		for _, resp := range rt.take() {
			if resp.Request.URL.Host != strings.TrimPrefix(s.base, "http://") || !strings.HasPrefix(resp.Request.URL.Path, "/.jitauth/") && len(resp.Cookies()) == 0 {
				continue // the provider's, or the upstream's own page
			}
			seen++
			where := what + ": " + resp.Request.Method + " " + resp.Request.URL.RequestURI()
			if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
				t.Errorf("%s (%d): Cache-Control %q, want no-store", where, resp.StatusCode, cc)
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.StatusCode >= 300 && resp.StatusCode < 400 {
				continue
			}
			h := resp.Header
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("%s: Content-Security-Policy %q, want default-src 'none' and frame-ancestors 'none'", where, csp)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("%s: X-Content-Type-Options %q, Referrer-Policy %q, want nosniff and no-referrer", where, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"))
			}
		}
		if seen == 0 {
			t.Fatalf("%s: no answer of the module seen", what)
		}
	}

	// The login page, the provider, the callback, the enrolment page.
	_, page, _ := b.follow(s.base+"/.jitauth/login?rd=/secret", nil)
	check("login page")
	s.queue(alice())
	resp, page := s.login(b, "corp", "/secret")
	m := secretRE.FindStringSubmatch(page)
	if resp.Request.URL.Path != "/.jitauth/mfa" || m == nil {
		t.Fatalf("login ended at %s, want the enrolment page:\n%s", resp.Request.URL, page)
	}
	check("sign-in to the enrolment page")
	// A wrong code, then the right one: the recovery codes.
	s.submitCode(b, page, wrongCode(t, m[1]))
	check("a wrong code")
	if resp, page = s.submitCode(b, page, codeAt(t, m[1], time.Now())); len(recoveryRE.FindAllString(page, -1)) != 10 {
		t.Fatalf("enrolment: %d\n%s", resp.StatusCode, page)
	}
	check("the recovery codes")
	// A second sign-in, verified with a code.
	b2 := newBrowser(t)
	b2.client.Transport = rt
	s.queue(alice())
	_, page = s.login(b2, "corp", "/secret")
	check("sign-in to the verification page")
	if resp, _ := s.submitCode(b2, page, codeAt(t, m[1], time.Now().Add(30*time.Second))); resp.Request.URL.Path != "/secret" {
		t.Fatalf("verification ended at %s", resp.Request.URL)
	}
	check("verifying")
	// Signing out: the page, the form, a forged form, an unknown page.
	_, page = b2.get(s.base + "/.jitauth/logout?rd=/bye")
	b2.postRaw(s.base+"/.jitauth/logout", map[string][]string{"csrf": {"forged"}})
	b2.get(s.base + "/.jitauth/nothing-here")
	m2 := csrfRE.FindStringSubmatch(page)
	if m2 == nil {
		t.Fatalf("no sign-out form:\n%s", page)
	}
	b2.postRaw(s.base+"/.jitauth/logout", map[string][]string{"csrf": {m2[1]}})
	check("signing out")
}

package caddymodule_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"
)

// The second factor is the user at work: a user who took longer than
// the application's idle_timeout between the provider's sign-in and the
// code (setting up an authenticator app, fetching the phone) passes the
// factor and is let in, rather than sent to sign in again at once, to
// spend a second code.
func TestMFACompletedAfterTheIdleTimeoutLetsTheUserIn(t *testing.T) {
	s := startSiteWith(t, "\t\tidle_timeout 2s\n\t\tmfa totp {\n\t\t\tskip_for partner\n\t\t}\n")

	// Enrolment that takes longer than the idle timeout.
	b := newBrowser(t)
	s.queue(alice())
	resp, page := s.login(b, "corp", "/secret")
	if resp.Request.URL.Path != "/.jitauth/mfa" {
		t.Fatalf("login ended at %s, want the MFA page", resp.Request.URL)
	}
	secret := secretRE.FindStringSubmatch(page)[1]
	time.Sleep(2500 * time.Millisecond)
	resp, page = s.submitCode(b, page, codeAt(t, secret, time.Now()))
	if resp.StatusCode != http.StatusOK || len(recoveryRE.FindAllStringSubmatch(page, -1)) != 10 {
		t.Fatalf("enrolment: %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := b.get(s.base + "/secret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("right after enrolling, past the idle timeout since sign-in: %d to %q, want the upstream", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A later sign-in whose code comes after the idle timeout.
	b2, page := s.signInToMFA(alice())
	time.Sleep(2500 * time.Millisecond)
	csrf := csrfRE.FindStringSubmatch(page)
	action := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(page)
	resp, _ = b2.postRaw(s.base+html.UnescapeString(action[1]), url.Values{
		"csrf": {html.UnescapeString(csrf[1])}, "action": {"verify"},
		"code": {codeAt(t, secret, time.Now().Add(30*time.Second))},
	})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/secret" {
		t.Fatalf("verification: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := b2.get(s.base + "/secret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("right after the code, past the idle timeout since sign-in: %d to %q, want the upstream", resp.StatusCode, resp.Header.Get("Location"))
	}
}

package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// A login paused on the consent page on instance B, answered after the
// user was signed out everywhere through instance A but before B's next
// revocation_poll, is ended once the sign-out reaches B (and at once on
// A): the session it becomes counts from when the provider answered
// (Session.AuthAt), not from the answer. Otherwise the sign-out,
// acknowledged with 200, would be lost for that session's lifetime.
func TestSignOutEverywhereEndsAConsentAnsweredOnAnotherInstance(t *testing.T) {
	_, connString := pgSchema(t)
	a, b, admin := twoPGInstances(t, connString, "\n\t\trevocation_poll 30s", func(t *testing.T, caddyfile string) string {
		withConsent := strings.Replace(caddyfile, "\t\t\tjit\n", "\t\t\tjit {\n\t\t\t\tmode consent\n\t\t\t}\n", 1)
		if withConsent == caddyfile {
			t.Fatal("pgCaddyfile changed: cannot set mode consent")
		}
		return withConsent
	})
	reaches := func(br *browser, s *site) bool {
		resp, body := br.get(s.base + "/secret")
		return resp.StatusCode == http.StatusOK && strings.Contains(body, "upstream saw alice@example.com")
	}

	// Alice's first login through A: consent, then the upstream.
	first := newBrowser(t)
	a.queue(alice())
	resp, page := a.login(first, "corp", "/secret")
	if resp.Request.URL.Path != "/.jitauth/consent" {
		t.Fatalf("first login ended at %s, want the consent page", resp.Request.URL)
	}
	if resp, _ := a.answer(first, page, "allow", ""); resp.StatusCode != http.StatusOK || !reaches(first, a) {
		t.Fatalf("first login after consent: %d", resp.StatusCode)
	}

	// A later login through B, whose provider now sends a new claim: it
	// pauses on the consent page for it.
	later := alice()
	later.claims["department"] = "finance"
	x := newBrowser(t)
	b.queue(later)
	resp, page = b.login(x, "corp", "/secret")
	if resp.Request.URL.Path != "/.jitauth/consent" || !strings.Contains(page, "department") {
		t.Fatalf("later login ended at %s, want the consent page for the new claim:\n%s", resp.Request.URL, page)
	}

	// The administrator signs alice out everywhere through A (200: done).
	if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/alice@example.com/signout", "", nil); code != http.StatusOK {
		t.Fatalf("admin signout: %d", code)
	}

	// The paused login is answered on B a moment later (in a later
	// second than the sign-out's cutoff, within B's poll).
	time.Sleep(1500 * time.Millisecond)
	resp, _ = b.answer(x, page, "allow", "")
	t.Logf("answer after the sign-out: %d at %s", resp.StatusCode, resp.Request.URL)

	// A, through which the sign-out was made, has applied it since it
	// answered 200 (B would within its revocation_poll, 30 s here: a
	// long poll so that the answer above falls before B's next read). A
	// login that the provider verified before the sign-out must not be
	// signed in there: the session the answer got is refused by nobody,
	// now or later.
	if reaches(first, a) {
		t.Fatal("precondition: the session from before the sign-out still reaches the upstream through A")
	}
	if reaches(x, a) {
		t.Errorf("a login verified by the provider before the admin's sign-out everywhere, answered on the consent page " +
			"through the other instance 1.5 s after it, reaches the upstream through the instance that recorded the " +
			"sign-out: the session counts from the answer, after the cutoff, so the sign-out is lost for it for its whole lifetime")
	}
}

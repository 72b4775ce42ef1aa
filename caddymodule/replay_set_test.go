package caddymodule_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/jitauth/caddy-jitauth/caddymodule"
)

// The replay set is bounded, and refuses every login when it is full of
// live states rather than forget one. Were a completed login's state
// kept there until its flow expired, anyone with an account at the
// provider (admitted by the allow rules or not) could fill it with
// logins of their own (a dozen answers each on the username page) and
// lock every user of the site out. A recorded state is refused by the
// revocation set instead: replays are still refused, and other people's
// logins still complete.
func TestCompletedLoginsDoNotFillTheReplaySet(t *testing.T) {
	const bound = 6
	defer caddymodule.LimitReplaySet(bound)()
	s := startSite(t)

	attacker := newBrowser(t)
	var first *http.Request
	var firstFlow string
	for i := range bound {
		s.queue(&oidcUser{sub: "mallory-sub", claims: map[string]any{"email": "mallory@example.com", "email_verified": true}})
		cb := s.startOnly(attacker, "corp", "/")
		flow := flowCookieLine(attacker, cb)
		resp, body := attacker.get(cb.String())
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("the attacker's login %d: %d\n%s", i, resp.StatusCode, body)
		}
		if i == 0 {
			first, _ = http.NewRequest(http.MethodGet, cb.String(), nil)
			firstFlow = flow
		}
	}

	victim := newBrowser(t)
	s.queue(alice())
	resp, body := s.login(victim, "corp", "/after")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/after" {
		t.Fatalf("after %d completed logins of someone else, the victim's login ends with %d at %s:\n%s", bound, resp.StatusCode, resp.Request.URL, body)
	}

	// A completed login's callback, replayed with its flow cookie, is
	// still refused.
	replay := newBrowser(t).do(http.MethodGet, first.URL.String(), http.Header{"Cookie": {firstFlow}})
	b, _ := io.ReadAll(replay.Body)
	replay.Body.Close()
	if replay.StatusCode != http.StatusBadRequest {
		t.Fatalf("a replayed callback: %d\n%s", replay.StatusCode, b)
	}
	for _, c := range replay.Cookies() {
		if c.Name == "jitauth_session" && c.Value != "" {
			t.Fatal("a replayed callback issued a session")
		}
	}
}

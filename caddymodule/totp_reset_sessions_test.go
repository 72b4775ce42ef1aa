package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// README, Second factor: "Reset a user's factor ... The user enrols again
// at the next login" and "Enrolment trusts the first login after a reset
// or for a new user: whoever holds the provider login at that moment
// enrols." A session that signed in at the provider BEFORE the reset,
// and that still owes its second factor, is not that login: someone who
// phished the provider password got such a session (stuck at the code
// page, since they lack the authenticator) and kept it. When the
// administrator resets the factor for the real user (lost phone), that
// old pre-MFA session is offered the enrolment page, enrols the
// attacker's authenticator, reaches the upstream, and the real user is
// then asked for codes from the attacker's app.
func TestTOTPResetEndsSessionsSoAnOldOneCannotEnrol(t *testing.T) {
	admin := freePort(t)
	s := mfaSite(t, siteOptions{adminPort: admin})
	s.enrol(alice())

	// The attacker holds alice's provider login, not her authenticator:
	// the session stops at the code page.
	attacker, page := s.signInToMFA(alice())
	if strings.Contains(page, `id="secret"`) {
		t.Fatal("precondition: the attacker was offered enrolment before the reset")
	}

	// Alice lost her phone; the administrator resets her factor.
	if code := adminCall(t, admin, http.MethodDelete, "/jit_auth/users/alice@example.com/totp", "", nil); code != http.StatusOK {
		t.Fatalf("admin reset: %d", code)
	}

	// The attacker's session, from before the reset, reloads the MFA page.
	_, page = attacker.get(s.base + "/.jitauth/mfa?rd=/secret")
	m := secretRE.FindStringSubmatch(page)
	if m == nil {
		return // not offered enrolment: what the README promises
	}
	attackerSecret := m[1]
	resp, _ := s.submitCode(attacker, page, codeAt(t, attackerSecret, time.Now()))
	got, body := attacker.get(s.base + "/secret")
	t.Errorf("a pre-MFA session issued BEFORE the admin's TOTP reset was offered enrolment (status %d) "+
		"and, after enrolling its own authenticator, reached the upstream: GET /secret -> %d %q; "+
		"want: only a login made after the reset may enrol (the old session must be refused or sent to sign in again)",
		resp.StatusCode, got.StatusCode, body)

	// And the real user is locked out: her next login is asked for a
	// code from the attacker's authenticator instead of enrolling hers.
	_, page = s.signInToMFA(alice())
	if secretRE.FindStringSubmatch(page) != nil {
		t.Error("after the attacker's enrolment, alice's next login still offers enrolment")
	}

}

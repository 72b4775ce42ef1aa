package caddymodule_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Enrolment across instances. Two Caddy processes share one PostgreSQL
// store, as the README recommends for several instances; the admin API
// runs on the first. An administrator's change through the first (a
// factor reset, a sign-out everywhere, a disable) reaches the second's
// memory only at its next revocation_poll or user_status_refresh; a
// session from before it must not meanwhile enrol an authenticator on
// the second, which would set the user's factor for good (S11).

// twoMFAInstances starts two instances of one MFA site on one
// PostgreSQL store, and returns them and the first's admin port.
func twoMFAInstances(t *testing.T) (a, b *site, admin int) {
	t.Helper()
	_, connString := pgSchema(t)
	return twoPGInstances(t, connString, "", withTOTP)
}

// withTOTP makes pgCaddyfile's site ask for a TOTP second factor.
func withTOTP(t *testing.T, caddyfile string) string {
	withMFA := strings.Replace(caddyfile, "\tjit_auth\n", "\tjit_auth {\n\t\tmfa totp\n\t}\n", 1)
	if withMFA == caddyfile {
		t.Fatal("pgCaddyfile changed: cannot add mfa totp")
	}
	return withMFA
}

// twoPGInstances starts two Caddy processes with pgCaddyfile's site on
// the store of connString (its store line followed by storeOptions),
// each Caddyfile changed by edit, and returns them and the admin port
// of the first (the second has none).
func twoPGInstances(t *testing.T, connString, storeOptions string, edit func(*testing.T, string) string) (a, b *site, admin int) {
	t.Helper()
	dir := t.TempDir()
	bin := buildCaddy(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	admin = freePort(t)

	var sites [2]*site
	for i := range sites {
		port := freePort(t)
		idir := filepath.Join(dir, fmt.Sprintf("instance%d", i))
		if err := os.MkdirAll(idir, 0o700); err != nil {
			t.Fatal(err)
		}
		sites[i] = &site{t: t, dir: idir, base: fmt.Sprintf("http://localhost:%d", port), idp: idp, upstream: up}
		caddyfile := edit(t, pgCaddyfile(idir, fmt.Sprintf("store postgres %q", connString)+storeOptions, port,
			cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()))
		if i == 0 {
			caddyfile = strings.Replace(caddyfile, "admin off", fmt.Sprintf("admin localhost:%d", admin), 1)
		}
		startCaddyProcess(t, bin, idir, caddyfile, sites[i].base)
	}
	return sites[0], sites[1], admin
}

// An administrator's TOTP reset through one instance deletes the factor
// in the shared store at once, while the sign-out it records first
// reaches the other instance only at its next revocation_poll. A
// pre-MFA session held there by someone who has only the provider login
// (stuck at the code page) must not be offered enrolment meanwhile:
// otherwise it enrols the attacker's authenticator, reaches the
// upstream, and the real user's next login asks for the attacker's
// codes. README, Admin API: "a session from before the reset ... cannot
// enrol an authenticator of its own".
func TestTOTPResetOnOneInstanceStopsAnOldSessionEnrollingOnAnother(t *testing.T) {
	a, b, admin := twoMFAInstances(t)

	// Alice enrols through A.
	secret, _, _ := a.enrol(alice())

	// The attacker holds alice's provider login, not her authenticator:
	// their session (signed in through B, as a load balancer may route)
	// stops at the code page.
	attacker, page := b.signInToMFA(alice())
	if strings.Contains(page, `id="secret"`) {
		t.Fatal("precondition: the attacker was offered enrolment before the reset")
	}

	// Alice lost her phone; the administrator resets her factor through
	// A's admin API.
	if code := adminCall(t, admin, http.MethodDelete, "/jit_auth/users/alice@example.com/totp", "", nil); code != http.StatusOK {
		t.Fatalf("admin reset: %d", code)
	}

	// At once, the attacker's session from before the reset reloads the
	// MFA page on B.
	_, page = attacker.get(b.base + "/.jitauth/mfa?rd=/secret")
	m := secretRE.FindStringSubmatch(page)
	if m == nil {
		return // not offered enrolment: what the README promises
	}
	attackerSecret := m[1]
	if attackerSecret == secret {
		t.Fatal("the enrolment page shows alice's old secret")
	}
	resp, _ := b.submitCode(attacker, page, codeAt(t, attackerSecret, time.Now()))
	got, body := attacker.get(b.base + "/secret")
	if got.StatusCode == http.StatusOK {
		t.Errorf("a pre-MFA session issued BEFORE an admin's TOTP reset on instance A was offered enrolment on instance B "+
			"(enrol answer %d) and then reached the upstream: GET /secret on B -> %d %q; "+
			"want: no enrolment for a session the reset signed out", resp.StatusCode, got.StatusCode, strings.TrimSpace(body))
	}

	// The takeover persists after the poll: alice's next login (after
	// the revocation reached B) is asked for the attacker's codes.
	time.Sleep(11 * time.Second)
	nb := newBrowser(t)
	a.queue(alice())
	_, page = a.login(nb, "corp", "/secret")
	if secretRE.FindStringSubmatch(page) != nil {
		return
	}
	if r, _ := a.submitCode(nb, page, codeAt(t, attackerSecret, time.Now().Add(30*time.Second))); r.StatusCode == http.StatusOK {
		t.Error("once the revocation reached B, the attacker's authenticator is still alice's stored factor: " +
			"a fresh login with only her provider login and the attacker's code reaches the upstream")
	}
}

// The same holds for the other changes an administrator makes through
// one instance: a user without a factor, signed out everywhere or
// disabled there, cannot confirm on the other instance an enrolment
// that a session from before the change had started (the QR code shown,
// the code not yet sent), though the other instance's memory learns of
// the change only at its next revocation_poll or user_status_refresh.
func TestAdminChangeOnOneInstanceStopsEnrolmentOnAnother(t *testing.T) {
	_, b, admin := twoMFAInstances(t)

	for _, change := range []struct{ name, path string }{
		{"sign-out everywhere", "signout"},
		{"disable", "disable"},
	} {
		t.Run(change.path, func(t *testing.T) {
			email := change.path + "@example.com"
			u := &oidcUser{sub: change.path + "-sub", claims: map[string]any{
				"email": email, "email_verified": true, "name": "No Factor Yet",
			}}
			// Someone with the provider login alone signs in through B:
			// the user has no factor yet, so B offers enrolment.
			attacker := newBrowser(t)
			b.queue(u)
			_, page := b.login(attacker, "corp", "/secret")
			m := secretRE.FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("precondition: no enrolment offered on B:\n%s", page)
			}

			if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/"+email+"/"+change.path, "", nil); code != http.StatusOK {
				t.Fatalf("admin %s: %d", change.name, code)
			}

			// At once, the session from before the change sends the code.
			resp, body := b.submitCode(attacker, page, codeAt(t, m[1], time.Now()))
			if resp.StatusCode == http.StatusOK || strings.Contains(body, "recovery") {
				t.Errorf("after a %s through A, B accepted an enrolment started before it: %d\n%s", change.name, resp.StatusCode, body)
			}
			if got, _ := attacker.get(b.base + "/secret"); got.StatusCode == http.StatusOK && got.Request.URL.Path == "/secret" {
				t.Errorf("after a %s through A, the old session reached the upstream through B", change.name)
			}
			var view struct {
				TOTP bool `json:"totp_enrolled"`
			}
			if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users/"+email, "", &view); code != http.StatusOK {
				t.Fatalf("admin get: %d", code)
			}
			if view.TOTP {
				t.Errorf("after a %s through A, the old session on B enrolled a factor for the user", change.name)
			}
		})
	}
}

package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/internal/tcpproxy"
)

// A back-channel logout that arrives while the user store cannot be
// read is answered 503, which asks the provider to send the token again;
// that retry, once the store is back, ends the sessions (S17, S7). The
// jti claimed for the first attempt is given back, or the retry would be
// refused as "used before" and the sign-out lost.
func TestBackchannelLogoutRetriedAfterAStoreOutageEndsTheSession(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout", faultyStore: true})
	t.Cleanup(func() { storeDown.Store(false) })
	cfg := s.idp.Config()

	s.queue(alice())
	b := newBrowser(t)
	if resp, body := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sub"] = "alice-sub"
	token := signWith(t, s.idp.Keypair, c)

	storeDown.Store(true)
	code, body := postLogoutToken(t, s.base, "corp", token)
	storeDown.Store(false)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("logout token during the outage: %d %s, want 503 (the provider retries)", code, body)
	}
	// The provider sends the same token again, as the 503 asked.
	code, body = postLogoutToken(t, s.base, "corp", token)
	if code != http.StatusOK || strings.Contains(body, "used before") {
		t.Errorf("the provider's retry after the outage: %d %s, want 200", code, body)
	}
	if resp, _ := b.get(s.base + "/"); resp.StatusCode == http.StatusOK {
		t.Errorf("alice's session survived the back-channel logout the provider retried")
	}
}

// blockPendingRevocations makes Caddy's storage unable to keep a logout
// (a file stands where its directory goes), until the returned func.
func blockPendingRevocations(t *testing.T, dir string) func() {
	t.Helper()
	blocker := filepath.Join(dir, "storage", "jit_auth", "pending_revocations")
	if err := os.MkdirAll(filepath.Dir(blocker), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blocker, []byte("in the way"), 0o600); err != nil {
		t.Fatal(err)
	}
	unblock := func() { _ = os.Remove(blocker) }
	t.Cleanup(unblock)
	return unblock
}

// Every 503 of a back-channel logout gives back what it took of the
// token, wherever it failed: when neither the store nor Caddy's storage
// takes the token's single use (spend), and when they take that but not
// the logout itself (the jti is spent then, and the store cannot undo
// it, so this instance lets one retry finish the logout).
func TestBackchannelLogoutRetriedAfterItCouldNotBeRecordedEndsTheSession(t *testing.T) {
	for name, fault := range map[string]func(bool){
		"the token's single use not recorded": func(on bool) { useOnceDown.Store(on) },
		"the logout not recorded":             func(on bool) { revokeDown.Store(on) },
	} {
		t.Run(name, func(t *testing.T) {
			s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout", faultyStore: true})
			t.Cleanup(func() { fault(false) })
			cfg := s.idp.Config()
			s.queue(alice())
			b := newBrowser(t)
			if resp, body := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("login: %d %s", resp.StatusCode, body)
			}
			c := logoutClaims(cfg.Issuer, cfg.ClientID)
			c["sub"] = "alice-sub"
			token := signWith(t, s.idp.Keypair, c)

			unblock := blockPendingRevocations(t, s.dir)
			fault(true)
			code, body := postLogoutToken(t, s.base, "corp", token)
			fault(false)
			unblock()
			if code != http.StatusServiceUnavailable {
				t.Fatalf("logout token with the store and Caddy's storage failing: %d %s, want 503", code, body)
			}
			if code, body := postLogoutToken(t, s.base, "corp", token); code != http.StatusOK {
				t.Errorf("the provider's retry: %d %s, want 200", code, strings.TrimSpace(body))
			}
			if resp, _ := b.get(s.base + "/"); resp.StatusCode == http.StatusOK {
				t.Errorf("alice's session survived the back-channel logout the provider retried")
			}
			// Finished, the token is used up: a replay is refused.
			if code, body := postLogoutToken(t, s.base, "corp", token); code != http.StatusBadRequest || !strings.Contains(body, "used before") {
				t.Errorf("the token once more after the logout finished: %d %s, want 400 used before", code, strings.TrimSpace(body))
			}
		})
	}
}

// A user whose provider subject is as long as a login accepts (255
// bytes, OpenID Connect's limit) is signed out by the provider's
// back-channel logout like any other (S7).
func TestBackchannelLogoutEndsTheSessionOfALongLegalSubject(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout"})
	cfg := s.idp.Config()
	sub := strings.Repeat("s", 240) // OpenID Connect: at most 255 ASCII characters
	u := alice()
	u.sub = sub
	s.queue(u)
	b := newBrowser(t)
	if resp, body := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login with a %d-byte subject: %d %s", len(sub), resp.StatusCode, firstLine(body))
	}
	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sub"] = sub
	if code, body := postLogoutToken(t, s.base, "corp", signWith(t, s.idp.Keypair, c)); code != http.StatusOK {
		t.Errorf("back-channel logout of a %d-byte subject: %d %s, want 200", len(sub), code, strings.TrimSpace(body))
	}
	if resp, _ := b.get(s.base + "/"); resp.StatusCode == http.StatusOK {
		t.Errorf("the session of the user with a %d-byte subject survived the provider's logout", len(sub))
	}
}

// While the store is unreachable, a back-channel logout by a long
// provider session ID is kept in Caddy's storage like any other: its
// key there is a digest, so no ID is too long for a file name (S17).
func TestBackchannelLogoutByALongSIDIsKeptDuringAStoreOutage(t *testing.T) {
	_, connString := pgSchema(t)
	u, _ := url.Parse(connString)
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout", store: fmt.Sprintf("store postgres %q", u.String())})
	cfg := s.idp.Config()
	sid := strings.Repeat("i", 180)
	a := alice()
	a.claims["sid"] = sid
	s.queue(a)
	b := newBrowser(t)
	if resp, body := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, firstLine(body))
	}
	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sid"] = sid
	token := signWith(t, s.idp.Keypair, c)

	proxy.Down()
	code, body := postLogoutToken(t, s.base, "corp", token)
	proxy.Up()
	if code != http.StatusOK {
		t.Errorf("back-channel logout (sid of %d bytes) during the store outage: %d %s; want 200, the logout kept in Caddy's storage",
			len(sid), code, strings.TrimSpace(body))
		// What the provider does next: send it again.
		code, body = postLogoutToken(t, s.base, "corp", token)
		if code != http.StatusOK {
			t.Errorf("the provider's retry after the outage: %d %s; the logout is lost", code, strings.TrimSpace(body))
		}
	}
	if resp, _ := b.get(s.base + "/"); resp.StatusCode == http.StatusOK {
		t.Errorf("the session survived the provider's back-channel logout")
	}
}

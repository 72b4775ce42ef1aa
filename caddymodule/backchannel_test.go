package caddymodule_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// logoutClaims is a Back-Channel Logout token as a provider sends it.
func logoutClaims(issuer, clientID string) jwt.MapClaims {
	return jwt.MapClaims{"iss": issuer, "aud": clientID, "iat": time.Now().Unix(), "jti": uuid.NewString(),
		"events": map[string]any{backchannelEvent: map[string]any{}}}
}

// postLogoutToken posts a logout token as the provider does (no cookies).
func postLogoutToken(t *testing.T, base, conn, token string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(base+"/.jitauth/backchannel-logout/"+conn, url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	return resp.StatusCode, b.String()
}

func TestBackchannelLogoutEndsTheSessionsItNames(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout"})
	cfg := s.idp.Config()
	login := func(u *oidcUser) *browser {
		t.Helper()
		s.queue(u)
		b := newBrowser(t)
		if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		return b
	}
	signedIn := func(b *browser) bool {
		resp, _ := b.get(s.base + "/")
		return resp.StatusCode == http.StatusOK
	}
	withSID := func(sid string) *oidcUser {
		u := alice()
		u.claims["sid"] = sid
		return u
	}
	a1, a2 := login(withSID("op-session-1")), login(withSID("op-session-2"))
	bob := login(&oidcUser{sub: "bob-sub", claims: map[string]any{"email": "bob@example.com", "email_verified": true}})

	// Refused: each defect, and nothing ends.
	tok := func(edit func(jwt.MapClaims)) string {
		c := logoutClaims(cfg.Issuer, cfg.ClientID)
		c["sub"] = "alice-sub"
		edit(c)
		return signWith(t, s.idp.Keypair, c)
	}
	for name, bad := range map[string]string{
		"no events":      tok(func(c jwt.MapClaims) { delete(c, "events") }),
		"other event":    tok(func(c jwt.MapClaims) { c["events"] = map[string]any{"urn:other": map[string]any{}} }),
		"event not JSON": tok(func(c jwt.MapClaims) { c["events"] = map[string]any{backchannelEvent: "yes"} }),
		"nonce":          tok(func(c jwt.MapClaims) { c["nonce"] = "n" }),
		"no jti":         tok(func(c jwt.MapClaims) { delete(c, "jti") }),
		"neither":        tok(func(c jwt.MapClaims) { delete(c, "sub") }),
		"wrong aud":      tok(func(c jwt.MapClaims) { c["aud"] = "another-client" }),
		"other issuer":   tok(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }),
		"old iat":        tok(func(c jwt.MapClaims) { c["iat"] = time.Now().Add(-time.Hour).Unix() }),
		"no iat":         tok(func(c jwt.MapClaims) { delete(c, "iat") }),
		"expired":        tok(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Second).Unix() }),
		"alg none":       unsignedToken(func() jwt.MapClaims { c := logoutClaims(cfg.Issuer, cfg.ClientID); c["sub"] = "alice-sub"; return c }()),
		"garbage":        "not-a-token",
	} {
		if code, body := postLogoutToken(t, s.base, "corp", bad); code != http.StatusBadRequest || !strings.Contains(body, "invalid_request") {
			t.Errorf("%s: %d %s, want 400", name, code, body)
		}
	}
	if !signedIn(a1) || !signedIn(a2) || !signedIn(bob) {
		t.Fatal("a refused logout token ended a session")
	}
	// A connection without backchannel_logout has no receiver.
	if code, _ := postLogoutToken(t, s.base, "partner", tok(func(jwt.MapClaims) {})); code != http.StatusNotFound {
		t.Fatalf("partner: %d, want 404", code)
	}

	// By sid: that provider session ends, alice's other one does not.
	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sid"] = "op-session-1"
	bySID := signWith(t, s.idp.Keypair, c)
	if code, body := postLogoutToken(t, s.base, "corp", bySID); code != http.StatusOK {
		t.Fatalf("logout by sid: %d %s", code, body)
	}
	if signedIn(a1) || !signedIn(a2) || !signedIn(bob) {
		t.Fatalf("after logout by sid: a1 %v a2 %v bob %v", signedIn(a1), signedIn(a2), signedIn(bob))
	}
	// The same token again: refused (jti single-use).
	if code, _ := postLogoutToken(t, s.base, "corp", bySID); code != http.StatusBadRequest {
		t.Fatalf("a replayed logout token: %d", code)
	}

	// By sub: every session of alice ends, bob's stays; and alice can
	// sign in again afterwards.
	c = logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sub"] = "alice-sub"
	if code, body := postLogoutToken(t, s.base, "corp", signWith(t, s.idp.Keypair, c)); code != http.StatusOK {
		t.Fatalf("logout by sub: %d %s", code, body)
	}
	if signedIn(a2) || !signedIn(bob) {
		t.Fatal("logout by sub did not end alice's sessions, or ended bob's")
	}
	time.Sleep(1100 * time.Millisecond) // a login in the second of the logout is refused too
	if again := login(withSID("op-session-3")); !signedIn(again) {
		t.Fatal("alice cannot sign in again after a back-channel logout")
	}
}

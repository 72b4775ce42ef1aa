package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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

// Two instances on one PostgreSQL: the provider posts the logout token to
// A, and the session, used through B, ends within B's revocation poll; the
// same token replayed to B ends nothing new (a session made on B after the
// logout survives it).
func TestBackchannelLogoutReachesTheOtherInstance(t *testing.T) {
	_, connString := pgSchema(t)
	dir := t.TempDir()
	bin := buildCaddy(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	withBackchannel := func(caddyfile string) string {
		return strings.Replace(caddyfile, "\t\t\tjit\n", "\t\t\tjit\n\t\t\tbackchannel_logout\n", 1)
	}
	storeLine := fmt.Sprintf("store postgres %q\n\t\trevocation_poll 1s", connString)
	dirB := filepath.Join(dir, "b")
	if err := os.MkdirAll(dirB, 0o700); err != nil {
		t.Fatal(err)
	}
	portB := freePort(t)
	baseB := fmt.Sprintf("http://localhost:%d", portB)
	startCaddyProcess(t, bin, dirB, withBackchannel(pgCaddyfile(dirB, storeLine, portB, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort())), baseB)
	dirA := filepath.Join(dir, "a")
	if err := os.MkdirAll(dirA, 0o700); err != nil {
		t.Fatal(err)
	}
	portA := freePort(t)
	baseA := fmt.Sprintf("http://localhost:%d", portA)
	runCaddyfile(t, withBackchannel(pgCaddyfile(dirA, storeLine, portA, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort())))

	onB := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := onB.follow(baseB+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login through B: %d %s", resp.StatusCode, body)
	}
	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sub"] = "alice-sub"
	tok := signWith(t, idp.Keypair, c)
	if code, body := postLogoutToken(t, baseA, "corp", tok); code != http.StatusOK {
		t.Fatalf("logout token at A: %d %s", code, body)
	}
	eventually(t, "B ends the session the provider logged out through A", 25*time.Second, func() bool {
		resp, _ := onB.get(baseB + "/x")
		return resp.StatusCode == http.StatusFound
	})
	time.Sleep(1100 * time.Millisecond)
	again := newBrowser(t)
	idp.QueueUser(alice())
	if resp, _, _ := again.follow(baseB+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login again through B: %d", resp.StatusCode)
	}
	// The used token, replayed to either instance, is refused: B learnt
	// of its jti from the store with the cutoff.
	for _, base := range []string{baseA, baseB} {
		if code, _ := postLogoutToken(t, base, "corp", tok); code != http.StatusBadRequest {
			t.Fatalf("the token replayed to %s: %d", base, code)
		}
	}
	if resp, _ := again.get(baseB + "/y"); resp.StatusCode != http.StatusOK {
		t.Fatal("the new session ended")
	}
}

// A logout token is single use across instances at once, as a login step
// is: with a SingleUseStore, a token used through A is refused through B
// before B's revocation poll (once an hour here) has read it.
func TestBackchannelLogoutTokenIsSingleUseAcrossInstancesAtOnce(t *testing.T) {
	_, connString := pgSchema(t)
	dir := t.TempDir()
	bin := buildCaddy(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	edit := func(caddyfile string) string {
		caddyfile = strings.Replace(caddyfile, "revocation_poll 1s", "revocation_poll 1h", 1)
		return strings.Replace(caddyfile, "\t\t\tjit\n", "\t\t\tjit\n\t\t\tbackchannel_logout\n", 1)
	}
	bases := startPGInstances(t, bin, dir, connString, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort(), edit)
	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sub"] = "alice-sub"
	tok := signWith(t, idp.Keypair, c)
	if code, body := postLogoutToken(t, bases[0], "corp", tok); code != http.StatusOK {
		t.Fatalf("logout token at A: %d %s", code, body)
	}
	if code, body := postLogoutToken(t, bases[1], "corp", tok); code != http.StatusBadRequest || !strings.Contains(body, "used before") {
		t.Errorf("the same token at B: %d %s, want 400 used before", code, body)
	}
}

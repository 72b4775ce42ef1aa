package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// rawClaims signs as its bytes exactly, for what a map cannot hold (a
// key twice); the embedded map only answers jwt.Claims.
type rawClaims struct {
	jwt.MapClaims
	raw []byte
}

func (c rawClaims) MarshalJSON() ([]byte, error) { return c.raw, nil }

// signRawWith signs payload (JSON, as is) with kp.
func signRawWith(t *testing.T, kp *mockoidc.Keypair, payload []byte) string {
	t.Helper()
	tok, err := kp.SignJWT(rawClaims{jwt.MapClaims{}, payload})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A logout token's sub, sid, jti, events, nonce and iat are read into a
// struct (go-oidc's and the connector's), which encoding/json matches
// without regard to letter case ("SID", "ſub" with U+017F) taking the
// last of several; the token's claims say exactly sid and sub. A logout
// token whose "SID" or "Sub" (with no sid or sub), or whose second
// "sub", named a session ended it: a token the provider signed as
// naming bob, or no one, signed alice out. Such a token is now refused
// (400), as ID tokens, userinfo answers and bearer tokens are, and
// ends nothing.
func TestLogoutTokenWithAClaimSpelledOtherwiseOrTwiceIsRefused(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout"})
	cfg := s.idp.Config()
	u := alice()
	u.claims["sid"] = "op-session-1"
	s.queue(u)
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	// tok is a logout token naming whom base names (as the map), then
	// the JSON members extra.
	tok := func(base map[string]any, extra string) string {
		c := logoutClaims(cfg.Issuer, cfg.ClientID)
		for k, v := range base {
			c[k] = v
		}
		payload, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return signRawWith(t, s.idp.Keypair, append(bytes.TrimSuffix(payload, []byte("}")), []byte(","+extra+"}")...))
	}
	for name, bad := range map[string]string{
		"SID":                tok(nil, `"SID":"op-session-1"`),
		"sid then SID":       tok(map[string]any{"sid": "op-session-9"}, `"SID":"op-session-1"`),
		"sid twice":          tok(map[string]any{"sid": "op-session-9"}, `"sid":"op-session-1"`),
		"Sub":                tok(nil, `"Sub":"alice-sub"`),
		"sub with U+017F":    tok(nil, `"ſub":"alice-sub"`),
		"sub twice":          tok(map[string]any{"sub": "bob-sub"}, `"sub":"alice-sub"`),
		"sub twice, escaped": tok(map[string]any{"sub": "bob-sub"}, `"s\u0075b":"alice-sub"`),
		"Events":             tok(map[string]any{"sub": "alice-sub", "events": map[string]any{}}, `"Events":{"`+backchannelEvent+`":{}}`),
		"JTI":                tok(map[string]any{"sub": "alice-sub"}, `"JTI":"another"`),
	} {
		code, body := postLogoutToken(t, s.base, "corp", bad)
		if code != http.StatusBadRequest || !strings.Contains(body, "invalid_request") {
			t.Errorf("%s: %d %s, want 400", name, code, body)
		}
	}
	if resp, _ := b.get(s.base + "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("a refused logout token ended alice's session: %d", resp.StatusCode)
	}
	// The same token spelled exactly is taken.
	if code, body := postLogoutToken(t, s.base, "corp", tok(nil, `"sid":"op-session-1"`)); code != http.StatusOK {
		t.Fatalf("logout by sid: %d %s", code, body)
	}
	if resp, _ := b.get(s.base + "/"); resp.StatusCode == http.StatusOK {
		t.Fatal("the logout by sid left alice's session")
	}
}

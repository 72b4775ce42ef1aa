package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// splitUser is a provider account whose ID token and userinfo answer
// differ: the ID token carries an address the user typed (no
// email_verified), userinfo the account's verified primary address.
type splitUser struct {
	oidcUser
	userinfo map[string]any
}

func (u *splitUser) Userinfo([]string) ([]byte, error) {
	m := map[string]any{"sub": u.sub}
	for k, v := range u.userinfo {
		m[k] = v
	}
	return json.Marshal(m)
}

// email_verified vouches for one address: the one sent beside it. An ID
// token's "email" without a flag is not verified by userinfo's
// "email_verified": true, said of another address (S8, S15).
func TestUserinfoFlagDoesNotVouchForTheTokensOtherAddress(t *testing.T) {
	s := startIdentitySite(t)
	mallory := &splitUser{
		oidcUser: oidcUser{sub: "mallory-sub", claims: map[string]any{"email": "ceo@example.com"}},
		userinfo: map[string]any{"email": "mallory@example.net", "email_verified": true},
	}
	s.idp.QueueUser(mallory)
	b := newBrowser(t)
	resp, body := s.login(b, "partner", "/whoami")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-User") == "ceo@example.com" {
		t.Errorf("an address the provider never said was verified (ceo@example.com, beside userinfo's verified mallory@example.net) reached the upstream as Remote-User %q", h.Get("Remote-User"))
	}
}

package caddymodule

import (
	"encoding/json"
	"testing"
	"time"
)

// The connector digest ignores how the config is written and what does
// not change who vouches for an identity (the secret, the scopes), and
// follows what does: the kind, the issuer or provider, the client.
func TestVouchDigest(t *testing.T) {
	base := vouchDigest(json.RawMessage(`{"kind":"oidc","issuer":"https://a.example","client_id":"c","client_secret":"s"}`))
	same := []string{
		`{ "client_secret": "rotated", "client_id": "c", "issuer": "https://a.example", "kind": "oidc" }`,
		`{"kind":"oidc","issuer":"https://a.example","client_id":"c","client_secret":"s","scopes":["openid","groups"]}`,
	}
	for _, raw := range same {
		if got := vouchDigest(json.RawMessage(raw)); got != base {
			t.Errorf("%s: digest %s, want %s as for the same provider", raw, got, base)
		}
	}
	other := []string{
		`{"kind":"oidc","issuer":"https://b.example","client_id":"c","client_secret":"s"}`,
		`{"kind":"oidc","issuer":"https://a.example","client_id":"d","client_secret":"s"}`,
		`{"kind":"goth","provider":"github","key":"c","secret":"s"}`,
		`{"kind":"other_oidc","issuer":"https://a.example","client_id":"c","client_secret":"s"}`,
	}
	for _, raw := range other {
		if got := vouchDigest(json.RawMessage(raw)); got == base {
			t.Errorf("%s: the digest of another provider equals the first's", raw)
		}
	}
}

// A pending login answers only under the provider that verified it; one
// sealed before pending logins recorded it, only if its identity was
// verified after the connection's provider last changed in this process.
func TestVouchesFor(t *testing.T) {
	st := newSharedState()
	t0 := time.Unix(1_000_000, 0)
	c := &Connection{vouch: "A"}
	st.noteVouches(map[string]*Connection{"corp": c}, t0)
	if !c.vouchSince.Equal(t0) {
		t.Fatalf("first load: since %v, want %v", c.vouchSince, t0)
	}
	// A reload that leaves the connector alone keeps the time.
	again := &Connection{vouch: "A"}
	st.noteVouches(map[string]*Connection{"corp": again, "new": {vouch: "N"}}, t0.Add(time.Minute))
	if !again.vouchSince.Equal(t0) {
		t.Fatalf("reload with the same connector: since %v, want %v", again.vouchSince, t0)
	}
	for _, tc := range []struct {
		p    pendingLogin
		want bool
	}{
		{pendingLogin{Vouch: "A"}, true},
		{pendingLogin{Vouch: "B", AuthAt: t0.Add(time.Hour).Unix()}, false},
		{pendingLogin{AuthAt: t0.Add(time.Second).Unix()}, true},
		{pendingLogin{AuthAt: t0.Unix()}, false},
		{pendingLogin{}, false},
	} {
		if got := again.vouchesFor(&tc.p); got != tc.want {
			t.Errorf("%+v: vouchesFor %v, want %v", tc.p, got, tc.want)
		}
	}
	// A reload to another provider restarts the time: an old-format
	// pending login verified before it is refused.
	t1 := t0.Add(2 * time.Minute)
	changed := &Connection{vouch: "B"}
	st.noteVouches(map[string]*Connection{"corp": changed}, t1)
	if !changed.vouchSince.Equal(t1) || changed.vouchesFor(&pendingLogin{AuthAt: t0.Add(time.Minute).Unix()}) {
		t.Errorf("after a reload to another provider: since %v, an old-format login verified before it accepted", changed.vouchSince)
	}
}

package caddymodule

import (
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/assertion"
)

// An assertion is never valid after the session it vouches for: a
// bearer token that expires in two minutes does not become an assertion
// valid for the hour the application's lifetime allows, which an
// upstream would accept from its request log after the token expired.
// A session that outlasts the lifetime gets the lifetime.
func TestAssertionEndsNoLaterThanItsSession(t *testing.T) {
	keys := newAssertionKeys(nil, defaultAssertionKeyRotation, nil)
	signer := newAssertionSigner(&AssertionConfig{Lifetime: caddy.Duration(time.Hour)}, keys, nil)
	now := time.Now()
	ring, _, err := assertion.Rotate(nil, assertion.ES256, now, defaultAssertionKeyRotation, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keys.ring(assertion.ES256).Store(ring)

	short := benchSession(now)
	short.ExpiresAt = now.Add(2 * time.Minute).Unix()
	if c := signer.claimsFor("https://example.com", short, now); c.ExpiresAt != short.ExpiresAt {
		t.Errorf("the assertion of a session ending in 2 minutes expires in %v", time.Duration(c.ExpiresAt-now.Unix())*time.Second)
	}
	long := benchSession(now) // session_lifetime's 12 h
	if c := signer.claimsFor("https://example.com", long, now); c.ExpiresAt != now.Add(time.Hour).Unix() {
		t.Errorf("the assertion of a 12 h session expires in %v, want the 1 h lifetime", time.Duration(c.ExpiresAt-now.Unix())*time.Second)
	}
}

// amr names the factor this module checked ("otp", its TOTP) only when
// it checked it; for a bearer token whose provider said "mfa", the
// assertion says "mfa" and nothing it cannot know.
func TestAssertionAMRSaysOnlyWhatWasChecked(t *testing.T) {
	keys := newAssertionKeys(nil, defaultAssertionKeyRotation, nil)
	signer := newAssertionSigner(&AssertionConfig{}, keys, nil)
	now := time.Now()
	for _, c := range []struct {
		id   string
		mfa  bool
		want []string
	}{
		{newSessionID(), true, []string{"mfa", "otp"}},
		{bearerSessionPrefix + newSessionID(), true, []string{"mfa"}},
		{newSessionID(), false, nil},
		{bearerSessionPrefix + newSessionID(), false, nil},
	} {
		s := benchSession(now)
		s.ID, s.MFA = c.id, c.mfa
		if got := signer.claimsFor("https://example.com", s, now).AMR; !slices.Equal(got, c.want) {
			t.Errorf("session %.7s… with MFA %v: amr %q, want %q", c.id, c.mfa, got, c.want)
		}
	}
}

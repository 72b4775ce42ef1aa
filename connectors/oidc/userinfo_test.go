package oidc

import (
	"reflect"
	"testing"
)

// email and email_verified travel as a pair: userinfo's flag never
// vouches for an address it did not name, and the token's flag never
// vouches for userinfo's address.
func TestMergeUserinfoKeepsEmailAndItsFlagTogether(t *testing.T) {
	for _, tt := range []struct {
		name            string
		token, userinfo map[string]any
		want            map[string]any
	}{
		{"token silent on email: both from userinfo",
			map[string]any{"sub": "s"}, map[string]any{"email": "a@x.example", "email_verified": true, "name": "A"},
			map[string]any{"sub": "s", "email": "a@x.example", "email_verified": true, "name": "A"}},
		{"token's email without a flag, userinfo's flag for another address",
			map[string]any{"email": "ceo@x.example"}, map[string]any{"email": "mallory@y.example", "email_verified": true},
			map[string]any{"email": "ceo@x.example"}},
		{"token's email without a flag, userinfo's flag for the same address",
			map[string]any{"email": "Ann@X.example"}, map[string]any{"email": " ann@x.example", "email_verified": true},
			map[string]any{"email": "Ann@X.example", "email_verified": true}},
		{"userinfo's flag with no address of its own",
			map[string]any{"email": "ann@x.example"}, map[string]any{"email_verified": true},
			map[string]any{"email": "ann@x.example"}},
		{"token's flag with no address, userinfo's unflagged address",
			map[string]any{"email_verified": true}, map[string]any{"email": "mallory@y.example"},
			map[string]any{"email": "mallory@y.example"}},
		{"the token's pair wins",
			map[string]any{"email": "ann@x.example", "email_verified": false}, map[string]any{"email": "ann@x.example", "email_verified": true},
			map[string]any{"email": "ann@x.example", "email_verified": false}},
		{"Unicode folding is another address",
			map[string]any{"email": "kate@x.example"}, map[string]any{"email": "\u212Aate@x.example", "email_verified": true},
			map[string]any{"email": "kate@x.example"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mergeUserinfo(tt.token, tt.userinfo)
			if !reflect.DeepEqual(tt.token, tt.want) {
				t.Errorf("merged %v, want %v", tt.token, tt.want)
			}
		})
	}
}

// The userinfo answer is not signed: what describes the sign-in (the
// provider session, the authentication's strength and time, the
// token's issuer, audience, nonce, hashes and lifetime) comes from the
// ID token or not at all; what describes the user fills in as before.
func TestMergeUserinfoTakesNoProtocolClaims(t *testing.T) {
	token := map[string]any{"sub": "s", "iss": "https://idp.example"}
	userinfo := map[string]any{"sub": "s", "name": "A", "groups": []any{"g"}, "locale": "de"}
	for _, k := range []string{"iss", "aud", "azp", "nonce", "exp", "iat", "nbf", "auth_time", "acr", "amr",
		"at_hash", "c_hash", "jti", "sid", "_claim_names", "_claim_sources"} {
		userinfo[k] = "from userinfo"
	}
	mergeUserinfo(token, userinfo)
	want := map[string]any{"sub": "s", "iss": "https://idp.example", "name": "A", "groups": []any{"g"}, "locale": "de"}
	if !reflect.DeepEqual(token, want) {
		t.Errorf("merged %v, want %v", token, want)
	}
	// A refresh answered without an ID token: the claims are userinfo's
	// (its sub is the subject, checked as such), without the protocol
	// claims.
	claims := map[string]any{}
	mergeUserinfo(claims, userinfo)
	if want := map[string]any{"sub": "s", "name": "A", "groups": []any{"g"}, "locale": "de"}; !reflect.DeepEqual(claims, want) {
		t.Errorf("merged %v, want %v", claims, want)
	}
}

package oidc

import (
	"slices"
	"strings"
)

// userinfoProtocolClaims describe the sign-in or a token, not the user:
// they come from the (signed) ID token or not at all, never from the
// userinfo answer, which only TLS vouches for. sid in particular names
// the provider session a back-channel logout ends. sub is not among
// them: userinfo's must equal the token's, or is the subject of a
// refresh answered without an ID token.
var userinfoProtocolClaims = []string{"iss", "aud", "azp", "nonce", "exp", "iat", "nbf", "auth_time", "acr", "amr",
	"at_hash", "c_hash", "jti", "sid", "_claim_names", "_claim_sources"}

// mergeUserinfo adds what the userinfo endpoint says about the user to
// the ID token's claims where the token is silent: the token's own
// claims win, as they are signed, and userinfoProtocolClaims are never
// taken from userinfo. email and email_verified are one fact, so they come as a
// pair from one source: userinfo's email_verified vouches for the
// token's email only when userinfo speaks of the same address, and a
// token's email_verified with no email of its own vouches for nothing
// userinfo names.
func mergeUserinfo(claims, userinfo map[string]any) {
	for k, v := range userinfo {
		if _, ok := claims[k]; !ok && k != "email" && k != "email_verified" && !slices.Contains(userinfoProtocolClaims, k) {
			claims[k] = v
		}
	}
	email, hasEmail := claims["email"]
	_, hasFlag := claims["email_verified"]
	switch {
	case !hasEmail:
		if e, ok := userinfo["email"]; ok {
			claims["email"] = e
			delete(claims, "email_verified")
			if v, ok := userinfo["email_verified"]; ok {
				claims["email_verified"] = v
			}
		}
	case !hasFlag:
		if v, ok := userinfo["email_verified"]; ok && sameAddress(email, userinfo["email"]) {
			claims["email_verified"] = v
		}
	}
}

// sameAddress reports whether a and b are one email address as claims
// carry it: strings equal but for outer spaces and ASCII letter case
// (the folding the rest of jit_auth applies to addresses).
func sameAddress(a, b any) bool {
	as, ok1 := a.(string)
	bs, ok2 := b.(string)
	if !ok1 || !ok2 {
		return false
	}
	as, bs = strings.TrimSpace(as), strings.TrimSpace(bs)
	if len(as) != len(bs) || as == "" {
		return false
	}
	for i := 0; i < len(as); i++ {
		x, y := as[i], bs[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

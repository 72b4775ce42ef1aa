package oidc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jitauth/caddy-jitauth/connector"
)

// structClaims are the claims read from an ID token, userinfo answer or
// bearer token into a Go struct, by go-oidc (its verification and
// IDToken, UserInfo) or by jit_auth (a session's sid, a bearer's exp and
// amr): encoding/json matches those keys without regard to letter case
// (with Unicode folding: "ſub" is sub), the last of several winning,
// while the claims jit_auth maps and passes on are read as a map, by
// exact key.
var structClaims = []string{"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "at_hash", "azp", "sid", "amr", "jti", "_claim_names", "_claim_sources"}

// logoutTokenClaims are the claims VerifyLogoutToken reads into a
// struct: structClaims and the events claim, which only a logout token
// is read for (another token's "Events" says nothing jit_auth reads).
var logoutTokenClaims = append(slices.Clip(structClaims), "events")

// claimsOf is the claims of a verified token or userinfo answer (what)
// as a map, refused when its JSON has a key twice, or one of read (the
// claims read into a struct: structClaims, logoutTokenClaims) spelled
// otherwise: the identity (the subject go-oidc read) and the claims
// (what {claims.sub} and mappings read) would then disagree, and a
// provider that lets users add claims would let one user's claims name
// another.
func claimsOf(what string, src interface{ Claims(any) error }, read []string) (map[string]any, error) {
	var raw json.RawMessage
	if err := src.Claims(&raw); err != nil {
		return nil, fmt.Errorf("%w: %s claims: %v", connector.ErrRejected, what, err)
	}
	if err := checkClaimKeys(raw, read); err != nil {
		return nil, fmt.Errorf("%w: %s %v", connector.ErrRejected, what, err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, fmt.Errorf("%w: %s claims: %v", connector.ErrRejected, what, err)
	}
	return claims, nil
}

// checkClaimKeys checks the keys of the JSON object raw (not those of
// the objects inside it, which no struct reads) against the claims read
// into a struct.
func checkClaimKeys(raw []byte, read []string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("claims are not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("claims: %v", err)
		}
		key, _ := t.(string)
		if seen[key] {
			return fmt.Errorf("has the claim %q twice", connector.Said(key, ""))
		}
		seen[key] = true
		for _, c := range read {
			if key != c && strings.EqualFold(key, c) {
				return fmt.Errorf("has a claim %q, which reads as %q: the provider must spell it %q exactly", connector.Said(key, ""), c, c)
			}
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return fmt.Errorf("claims: %v", err)
		}
	}
	return nil
}

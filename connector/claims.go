package connector

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// ClaimsFromMap reads the standard OpenID Connect claims of a verified
// claim set. Odd types are ignored rather than trusted: email_verified
// counts only as the boolean true or the string "true" (some providers
// send strings). The whole map becomes the raw claims.
func ClaimsFromMap(issuer, subject string, m map[string]any) (provisioner.Claims, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return provisioner.Claims{}, fmt.Errorf("%w: claims: %v", ErrRejected, err)
	}
	c := provisioner.Claims{
		Issuer:        issuer,
		Subject:       subject,
		Email:         StringClaim(m, "email"),
		EmailVerified: BoolClaim(m, "email_verified"),
		// Present with a type we cannot read counts as said (false):
		// trust_email must not overrule a provider's odd "no".
		EmailVerifiedKnown: m["email_verified"] != nil,
		Name:               StringClaim(m, "name"),
		GivenName:          StringClaim(m, "given_name"),
		FamilyName:         StringClaim(m, "family_name"),
		PreferredUsername:  StringClaim(m, "preferred_username"),
		Picture:            StringClaim(m, "picture"),
		Groups:             StringsClaim(m, "groups"),
		Raw:                raw,
	}
	if c.Subject == "" {
		return provisioner.Claims{}, fmt.Errorf("%w: no subject", ErrRejected)
	}
	if c.Name == "" {
		c.Name = strings.TrimSpace(c.GivenName + " " + c.FamilyName)
	}
	return c, nil
}

// StringClaim is m[k] if it is a string, else "".
func StringClaim(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// BoolClaim is m[k] if it is the boolean true or the string "true".
func BoolClaim(m map[string]any, k string) bool {
	switch v := m[k].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// StringsClaim reads a string or a list of strings; empty strings and
// other types are left out.
func StringsClaim(m map[string]any, k string) []string {
	switch v := m[k].(type) {
	case string:
		if v != "" {
			return []string{v}
		}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

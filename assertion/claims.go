package assertion

import (
	"encoding/json"
	"fmt"
	"regexp"
)

// Claims is what an assertion says about the user. Registered claims
// (RFC 7519) and the profile claims of OpenID Connect keep their usual
// names, so an upstream's JWT library reads them as it would an ID token.
type Claims struct {
	Issuer    string `json:"iss"`
	Audience  string `json:"aud"`
	Subject   string `json:"sub"`
	IssuedAt  int64  `json:"iat"`
	ExpiresAt int64  `json:"exp"`

	Username      string   `json:"username"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	Roles         []string `json:"roles,omitempty"`
	Connection    string   `json:"connection"`
	// AMR lists the authentication methods (RFC 8176): "mfa" and "otp"
	// after the second factor, empty before.
	AMR []string `json:"amr,omitempty"`

	// Attributes are the mapped attributes the application chose, as
	// top-level claims of their own names.
	Attributes map[string]string `json:"-"`
}

// reserved are the claims an attribute may not replace.
var reserved = map[string]bool{
	"iss": true, "aud": true, "sub": true, "iat": true, "exp": true, "nbf": true, "jti": true,
	"username": true, "email": true, "email_verified": true, "name": true, "groups": true,
	"roles": true, "connection": true, "amr": true, "acr": true, "azp": true, "nonce": true,
}

var claimName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// CheckAttributeClaim says what is wrong with an attribute chosen as a
// claim: it must be a plain lower-case name and not one the assertion
// sets itself.
func CheckAttributeClaim(name string) error {
	if !claimName.MatchString(name) {
		return fmt.Errorf("claim %q: use a lower-case attribute name (a-z, 0-9, _)", name)
	}
	if reserved[name] {
		return fmt.Errorf("claim %q is one the assertion sets itself; choose another attribute", name)
	}
	return nil
}

// MarshalJSON writes the claims with the attributes beside them.
func (c Claims) MarshalJSON() ([]byte, error) {
	type plain Claims
	base, err := json.Marshal(plain(c))
	if err != nil || len(c.Attributes) == 0 {
		return base, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(base, &m); err != nil {
		return nil, err
	}
	for k, v := range c.Attributes {
		if !reserved[k] {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

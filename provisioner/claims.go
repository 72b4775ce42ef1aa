package provisioner

import "time"

// Claims is what a provider asserted about the user in a positive
// authentication response, already normalised by the connector that
// spoke to the provider. Only these fields feed provisioning; Raw keeps
// the provider's own claims for mapping and for the identity record.
type Claims struct {
	// Issuer and Subject identify the user at the provider. Subject is
	// required; Issuer is the OpenID Connect issuer or the provider name.
	Issuer  string
	Subject string

	Email string
	// EmailVerified is true only when the provider asserted it; a
	// missing claim is false.
	EmailVerified bool
	// EmailVerifiedKnown is true when the provider said whether the
	// email is verified (either way); only then does a connection's
	// trust_email not apply.
	EmailVerifiedKnown bool
	Name               string
	GivenName          string
	FamilyName         string
	PreferredUsername  string
	Picture            string
	Groups             []string

	// Raw holds the provider's claims as it sent them, as one JSON
	// object: {claims.<path>} mappings read it. Anything else (a SAML
	// assertion's XML) is stored as {"raw": "<text>"}, and no mapping
	// reads into it.
	Raw []byte

	// IDToken is the raw OpenID Connect ID token, when the protocol has
	// one: kept (sealed) for logout at the provider, which wants it as
	// id_token_hint. Provisioning ignores it.
	IDToken string

	// RefreshToken and TokenExpiry are the login's refresh token and
	// when its tokens expire, when the provider issued one: kept (sealed)
	// for a connection that refreshes sessions. Provisioning ignores them.
	RefreshToken string
	TokenExpiry  time.Time
}

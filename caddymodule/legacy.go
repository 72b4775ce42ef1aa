package caddymodule

import (
	"errors"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/jitauth/caddy-jitauth/connectors/goth"
	"github.com/jitauth/caddy-jitauth/connectors/oidc"
)

// Connections written before connectors were modules name their
// provider in "oidc" or "provider" (and its scopes in "scopes") on the
// connection itself, in JSON and in the Caddyfile. They keep loading:
// this file is the one place that brings them to a connector, as the
// Caddyfile and JSON of today would write it. The deprecated JSON fields
// are translated when the config loads; the Caddyfile adapter writes the
// new form.

// OIDCConfig is the "oidc" object of a connection of the legacy form.
//
// Deprecated: use the oidc connector (package connectors/oidc).
type OIDCConfig struct {
	// Issuer is the OpenID Connect issuer URL.
	Issuer string `json:"issuer,omitempty"`
	// ClientID is the client ID at the issuer.
	ClientID string `json:"client_id,omitempty"`
	// ClientSecret is the client secret, best as a placeholder.
	ClientSecret string `json:"client_secret,omitempty"`
}

// ProviderConfig is the "provider" object of a connection of the legacy
// form: a goth provider by name.
//
// Deprecated: use the goth connector (package connectors/goth).
type ProviderConfig struct {
	// Name is the goth provider.
	Name string `json:"name,omitempty"`
	// Key is the OAuth client ID.
	Key string `json:"key,omitempty"`
	// Secret is the OAuth client secret, best as a placeholder.
	Secret string `json:"secret,omitempty"`
	// BaseURL is the provider's own address (Okta, Auth0, Nextcloud).
	BaseURL string `json:"base_url,omitempty"`
	// AuthURL replaces the authorization endpoint.
	AuthURL string `json:"auth_url,omitempty"`
	// TokenURL replaces the token endpoint.
	TokenURL string `json:"token_url,omitempty"`
	// ProfileURL replaces the profile endpoint.
	ProfileURL string `json:"profile_url,omitempty"`
	// EmailURL replaces GitHub's email endpoint.
	EmailURL string `json:"email_url,omitempty"`
}

// translateLegacy turns the legacy "oidc" / "provider" / "scopes" fields
// into c.ConnectorRaw and clears them.
func (c *Connection) translateLegacy() error {
	legacy := c.OIDC != nil || c.Provider != nil
	switch {
	case c.OIDC != nil && c.Provider != nil:
		return errors.New("has both oidc and provider; a connection is one identity provider, split it into two connections")
	case legacy && c.ConnectorRaw != nil:
		return errors.New("has a connector and the older oidc or provider field; keep only the connector")
	case !legacy && len(c.Scopes) > 0:
		return errors.New("scopes belong in the connector (its 'scopes' option)")
	case !legacy:
		return nil
	}
	var mod any
	kind := "oidc"
	if o := c.OIDC; o != nil {
		mod = &oidc.OIDC{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, Scopes: c.Scopes}
	} else {
		p := c.Provider
		kind = "goth"
		mod = &goth.Goth{Provider: p.Name, Key: p.Key, Secret: p.Secret, BaseURL: p.BaseURL,
			AuthURL: p.AuthURL, TokenURL: p.TokenURL, ProfileURL: p.ProfileURL, EmailURL: p.EmailURL, Scopes: c.Scopes}
	}
	c.ConnectorRaw = caddyconfig.JSONModuleObject(mod, "kind", kind, nil)
	c.OIDC, c.Provider, c.Scopes = nil, nil, nil
	return nil
}

// connectorKind maps the word that opens a connector in a Caddyfile
// connection to its module's name: each jit_auth.connectors module by
// its own name, and "provider", the legacy word for goth.
func connectorKind(word string) string {
	if word == "provider" {
		return "goth"
	}
	return word
}

// legacyConnectionOption reports whether word is one of the connector
// options that the legacy Caddyfile form wrote at the connection level,
// beside 'oidc' or 'provider': scopes for both, the URLs for goth.
func legacyConnectionOption(word string) bool {
	switch word {
	case "scopes", "base_url", "auth_url", "token_url", "profile_url", "email_url":
		return true
	}
	return false
}

// optionUnmarshaler is a connector that reads one line of its block at
// a time, as the shipped connectors do; those lines may then also stand
// at the connection level, as in the legacy form.
type optionUnmarshaler interface {
	UnmarshalOption(d *caddyfile.Dispenser) error
}

// applyLegacyOptions hands the connection-level connector lines of the
// legacy Caddyfile form (each a dispenser over its own line) to the
// connector the connection opened.
func applyLegacyOptions(d *caddyfile.Dispenser, mod caddyfile.Unmarshaler, kind string, lines []*caddyfile.Dispenser) error {
	if len(lines) == 0 {
		return nil
	}
	if mod == nil {
		lines[0].Next()
		if lines[0].Val() == "scopes" && len(lines) == 1 {
			// Nothing to request them from: the connection's check says
			// what is missing.
			return nil
		}
		return d.Errf("base_url, auth_url, token_url, profile_url and email_url belong with a 'provider <name> <key> <secret>' line")
	}
	u, ok := mod.(optionUnmarshaler)
	if !ok {
		return d.Errf("connector %s takes its options inside its own block, not at the connection level", kind)
	}
	for _, l := range lines {
		l.Next()
		if err := u.UnmarshalOption(l); err != nil {
			return err
		}
	}
	return nil
}

package caddymodule

import (
	"context"
	"errors"
	"net/url"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// connector speaks one provider's protocol for one connection.
type connector interface {
	// authURL fills the provider-specific parts of f (PKCE verifier,
	// nonce, provider session) and returns where to send the browser.
	authURL(ctx context.Context, f *flowState) (string, error)
	// exchange completes a login at the callback: it redeems the code in
	// query, verifies what the provider says, and returns the claims.
	exchange(ctx context.Context, f *flowState, query url.Values) (provisioner.Claims, error)
}

// Errors a connector returns; the callback maps them to status codes.
var (
	// errProviderUnavailable: the provider could not be reached or
	// answered with a server error (502).
	errProviderUnavailable = errors.New("identity provider unavailable")
	// errProviderRejected: the provider's answer failed verification, or
	// the provider refused the code (401).
	errProviderRejected = errors.New("identity provider response rejected")
)

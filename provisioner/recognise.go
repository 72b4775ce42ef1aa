package provisioner

import (
	"context"
	"errors"
	"fmt"
)

// ErrNotProvisioned: the identity has no local user, and the caller may
// not create one (a bearer token, which never signs anyone up).
var ErrNotProvisioned = errors.New("identity has no local user")

// OutcomeRecognised: an existing user was found and nothing was written.
const OutcomeRecognised Outcome = "recognised"

// Recognise names the user of a verified response without writing
// anything: with JIT off as Provision would (the session name from the
// claims), with JIT on the local user linked to the identity. It never
// creates, links or updates a user, so what a bearer token says cannot
// change the directory. A disabled user is ErrUserDisabled; an identity
// that has no user yet is ErrNotProvisioned.
func (p *Provisioner) Recognise(ctx context.Context, req Request) (Result, error) {
	pol := req.Policy
	if pol == nil || !pol.Enabled {
		return p.provision(ctx, req, false)
	}
	c := req.Claims
	if c.Subject == "" {
		return Result{}, fmt.Errorf("%w: no subject", ErrInvalidClaims)
	}
	profile := pol.MapProfile(req.Connection, c)
	u, err := p.Store.UserByIdentity(ctx, IdentityKey{Connection: req.Connection, Issuer: c.Issuer, Subject: c.Subject})
	switch {
	case errors.Is(err, ErrNotFound):
		return Result{}, ErrNotProvisioned
	case err != nil:
		return Result{}, fmt.Errorf("%w: looking up identity: %w", ErrStoreUnavailable, err)
	case u.Status == StatusDisabled:
		return Result{}, disabled(u)
	}
	return Result{Outcome: OutcomeRecognised, User: u, Profile: profile, Roles: u.Roles(), Username: u.Username}, nil
}

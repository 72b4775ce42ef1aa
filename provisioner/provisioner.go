// Package provisioner decides what Just-in-Time provisioning does with a
// positive authentication response, and defines the Store that keeps the
// resulting local users. It has no knowledge of Caddy or HTTP.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Mode is how a connection provisions new users.
type Mode string

// ModeSilent provisions without asking the user.
const ModeSilent Mode = "silent"

// Policy is one connection's JIT configuration.
type Policy struct {
	// Enabled turns JIT provisioning on. Off, nothing about the user is
	// stored and identity comes from the session alone.
	Enabled bool
	// Mode is how new users are provisioned; empty means silent.
	Mode Mode
}

// Outcome says what provisioning did.
type Outcome string

const (
	// OutcomeNotStored: JIT is off; nothing was written.
	OutcomeNotStored Outcome = "not_stored"
	// OutcomeCreated: a new local user and identity were created.
	OutcomeCreated Outcome = "created"
	// OutcomeUpdated: an existing user's login was recorded.
	OutcomeUpdated Outcome = "updated"
)

// Errors that end a login. Each is meant to be shown to the user as a
// clear page; wrap-checking with errors.Is.
var (
	// ErrUserDisabled: the local user exists and is disabled.
	ErrUserDisabled = errors.New("user is disabled")
	// ErrUsernameConflict: a new identity's username belongs to another
	// local user, and nothing links them.
	ErrUsernameConflict = errors.New("username belongs to another account")
	// ErrInvalidClaims: the provider's response lacks what provisioning
	// needs (a subject, a usable username).
	ErrInvalidClaims = errors.New("provider response is missing required claims")
	// ErrStoreUnavailable wraps a store failure: login fails closed.
	ErrStoreUnavailable = errors.New("user store unavailable")
)

// Result is the outcome of Provision.
type Result struct {
	Outcome Outcome
	// User is the local user; nil when Outcome is OutcomeNotStored.
	User *User
}

// Provisioner applies connection policies against a store.
type Provisioner struct {
	Store Store
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Provision runs JIT for one positive authentication response through
// connection under policy. It is idempotent and safe under concurrency:
// concurrent first logins of one identity yield exactly one user.
func (p *Provisioner) Provision(ctx context.Context, connection string, policy Policy, c Claims) (Result, error) {
	if c.Subject == "" {
		return Result{}, fmt.Errorf("%w: no subject", ErrInvalidClaims)
	}
	if !policy.Enabled {
		return Result{Outcome: OutcomeNotStored}, nil
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	key := IdentityKey{Connection: connection, Issuer: c.Issuer, Subject: c.Subject}
	profile := c.Profile()

	// Two passes at most: a concurrent first login may create the user
	// between our lookup and our insert; then the second pass finds it.
	for attempt := 0; attempt < 2; attempt++ {
		u, err := p.Store.UserByIdentity(ctx, key)
		switch {
		case err == nil:
			if u.Status == StatusDisabled {
				return Result{}, ErrUserDisabled
			}
			u, err = p.Store.RecordLogin(ctx, key, &profile, c.Raw, now().UTC())
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile: provision afresh
			}
			if err != nil {
				return Result{}, fmt.Errorf("%w: recording login: %v", ErrStoreUnavailable, err)
			}
			if u.Status == StatusDisabled {
				return Result{}, ErrUserDisabled
			}
			return Result{Outcome: OutcomeUpdated, User: u}, nil
		case !errors.Is(err, ErrNotFound):
			return Result{}, fmt.Errorf("%w: looking up identity: %v", ErrStoreUnavailable, err)
		}

		username := usernameFromClaims(connection, c)
		if username == "" {
			return Result{}, fmt.Errorf("%w: no usable username", ErrInvalidClaims)
		}
		at := now().UTC()
		nu := &User{
			Username:      username,
			Email:         profile.Email,
			EmailVerified: profile.EmailVerified,
			Name:          profile.Name,
			GivenName:     profile.GivenName,
			FamilyName:    profile.FamilyName,
			Picture:       profile.Picture,
			Groups:        profile.Groups,
			Attributes:    profile.Attributes,
			LastLoginAt:   at,
		}
		ident := Identity{IdentityKey: key, RawClaims: c.Raw, CreatedAt: at, LastLoginAt: at}
		created, err := p.Store.CreateUser(ctx, nu, ident)
		switch {
		case err == nil:
			return Result{Outcome: OutcomeCreated, User: created}, nil
		case errors.Is(err, ErrIdentityExists):
			continue
		case errors.Is(err, ErrUsernameTaken):
			// A concurrent first login of this same identity takes the
			// same username; only someone else's account is a conflict.
			if _, err := p.Store.UserByIdentity(ctx, key); err == nil {
				continue
			}
			return Result{}, ErrUsernameConflict
		default:
			return Result{}, fmt.Errorf("%w: creating user: %v", ErrStoreUnavailable, err)
		}
	}
	return Result{}, fmt.Errorf("%w: identity changed concurrently, try again", ErrStoreUnavailable)
}

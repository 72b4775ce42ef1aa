// Package login holds the rule for how a login ends once the provider's
// answer is verified and provisioning has run: ask the user first, refuse
// the account, require the second factor, or sign in. It is plain Go with
// no Caddy imports, like provisioner (which decides what the store holds)
// and mfa (which decides about codes); the HTTP handlers gather the facts,
// call Next, and render what it says.
package login

import "github.com/jitauth/caddy-jitauth/provisioner"

// Step is what a login does next.
type Step int

const (
	// Ask holds the login (nothing is stored, no session exists) and asks
	// the user to consent or to choose a username; the answer runs
	// provisioning again, and then Next again.
	Ask Step = iota
	// Deny ends the login without a session: the application's allow
	// rules do not admit the account.
	Deny
	// NoLocalUser ends the login without a session: the application
	// requires a second factor, which is kept on a local user, and this
	// login has none (a connection with JIT off).
	NoLocalUser
	// SecondFactor issues a session that still owes the second factor
	// and reaches only the MFA page until it is passed.
	SecondFactor
	// SignIn issues the session and goes on to where the login started.
	SignIn
)

func (s Step) String() string {
	switch s {
	case Ask:
		return "ask"
	case Deny:
		return "deny"
	case NoLocalUser:
		return "no local user"
	case SecondFactor:
		return "second factor"
	case SignIn:
		return "sign in"
	}
	return "unknown"
}

// Facts are what Next decides from.
type Facts struct {
	// Outcome is what provisioning did, or that it must ask first.
	Outcome provisioner.Outcome
	// Allowed is whether the application's allow rules admit the
	// session this login would get.
	Allowed bool
	// MFARequired is whether the application requires a second factor of
	// this login's connection.
	MFARequired bool
	// Provisioned is whether the login has a local user.
	Provisioned bool
}

// Next decides the step. The order is the rule: the user's answer comes
// before anything else (no session, and no allow check on a profile the
// user has not agreed to store); an account the site does not admit is
// refused before it is asked for a second factor, so the MFA page never
// tells a refused user that a factor is set up; a second factor needs a
// local user to keep it on.
func Next(f Facts) Step {
	switch {
	case f.Outcome == provisioner.OutcomeNeedsConsent || f.Outcome == provisioner.OutcomeNeedsUsername:
		return Ask
	case !f.Allowed:
		return Deny
	case f.MFARequired && !f.Provisioned:
		return NoLocalUser
	case f.MFARequired:
		return SecondFactor
	}
	return SignIn
}

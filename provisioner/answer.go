package provisioner

import (
	"context"
	"errors"
)

// Answer is a user's answer on the consent or username page of a login
// that Provision paused (OutcomeNeedsConsent, OutcomeNeedsUsername).
type Answer struct {
	// Allow is true for Allow (or Create account), false for Decline.
	Allow bool
	// Asked is the outcome that paused the login: only a login paused
	// for a username takes the username typed.
	Asked Outcome
	// Username is what the user typed in the username field.
	Username string
}

// AnswerOutcome is what an answer came to.
type AnswerOutcome int

const (
	// AnswerDeclined: the user declined; nothing was stored.
	AnswerDeclined AnswerOutcome = iota
	// AnswerNeedsUsername: asked for a username, none was given; ask
	// again.
	AnswerNeedsUsername
	// AnswerUsernameTaken: the chosen username is another user's; ask
	// again.
	AnswerUsernameTaken
	// AnswerUsernameRefused: the chosen username breaks the rules (the
	// error says which); ask again.
	AnswerUsernameRefused
	// AnswerProvisioned: Provision ran with the consent given; its
	// Result says what it did (and may pause again if the connection's
	// policy changed meanwhile).
	AnswerProvisioned
)

// Answer applies a user's answer to a paused login: a decline stores
// nothing; an allow provisions with the consent the page offered (and
// the username, when one was asked for). Username problems are outcomes
// to ask again with; any other error ends the login.
func (p *Provisioner) Answer(ctx context.Context, req Request, a Answer) (AnswerOutcome, Result, error) {
	if !a.Allow {
		return AnswerDeclined, Result{}, nil
	}
	if a.Asked == OutcomeNeedsUsername {
		if a.Username == "" {
			return AnswerNeedsUsername, Result{}, nil
		}
		req.Username = a.Username
	}
	res, err := p.Provision(ctx, req)
	switch {
	case errors.Is(err, ErrUsernameTaken):
		return AnswerUsernameTaken, Result{}, nil
	case errors.Is(err, ErrUsernameInvalid):
		return AnswerUsernameRefused, Result{}, err
	case err != nil:
		return AnswerProvisioned, Result{}, err
	}
	return AnswerProvisioned, res, nil
}

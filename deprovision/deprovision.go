// Package deprovision decides which users of the directory have stopped
// signing in through a connection long enough to be disabled or
// deleted, and walks the directory for them in pages. It knows nothing
// of Caddy: jit_auth runs a sweep in the background on one instance of
// those sharing a store, and applies each action as an administrator's
// would be, with its audit event and metric.
package deprovision

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Action is what happens to an inactive user.
type Action string

const (
	// Disable refuses the user's logins and ends their sessions; an
	// administrator can enable the user again.
	Disable Action = "disable"
	// Delete removes the user with everything kept of them; a later
	// login through a JIT connection creates a new user.
	Delete Action = "delete"
)

// Policy is one connection's rule for inactive users.
type Policy struct {
	// Connection is the connection whose users the rule covers: those
	// with an identity through it.
	Connection string
	// After is how long without a login (through any connection) makes
	// a user inactive. A user who never logged in counts from creation,
	// and an active user from an administrator's enable if that is
	// later (see LastActive).
	After time.Duration
	// Action is what happens to an inactive user.
	Action Action
	// IncludeLocalRoles also covers users holding a role granted
	// locally, whom the rule otherwise leaves alone: an administrator
	// gave them something the provider does not know of.
	IncludeLocalRoles bool
	// IncludeKept also covers users whose Keep flag is set.
	IncludeKept bool
}

// Check says what is wrong with p, if anything.
func (p Policy) Check() error {
	if p.After <= 0 {
		return errors.New("after must be a positive duration, e.g. 90d")
	}
	if p.Action != Disable && p.Action != Delete {
		return fmt.Errorf("action %q: use disable or delete", p.Action)
	}
	return nil
}

// Cutoff is the time of last activity (LastActive) before which a user
// is inactive at now.
func (p Policy) Cutoff(now time.Time) time.Time { return now.Add(-p.After) }

// LastActive is when u was last active: the last login (creation if
// none) or, for an active user, the last change of status (to active,
// then: an administrator's enable) if that is later. Without the
// enable, a user enabled again after a rule disabled them would be
// disabled again by the next sweep, which sees the same old login.
func LastActive(u *provisioner.User) time.Time {
	seen := u.LastLoginAt
	if seen.IsZero() {
		seen = u.CreatedAt
	}
	if u.Status == provisioner.StatusActive && u.StatusChangedAt.After(seen) {
		seen = u.StatusChangedAt
	}
	return seen
}

// Due reports whether p acts on u at now. It does not check that u has
// an identity through p's connection; the store's query does.
func (p Policy) Due(u *provisioner.User, now time.Time) bool {
	switch {
	case !LastActive(u).Before(p.Cutoff(now)):
		return false
	case p.Action == Disable && u.Status != provisioner.StatusActive:
		return false
	case u.Keep && !p.IncludeKept:
		return false
	case len(u.RoleGrants[provisioner.RoleSourceLocal]) > 0 && !p.IncludeLocalRoles:
		return false
	}
	return true
}

// DueAt is Due at now as a store's condition, for applying the action
// only to a user still due as the store has them.
func (p Policy) DueAt(now time.Time) provisioner.UserCondition {
	return func(u *provisioner.User) bool { return p.Due(u, now) }
}

// Reason is the status reason a disabled user is given.
func (p Policy) Reason() string {
	return fmt.Sprintf("no login for %s (deprovision of connection %s)", formatDuration(p.After), p.Connection)
}

// formatDuration writes whole days as days, which is how operators set
// the rule.
func formatDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// PageSize is how many users Sweep reads from the store at a time.
const PageSize = 200

// Sweep walks the users of p's connection not active since p's cutoff
// at now, page by page, and calls act for each one p is due on; act
// applies the action (and may fail for one user without ending the
// sweep: it is logged by the caller and retried by the next sweep).
// The page is read before act runs, so a user may have signed in (or
// been enabled or exempted) meanwhile: act must apply the action only
// if the user is still due (AdminStore.SetStatusIf, DeleteUserIf with
// DueAt).
// Between pages it calls between, which may renew a lease or pause,
// and stops the sweep by returning an error. It returns how many users
// act was called for.
func Sweep(ctx context.Context, s provisioner.AdminStore, p Policy, now time.Time, act func(*provisioner.User), between func() error) (int, error) {
	if err := p.Check(); err != nil {
		return 0, err
	}
	cutoff := p.Cutoff(now)
	q := provisioner.UserQuery{Connection: p.Connection, SeenBefore: cutoff, NotEnabledSince: cutoff, Limit: PageSize}
	if p.Action == Disable {
		q.Status = provisioner.StatusActive
	}
	n := 0
	for {
		page, err := s.SearchUsers(ctx, q)
		if err != nil {
			return n, err
		}
		for i := range page {
			if p.Due(&page[i], now) {
				act(&page[i])
				n++
			}
		}
		if len(page) < PageSize {
			return n, nil
		}
		q.After = provisioner.NormalizeUsername(page[len(page)-1].Username)
		if between != nil {
			if err := between(); err != nil {
				return n, err
			}
		}
	}
}

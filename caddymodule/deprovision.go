package caddymodule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/deprovision"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// DeprovisionConfig disables or deletes the users of a connection who
// have not logged in for a while. One instance of those sharing the
// store looks for them (a lease in the store decides which), in the
// background, a page at a time; each change is audited, counted in
// jit_auth_deprovisioned_total and emitted as the user_disabled or
// user_deleted Caddy event, and ends the user's sessions as an
// administrator's would.
type DeprovisionConfig struct {
	// After is how long without a login, through any connection, makes
	// a user inactive, e.g. "90d". Required.
	After caddy.Duration `json:"after,omitempty"`
	// Action is "disable" (the default: the user's logins are refused
	// until an administrator enables them) or "delete" (the user and
	// everything kept of them are removed; a later login creates a new
	// user; the username is retired, for no other identity to get).
	Action string `json:"action,omitempty"`
	// Every is how often inactive users are looked for; default 1h.
	Every caddy.Duration `json:"every,omitempty"`
	// IncludeLocalRoles also covers users holding a locally granted
	// role, whom deprovisioning otherwise never touches.
	IncludeLocalRoles bool `json:"include_local_roles,omitempty"`
	// IncludeKept also covers users an administrator marked "keep".
	IncludeKept bool `json:"include_kept,omitempty"`
}

// minDeprovisionAfterUnwarned is the shortest inactivity that deprovisions
// without a warning at load.
const minDeprovisionAfterUnwarned = 24 * time.Hour

// defaultDeprovisionEvery is how often inactive users are looked for.
const defaultDeprovisionEvery = time.Hour

// policy is the rule of connection name, checked.
func (d *DeprovisionConfig) policy(name string) (deprovision.Policy, error) {
	p := deprovision.Policy{
		Connection:        name,
		After:             time.Duration(d.After),
		Action:            deprovision.Action(d.Action),
		IncludeLocalRoles: d.IncludeLocalRoles,
		IncludeKept:       d.IncludeKept,
	}
	if p.Action == "" {
		p.Action = deprovision.Disable
	}
	if err := p.Check(); err != nil {
		return p, fmt.Errorf("deprovision: %v", err)
	}
	if d.Every < 0 {
		return p, errors.New("deprovision: every must be a positive duration, e.g. 1h")
	}
	if d.Every > 0 && time.Duration(d.Every) < time.Second {
		// Each wake writes the lease and searches the directory.
		return p, fmt.Errorf("deprovision: every %s is too short; use at least 1s, e.g. 1h", time.Duration(d.Every))
	}
	return p, nil
}

func (d *DeprovisionConfig) every() time.Duration {
	if d.Every == 0 {
		return defaultDeprovisionEvery
	}
	return time.Duration(d.Every)
}

// parseDeprovision reads
//
//	deprovision {
//		after <duration>
//		action disable|delete
//		every <duration>
//		include_local_roles
//		include_kept
//	}
func parseDeprovision(d *caddyfile.Dispenser) (*DeprovisionConfig, error) {
	if d.NextArg() {
		return nil, d.Errf("deprovision takes a block: deprovision { after 90d; action disable }")
	}
	c := &DeprovisionConfig{}
	duration := func() (caddy.Duration, error) {
		opt := d.Val()
		var s string
		if !d.AllArgs(&s) {
			return 0, d.ArgErr()
		}
		v, err := caddy.ParseDuration(s)
		if err != nil || v <= 0 {
			return 0, d.Errf("%s %s: use a positive duration such as 90d, 12h or 30m", opt, s)
		}
		return caddy.Duration(v), nil
	}
	var err error
	once := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := once.check(d, "after", "every", "action", "include_local_roles", "include_kept"); err != nil {
			return nil, err
		}
		switch d.Val() {
		case "after":
			c.After, err = duration()
		case "every":
			c.Every, err = duration()
		case "action":
			if !d.AllArgs(&c.Action) {
				return nil, d.ArgErr()
			}
		case "include_local_roles":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			c.IncludeLocalRoles = true
		case "include_kept":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			c.IncludeKept = true
		default:
			return nil, d.Errf("unknown deprovision option %q; expected after, action, every, include_local_roles or include_kept", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	if c.After == 0 {
		return nil, d.Err("deprovision needs 'after <duration>', e.g. after 90d")
	}
	return c, nil
}

// deprovisionLease is the store lease whose holder runs the sweeps.
const deprovisionLease = "jit_auth.deprovision"

// deprovisionRule is one connection's rule as the sweeper runs it.
type deprovisionRule struct {
	policy deprovision.Policy
	every  time.Duration
}

// sweeper runs one configuration's deprovisioning rules.
type sweeper struct {
	admin provisioner.AdminStore
	rules []deprovisionRule
	// apply disables or deletes one user, as the running App does it.
	apply  func(ctx context.Context, p deprovision.Policy, u *provisioner.User) error
	logger *zap.Logger
}

// interval is how often the sweeper wakes: its most frequent rule's.
func (s *sweeper) interval() time.Duration {
	d := s.rules[0].every
	for _, r := range s.rules[1:] {
		d = min(d, r.every)
	}
	return d
}

// leaseTTL is how long the lease is taken for: a holder renews it at
// every wake and between pages, so it lapses only when the holder has
// stopped, and another instance takes over.
func (s *sweeper) leaseTTL() time.Duration { return max(3*s.interval(), 10*time.Second) }

// processHolder names this process as a lease holder; it stays the
// same across reloads, so a reload keeps the lease.
var processHolder = func() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "jit_auth-" + hex.EncodeToString(b)
}()

// sweep runs the rules that are due, if this process holds the lease.
// last is when each connection's rule last ran here.
func (s *sweeper) sweep(ctx context.Context, last map[string]time.Time) {
	renew := func() (bool, error) {
		lctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		return s.admin.AcquireLease(lctx, deprovisionLease, processHolder, s.leaseTTL())
	}
	switch held, err := renew(); {
	case err != nil:
		if ctx.Err() == nil {
			s.logger.Warn("deprovisioning: taking the lease", zap.Error(err))
		}
		return
	case !held:
		return // another instance sweeps
	}
	for _, r := range s.rules {
		now := time.Now()
		if t, ok := last[r.policy.Connection]; ok && now.Sub(t) < r.every {
			continue
		}
		last[r.policy.Connection] = now
		n, err := deprovision.Sweep(ctx, s.admin, r.policy, now, func(u *provisioner.User) {
			actx, cancel := context.WithTimeout(ctx, storeTimeout)
			defer cancel()
			if err := s.apply(actx, r.policy, u); err != nil && ctx.Err() == nil {
				s.logger.Warn("deprovisioning a user; the next sweep tries again",
					zap.String("connection", r.policy.Connection), zap.String("local_id", u.ID), zap.Error(err))
			}
		}, func() error {
			held, err := renew()
			if err == nil && !held {
				err = errors.New("the lease passed to another instance")
			}
			return err
		})
		if err != nil && ctx.Err() == nil {
			s.logger.Warn("deprovisioning: the sweep stopped; the next one goes on", zap.String("connection", r.policy.Connection), zap.Int("users", n), zap.Error(err))
		}
	}
}

// runDeprovision sweeps with the current configuration's rules until ctx
// ends.
func (st *sharedState) runDeprovision(ctx context.Context) {
	last := map[string]time.Time{}
	for {
		if cfg := st.current(); cfg != nil && cfg.sweeper != nil {
			cfg.sweeper.sweep(ctx, last)
		}
		if !st.sleep(ctx, time.Now(), sweepInterval) {
			return
		}
	}
}

// sweepInterval is how long the sweeper of cfg sleeps between sweeps.
func sweepInterval(cfg *stateConfig) time.Duration {
	if cfg.sweeper == nil {
		return time.Minute // a configuration without rules: look again later
	}
	return cfg.sweeper.interval()
}

// newSweeper builds the sweeper of a's deprovisioning rules, or nil when
// no connection has one.
func (a *App) newSweeper() *sweeper {
	var rules []deprovisionRule
	for _, name := range a.connectionNames() {
		if c := a.Connections[name]; c != nil && c.deprovision != nil {
			rules = append(rules, deprovisionRule{policy: *c.deprovision, every: c.Deprovision.every()})
			if c.deprovision.After < minDeprovisionAfterUnwarned {
				// after 3m reads as three months to some; it is three
				// minutes, and nearly everyone is inactive that long.
				a.logger.Warn("deprovisioning users inactive for less than a day: durations are Go's (m is minutes) plus d for days, so 90 days is 90d",
					zap.String("connection", name), zap.Duration("after", c.deprovision.After), zap.String("action", string(c.deprovision.Action)))
			}
		}
	}
	if len(rules) == 0 || a.admin == nil {
		return nil
	}
	return &sweeper{admin: a.admin, rules: rules, apply: a.deprovisionUser, logger: a.logger}
}

// deprovisionUser disables or deletes an inactive user and ends their
// sessions, as the admin API's disable and delete do. The store acts
// only if the user is still due: the sweep read them a while ago, and
// they may have signed in since (and hold a session that must live).
func (a *App) deprovisionUser(ctx context.Context, p deprovision.Policy, u *provisioner.User) error {
	kind := eventDeprovisionDisabled
	due := p.DueAt(time.Now())
	// Read first: a deletion takes the identities with it.
	subjects, err := a.identityCutoffKeys(ctx, u.ID)
	if err != nil {
		return err
	}
	if p.Action == deprovision.Delete {
		kind = eventDeprovisionDeleted
		err = a.admin.DeleteUserIf(ctx, u.ID, due)
	} else {
		err = a.admin.SetStatusIf(ctx, u.ID, provisioner.StatusDisabled, p.Reason(), due)
	}
	switch {
	case errors.Is(err, provisioner.ErrNotFound):
		return nil // deleted meanwhile: nothing left to do
	case errors.Is(err, provisioner.ErrConditionFailed):
		a.logger.Debug("deprovisioning: the user is not due any more (signed in, enabled or exempted since the sweep read them)",
			zap.String("connection", p.Connection), zap.String("local_id", u.ID))
		return nil
	case err != nil:
		return err
	}
	a.observers.emit(a.logger, event{kind: kind, connection: p.Connection, username: u.Username, localID: u.ID, reason: p.Reason()})
	return a.endSessions(ctx, u, subjects)
}

// endSessions ends every session of a user who may not log in any more
// (disabled or deleted): at once on this instance, and through the
// store and the status refresh on every other. subjects are the cutoff
// keys of the user's identities (identityCutoffKeys), read before a
// deletion removed them.
func (a *App) endSessions(ctx context.Context, u *provisioner.User, subjects []string) error {
	a.sessions.status.set(u.ID, true)
	return a.sessions.signOutEverywhere(ctx, u, subjects, time.Duration(a.SessionLifetime))
}

// identityCutoffKeys are the keys under which a sign-out everywhere of
// the local user userID also ends sessions: the subject of each identity
// linked to the user, at its connection. A session issued through that
// identity while its connection had JIT off carries no local user (nor,
// without a verified email, a name the user has) and so is refused by
// neither the user's cutoff nor the user's status; it is the user's all
// the same, as a back-channel logout of the subject says (logoutKeys).
func (a *App) identityCutoffKeys(ctx context.Context, userID string) ([]string, error) {
	ids, err := a.store.Identities(ctx, userID)
	if err != nil && !errors.Is(err, provisioner.ErrNotFound) {
		return nil, fmt.Errorf("reading the user's identities: %w", err)
	}
	keys := make([]string, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, subjectCutoffKey(id.Connection, id.Subject))
	}
	return keys, nil
}

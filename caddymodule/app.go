package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/mfa"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the global jit_auth configuration: the connections (identity
// providers) that applications offer, the user store, and the session
// settings. Sites use it through the jit_auth handler.
type App struct {
	// Connections are the identity providers, by name. Names appear in
	// URLs (/.jitauth/start/<name>) and in the store, so keep them stable.
	Connections map[string]*Connection `json:"connections,omitempty"`

	// Applications are named applications that sites attach with
	// `jit_auth <name>` (handler field "application"). Declaring them here,
	// beside the connections, lets every load check them together: a
	// configuration where an application requires a second factor from a
	// connection with JIT off is refused, naming every such pair.
	Applications map[string]*Application `json:"applications,omitempty"`

	// Store keeps local users. Default: SQLite in Caddy's data directory.
	StoreRaw json.RawMessage `json:"store,omitempty" caddy:"namespace=jit_auth.stores inline_key=backend"`

	// SessionLifetime is how long a login lasts. Default: 12h.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// UserStatusRefresh bounds how long a provisioned user who is disabled
	// or deleted in the store keeps using a live session: their status is
	// re-read in the background this often. Default: 1m.
	UserStatusRefresh caddy.Duration `json:"user_status_refresh,omitempty"`

	// RevocationPoll bounds how long a session logged out through another
	// instance sharing the store (or, while the store is down, sharing
	// Caddy's storage) is still accepted here: this instance reads the
	// logouts recorded since its last read this often. Each read is one
	// indexed query. Default: 10s.
	RevocationPoll caddy.Duration `json:"revocation_poll,omitempty"`

	// CookieKeys seal session and login-flow cookies. The first pair seals
	// new cookies; all pairs open existing ones, so keys can be rotated
	// by adding a new pair in front. When empty, a pair is generated once
	// and kept in Caddy's storage: instances behind one load balancer must
	// then share storage, or configure the same keys here.
	CookieKeys []KeyPair `json:"cookie_keys,omitempty"`

	// AssertionKeyRotation is how often the key that signs identity
	// assertions is replaced. Each key is published in the JWKS at least
	// one period before it signs and one period after (or, if longer, the
	// longest assertion lifetime configured while it could sign, also
	// before a reload), and is kept in Caddy's storage, so instances
	// sharing it sign alike. A shorter
	// period takes effect at the reload: the next key signs once the new
	// period has passed since the current one started. Default: 168h
	// (7 days).
	AssertionKeyRotation caddy.Duration `json:"assertion_key_rotation,omitempty"`

	// The store module in its roles: users and revocations always; second
	// factors and administration when the module has them (else nil,
	// and what needs them says so).
	store   sessionStore
	factors provisioner.SecondFactorStore
	// storeModule is the store module as loaded; store, factors and
	// admin are its roles, timed for the store latency metric.
	storeModule sessionStore
	admin       provisioner.AdminStore
	// uses counts the requests using the store, so that a shipped store
	// closes after the last of them (storeuse.go).
	uses *storeUses
	// singleUse records login steps so that one instance uses each (nil:
	// the store has no such role, and the revocation poll spreads them).
	singleUse provisioner.SingleUseStore
	// refreshTokens keeps the refresh tokens of refreshing connections
	// (nil: the store has no such role).
	refreshTokens provisioner.RefreshTokenStore
	provisioner   *provisioner.Provisioner
	// readiness remembers the last store check of /.jitauth/ready.
	readiness *readiness
	// observers take every outcome besides the audit log (events.go).
	observers *observers
	sealers   []*mfa.Sealer
	// sessions is the session component (sessions.go).
	sessions *sessions
	// assertionKeys are the rings that sign identity assertions, and
	// sessionAttributes the attributes sessions carry for them.
	assertionKeys     *assertionKeys
	sessionAttributes map[string]bool
	// roleSources are the role grants this configuration's sessions
	// carry (roleSources.of).
	roleSources roleSources
	logger      *zap.Logger

	// state holds the revocations, used login states and user statuses
	// shared with the other configuration generations, and sessionsKey
	// names the shared session cache (see state.go); started is this
	// generation's part in the background work, while it runs; released
	// is set once Cleanup gave them back. storage is Caddy's storage,
	// which keeps the logouts the store could not take.
	state       *sharedState
	sessionsKey string
	storage     revocationStorage
	// lifetimes is the session_lifetime history sessions are bounded by
	// (lifetimes.go); caddyCtx is this configuration's context, to tell
	// when Caddy runs it. Stop closes stopKeeping and waits for
	// keptLifetimes: Caddy's storage is not written after Stop.
	lifetimes     lifetimeHistory
	caddyCtx      caddy.Context
	stopKeeping   chan struct{}
	keptLifetimes chan struct{}
	started       *stateConfig
	released      bool

	// unsavedKeys is a generated cookie key pair that Start saves in
	// keyStorage (Caddy's storage); nil when the keys are configured or
	// were read from storage. See loadKeys.
	unsavedKeys []byte
	keyStorage  keyStorage
	// storedKeys is the cookie key pair this configuration keeps in
	// Caddy's storage (nil: configured keys), for the configuration that
	// replaces it (runningStoredKeys).
	storedKeys []byte

	// ready is closed once Start has opened the store: the endpoints
	// that need it wait for it, for a bounded time (see
	// Handler.storeReady).
	ready chan struct{}

	// interconnect runs the JIT×MFA check once per configuration, from
	// the first handler provisioned (see interconnect.go).
	interconnect *onceResult

	// identityKeys are the folded identity header names of every
	// jit_auth handler of this configuration, and handlers counts them,
	// as each is provisioned (see Handler.cleanRequest). A request stays
	// in one server, so what matters to a handler is how many it can
	// meet there: perServer counts them by server, site cleaners
	// included, and unplaced counts handlers provisioned outside any
	// server, which make every handler count the whole configuration's.
	identityKeys []string
	handlers     int
	perServer    map[*caddyhttp.Server]*int
	unplaced     int

	// endpointOwners is, by site (its top-level route) and path prefix,
	// the first jit_auth handler provisioned there: the one that answers
	// the sign-in endpoints at that prefix for the whole site.
	endpointOwners map[*caddyhttp.Route]map[string]*Handler
	// errorsCleaned marks the servers whose handle_errors routes have
	// their cleaning step (cleanErrorRoutes).
	errorsCleaned map[*caddyhttp.Server]bool
	// inlineActivity counts inline applications by their activity key,
	// so that identical ones get keys of their own (activityKeyFor).
	inlineActivity map[string]int
}

// placeHandler counts a jit_auth handler or site cleaner being
// provisioned in srv (nil: outside any server), and returns the count
// of its server's handlers, final once the server is provisioned.
func (a *App) placeHandler(srv *caddyhttp.Server) *int {
	a.handlers++
	if srv == nil {
		a.unplaced++
		return nil
	}
	if a.perServer == nil {
		a.perServer = make(map[*caddyhttp.Server]*int)
	}
	n := a.perServer[srv]
	if n == nil {
		n = new(int)
		a.perServer[srv] = n
	}
	*n++
	return n
}

// alone reports whether a request through the handler (or cleaner)
// whose server count is peers can meet no other jit_auth handler: then
// nothing needs to be handed on to a later one.
func (a *App) alone(peers *int) bool {
	if peers == nil || a.unplaced > 0 {
		return a.handlers == 1
	}
	return *peers == 1
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "jit_auth",
		New: func() caddy.Module { return new(App) },
	}
}

const (
	// defaultSessionLifetime applies when SessionLifetime is unset.
	defaultSessionLifetime = 12 * time.Hour
	// defaultUserStatusRefresh applies when UserStatusRefresh is unset.
	defaultUserStatusRefresh = time.Minute
	// defaultRevocationPoll applies when RevocationPoll is unset.
	defaultRevocationPoll = 10 * time.Second
)

// Provision loads the store and the cookie keys and prepares the
// connections. It does not contact identity providers.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	evApp, err := ctx.App("events")
	if err != nil {
		return fmt.Errorf("jit_auth: loading Caddy's events app: %v", err)
	}
	a.readiness = new(readiness)
	a.observers = &observers{metrics: processMetrics(), events: evApp.(*caddyevents.App), ctx: ctx}
	if err := a.observers.metrics.register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("jit_auth: registering metrics: %v", err)
	}
	a.ready = make(chan struct{})
	if a.SessionLifetime == 0 {
		a.SessionLifetime = caddy.Duration(defaultSessionLifetime)
	}

	if a.StoreRaw == nil {
		a.StoreRaw = caddyconfig.JSONModuleObject(&SQLiteStore{}, "backend", "sqlite", nil)
	}
	mod, err := ctx.LoadModule(a, "StoreRaw")
	if err != nil {
		return fmt.Errorf("loading jit_auth user store: %v", err)
	}
	store, ok := mod.(sessionStore)
	if !ok {
		return fmt.Errorf("jit_auth store module %T cannot hold users and sessions: it lacks %s (see provisioner/store.go)", mod, strings.Join(missingStoreRoles(mod), ", "))
	}
	a.storeModule = store
	a.uses = newStoreUses()
	if c, ok := mod.(usesCounter); ok {
		c.closeAfterUses(a.uses)
	}
	timer := storeTimer{a.observers.metrics.storeLatency}
	a.store = timedSessionStore{store, timer}
	if b, ok := mod.(provisioner.UserBatchReader); ok {
		a.store = timedBatchStore{timedSessionStore{store, timer}, b}
	}
	a.factors = timedFactorRole(mod, timer)
	if ad, ok := mod.(provisioner.AdminStore); ok {
		a.admin = timedAdmin{ad, timer}
	}
	if o, ok := mod.(provisioner.SingleUseStore); ok {
		a.singleUse = timedSingleUse{o, timer}
	}
	if rt, ok := mod.(provisioner.RefreshTokenStore); ok {
		a.refreshTokens = rt
	}
	a.observers.history = a.admin
	a.provisioner = &provisioner.Provisioner{Store: a.store}

	keys, stored, unsaved, err := loadKeys(ctx, a.CookieKeys, runningStoredKeys())
	if err != nil {
		return fmt.Errorf("jit_auth cookie keys: %v", err)
	}
	a.storedKeys, a.unsavedKeys = stored, unsaved
	a.keyStorage = ctx.Storage()
	a.assertionKeys = newAssertionKeys(a.keyStorage, a.assertionRotation(), a.logger)
	a.sessionAttributes = map[string]bool{}
	a.storage = ctx.Storage()
	// The codecs' age check covers every cookie they seal: a session,
	// whose own expiry and lifetime history bound it more closely, but
	// also a login's flow and pending cookies and a TOTP enrolment, which
	// carry their own expiry of up to ten minutes whatever session_lifetime
	// says (at least 1m): a login must not expire at the provider sooner.
	maxAge := max(time.Duration(a.SessionLifetime), flowLifetime, enrolLifetime)
	seal := cookieSeal(newCodecs(keys, int(maxAge/time.Second)))
	// TOTP secrets are sealed with a key derived from each hash key, in
	// the same order: the first seals, every one opens, so rotating the
	// cookie keys keeps enrolled factors working while the old pair stays.
	a.sealers = a.sealers[:0]
	for _, k := range keys {
		s, err := mfa.NewSealer(k.hash)
		if err != nil {
			return fmt.Errorf("jit_auth TOTP sealing key: %v", err)
		}
		a.sealers = append(a.sealers, s)
	}

	// Connections are checked here rather than in Validate, which Caddy
	// calls after Provision: a broken connection must not be built. All
	// problems are reported at once.
	var errs []error
	for _, name := range a.connectionNames() {
		c := a.Connections[name]
		if c == nil {
			errs = append(errs, fmt.Errorf("connection %q is empty", name))
			continue
		}
		if err := c.checkPolicy(name); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.loadConnector(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := a.checkRefresh(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.roleSources = roleSources{}
	for name := range a.Connections {
		a.roleSources[provisioner.ConnectionSource(name)] = true
	}
	// Every connection's users share the store, and so the names that
	// templates over the subject give (provisioner.Policy.FallbackPrefixes).
	var prefixes []string
	for _, name := range a.connectionNames() {
		prefixes = append(prefixes, a.Connections[name].pol.OwnFallbackPrefixes(name)...)
	}
	for _, name := range a.connectionNames() {
		a.Connections[name].pol.FallbackPrefixes = prefixes
		for _, t := range a.Connections[name].pol.ShadowedTemplates(name) {
			a.logger.Warn("this username template never gives a name: its names begin as those of a template over the subject do, which are kept for the identities they name; begin it otherwise, or drop it",
				zap.String("connection", name), zap.String("template", t), zap.Strings("kept_prefixes", prefixes))
		}
	}
	if err := a.checkApplications(); err != nil {
		return err
	}
	_, recordsLogins := a.storeModule.(provisioner.LoginRecorder)
	for _, name := range a.connectionNames() {
		if a.Connections[name].deprovision == nil {
			continue
		}
		if a.admin == nil {
			return fmt.Errorf("connection %q: deprovision needs a store that can disable and delete users, and the store (%s) does not implement provisioner.AdminStore; use the sqlite or postgres store, or drop deprovision", name, a.storeName())
		}
		// A user who signs in only through a JIT-off connection (under
		// their verified email) is active, but only LoginRecorder
		// records those logins: without it the rule would disable or
		// delete them while they use the site.
		if !recordsLogins {
			return fmt.Errorf("connection %q: deprovision needs a store that records every login of a user (provisioner.LoginRecorder), and the store (%s) does not implement it, so users active only through JIT-off connections would be deprovisioned; use the sqlite or postgres store, or drop deprovision", name, a.storeName())
		}
	}
	a.interconnect = &onceResult{}

	if a.UserStatusRefresh == 0 {
		a.UserStatusRefresh = caddy.Duration(defaultUserStatusRefresh)
	}
	if a.RevocationPoll == 0 {
		a.RevocationPoll = caddy.Duration(defaultRevocationPoll)
	}
	// Taken last, so a failed Provision holds nothing; Cleanup gives
	// them back.
	a.state = acquireSharedState()
	a.state.noteVouches(a.Connections, time.Now())

	a.caddyCtx = ctx
	a.lifetimes = a.lifetimeHistory(ctx)
	a.sessionsKey = sessionCacheKey(keys, a.lifetimes)
	a.sessions = &sessions{seal: seal, cache: acquireSessionCache(a.sessionsKey),
		revoked: a.state.revoked, status: a.state.userStatus, refresh: time.Duration(a.UserStatusRefresh), used: a.state.usedStates,
		store: a.store, once: a.singleUse, pending: a.state.pending, storage: a.storage, logger: a.logger,
		lifetimes: a.lifetimes, started: a.ready}
	return nil
}

// adoptIssuersTimeout bounds adoptIssuers at start. The first start on
// a release that changes a connection's issuer moves all of its
// identities in one transaction, which on a large directory takes longer
// than the storeTimeout a request gives the store (900,000 identities:
// about 10 s); bounded by that, it was rolled back at every start and
// Caddy never started again on the new build. Later starts only find the
// connection recorded.
const adoptIssuersTimeout = 10 * time.Minute

// adoptIssuers has the store give the identities that earlier releases
// stored under a connection's old issuer the issuer its logins give now
// (connector.LegacyIssuer, provisioner.IssuerAdopter), once per
// connection and store: at the first start of this release, a goth
// connection's identities become those of the instance it is
// configured with. It runs at start, not at provisioning, so validating
// a configuration writes nothing. A store that cannot leaves the
// identities behind: their users sign in as new ones.
func (a *App) adoptIssuers(ctx context.Context) error {
	adopter, ok := a.storeModule.(provisioner.IssuerAdopter)
	for _, name := range a.connectionNames() {
		li, is := a.Connections[name].connector.(connector.LegacyIssuer)
		if !is {
			continue
		}
		earlier, now := li.LegacyIssuer()
		if !ok {
			if earlier != now {
				a.logger.Warn("the store cannot move identities to this connection's issuer (provisioner.IssuerAdopter): those stored by earlier releases under the other issuer do not sign in",
					zap.String("connection", name), zap.String("earlier_issuer", earlier), zap.String("issuer", now))
			}
			continue
		}
		moved, err := adopter.AdoptIssuer(ctx, name, earlier, now)
		if err != nil {
			return fmt.Errorf("jit_auth user store: connection %q: %v", name, err)
		}
		if moved > 0 {
			a.logger.Info("identities stored by an earlier release are now the configured instance's",
				zap.String("connection", name), zap.String("earlier_issuer", earlier), zap.String("issuer", now), zap.Int("identities", moved))
		}
	}
	return nil
}

// Validate checks the settings that Provision does not.
func (a *App) Validate() error {
	if d := time.Duration(a.SessionLifetime); d < time.Minute {
		return fmt.Errorf("session_lifetime %s is too short; use at least 1m", d)
	}
	if d := time.Duration(a.UserStatusRefresh); d < time.Second {
		return fmt.Errorf("user_status_refresh %s is too short; use at least 1s", d)
	}
	if d := time.Duration(a.RevocationPoll); d < time.Second {
		return fmt.Errorf("revocation_poll %s is too short; use at least 1s", d)
	}
	if d := time.Duration(a.AssertionKeyRotation); d < 0 {
		return fmt.Errorf("assertion_key_rotation %s is negative; use a positive duration (default 168h)", d)
	}
	return nil
}

// lifetimeHistory is the session_lifetime history this configuration
// bounds sessions by (see lifetimes.go): what this process kept across
// reloads and what Caddy's storage holds, with this configuration's
// lifetime in force from now. It only reads storage: the history is
// written once Caddy runs the configuration (keepLifetimesOnceRunning),
// so validating one writes nothing.
func (a *App) lifetimeHistory(ctx caddy.Context) lifetimeHistory {
	h := a.state.keptLifetimes()
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if stored, err := loadLifetimes(rctx, a.storage); err != nil {
		a.logger.Warn("could not read the session_lifetime history from Caddy's storage; sessions are bounded by the lifetimes this process has seen",
			zap.String("key", lifetimeHistoryKey), zap.Error(err))
	} else {
		h = h.merged(stored)
	}
	return h.with(time.Now(), time.Duration(a.SessionLifetime))
}

// keepLifetimesOnceRunning keeps this configuration's session_lifetime
// history for the next configurations, here and on the instances that
// share the storage, once Caddy runs it: a reload that fails to start
// (another app's port taken) goes back to the configuration before, and
// its lifetime, never in force, must bind no session. It gives up when
// the configuration is stopped first (stop). A storage failure only
// loses the bound for the others.
func (a *App) keepLifetimesOnceRunning(ctx caddy.Context, stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !running(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-tick.C:
		}
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	// What was kept since this configuration read it (a configuration
	// that ran meanwhile) comes first: this lifetime is in force from now.
	now, lifetime := time.Now(), time.Duration(a.SessionLifetime)
	h := a.state.keptLifetimes().merged(a.lifetimes)
	kept, err := saveLifetimes(sctx, a.storage, h, now, lifetime)
	if err != nil {
		kept = h.with(now, lifetime)
		a.logger.Warn("could not keep the session_lifetime history in Caddy's storage; a later reload that lengthens session_lifetime on another instance may let sessions this one ends count again there",
			zap.String("key", lifetimeHistoryKey), zap.Error(err))
	}
	a.state.keepLifetimes(kept)
}

// running reports whether ctx is (or derives from) the context of the
// configuration Caddy runs: the same Done channel, which only Caddy's
// cancelling of a configuration closes.
func running(ctx caddy.Context) bool {
	active := caddy.ActiveContext()
	return active.Context != nil && active.Done() == ctx.Done()
}

// Start opens the store if it opens lazily, reads the logouts kept in
// Caddy's storage during a store outage, saves generated cookie keys,
// and joins the background work that follows logouts made through other
// instances and user statuses.
func (a *App) Start() error {
	if o, ok := a.storeModule.(opener); ok {
		if err := o.open(); err != nil {
			return fmt.Errorf("jit_auth user store: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := a.state.pending.load(ctx, a.storage, a.state.revoked, a.logger); err != nil {
		// Starting without them would revive sessions logged out
		// during an outage.
		return fmt.Errorf("jit_auth: reading the logouts kept in Caddy's storage under %s: %v", pendingRevocationsDir, err)
	}
	if err := a.state.pending.carry(ctx, a.storage); err != nil {
		return fmt.Errorf("jit_auth: keeping the logouts that wait for the store in this configuration's Caddy storage, under %s: %v", pendingRevocationsDir, err)
	}
	// The move is a statement over every identity of the connection:
	// bounded by its own time, as a schema migration is, not by a
	// request's (adoptIssuersTimeout).
	actx, acancel := context.WithTimeout(context.Background(), adoptIssuersTimeout)
	err := a.adoptIssuers(actx)
	acancel()
	if err != nil {
		return err
	}
	// Last of what can fail, so a start that fails leaves no keys.
	if a.unsavedKeys != nil {
		if err := saveKeys(ctx, a.keyStorage, a.unsavedKeys); err != nil {
			return fmt.Errorf("jit_auth cookie keys: %v", err)
		}
		a.unsavedKeys = nil
	}
	if cur := a.state.current(); cur != nil {
		if err := a.assertionKeys.adopt(ctx, cur.assertionKeys); err != nil {
			return err
		}
	}
	if err := a.assertionKeys.start(); err != nil {
		return err
	}
	a.stopKeeping, a.keptLifetimes = make(chan struct{}), make(chan struct{})
	go func(stop <-chan struct{}, done chan<- struct{}) {
		defer close(done)
		a.keepLifetimesOnceRunning(a.caddyCtx, stop)
	}(a.stopKeeping, a.keptLifetimes)
	a.started = &stateConfig{
		store:     a.store,
		admin:     a.admin,
		storage:   a.storage,
		logger:    a.logger,
		lifetime:  time.Duration(a.SessionLifetime),
		lifetimes: a.lifetimes,
		refresh:   time.Duration(a.UserStatusRefresh),
		poll:      time.Duration(a.RevocationPoll),
		sweeper:   a.newSweeper(),
		refresher: a.newRefresher(),
		roles:     a.roleSources,

		storedKeys:    a.storedKeys,
		assertionKeys: a.assertionKeys,
	}
	if a.state.current() != nil {
		// A reload: this configuration's store may hold logouts the set
		// has not read (a reload to another store). Read them before its
		// handlers admit a session (sessions.admitted waits for ready);
		// if the store does not answer, the follower reads them later,
		// and sessions go on as the running configuration admits them.
		// Bounded well below firstReadWait: a request this configuration
		// holds meanwhile must not time out into a 503 first.
		rctx, rcancel := context.WithTimeout(ctx, firstReadWait/3)
		_, err := a.state.revoked.sync(rctx, a.store, time.Time{})
		rcancel()
		if err != nil {
			a.logger.Warn("reading session revocations from the store at reload; the background reader tries again", zap.Error(err))
		}
	}
	a.state.attach(a.started)
	close(a.ready)
	return nil
}

// Stop leaves the background work; it ends with the last generation.
func (a *App) Stop() error {
	a.assertionKeys.stopFollowing()
	if a.stopKeeping != nil {
		// A write under way ends within storeTimeout; one not begun
		// never begins.
		close(a.stopKeeping)
		<-a.keptLifetimes
		a.stopKeeping = nil
	}
	if a.started != nil {
		a.state.detach(a.started)
		a.started = nil
	}
	return nil
}

// Cleanup gives back the shared state; the last generation frees it.
func (a *App) Cleanup() error {
	// Requests still in flight may use the state, so it stays set.
	if a.state == nil || a.released {
		return nil
	}
	a.released = true
	releaseSharedState()
	_, _ = sessionCaches.Delete(a.sessionsKey)
	return nil
}

// checkApplications validates the named applications. Whether they
// require a second factor from a connection that keeps no local user is
// checked once the sites that use them are known (interconnect.go).
func (a *App) checkApplications() error {
	var errs []error
	for _, name := range sortedKeys(a.Applications) {
		ap := a.Applications[name]
		label := fmt.Sprintf("application %q", name)
		if ap == nil {
			errs = append(errs, fmt.Errorf("%s is empty", label))
			continue
		}
		if !applicationNameRE.MatchString(name) {
			errs = append(errs, fmt.Errorf("application name %q: use 1-63 lower-case letters, digits, '-' or '_'", name))
			continue
		}
		if err := ap.validate(a, label); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// connectionNames returns the connection names in a stable order.
func (a *App) connectionNames() []string { return sortedKeys(a.Connections) }

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)

// sessionStore is the part of a store every configuration needs: the
// users and identities JIT provisions, and the logouts every instance
// must learn of. A store that keeps no second factors can serve
// applications without mfa; one without the admin role, everything but
// the admin API's changes of status.
type sessionStore interface {
	provisioner.UserStore
	provisioner.RevocationStore
}

// missingStoreRoles names the roles of sessionStore that mod lacks.
func missingStoreRoles(mod any) []string {
	var missing []string
	if _, ok := mod.(provisioner.UserStore); !ok {
		missing = append(missing, "UserStore")
	}
	if _, ok := mod.(provisioner.RevocationStore); !ok {
		missing = append(missing, "RevocationStore")
	}
	return missing
}

// storeName names the store module for messages.
func (a *App) storeName() string { return fmt.Sprintf("%T", a.storeModule) }

// assertionRotation is the assertion key rotation period in effect.
func (a *App) assertionRotation() time.Duration {
	if a.AssertionKeyRotation > 0 {
		return time.Duration(a.AssertionKeyRotation)
	}
	return defaultAssertionKeyRotation
}

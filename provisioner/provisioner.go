// Package provisioner decides what Just-in-Time provisioning does with a
// positive authentication response, and defines the stores that keep the
// resulting local users, one interface per role (see Store). It has no
// knowledge of Caddy or HTTP.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Outcome says what provisioning did.
type Outcome string

const (
	// OutcomeNotStored: JIT is off; nothing was written.
	OutcomeNotStored Outcome = "not_stored"
	// OutcomeCreated: a new local user and identity were created.
	OutcomeCreated Outcome = "created"
	// OutcomeLinked: the new identity was linked to an existing user.
	OutcomeLinked Outcome = "linked"
	// OutcomeUpdated: an existing user's login was recorded.
	OutcomeUpdated Outcome = "updated"
	// OutcomeNeedsConsent: nothing was written; the user must first
	// agree to storing Result.Attributes (ModeConsent, ModeUsername).
	OutcomeNeedsConsent Outcome = "needs_consent"
	// OutcomeNeedsUsername: nothing was written; the user must choose a
	// username and agree to storing Result.Attributes (ModeUsername).
	OutcomeNeedsUsername Outcome = "needs_username"
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
	// ErrEmailConflict: a new identity's email is another local user's
	// verified email, and linking does not apply.
	ErrEmailConflict = errors.New("email belongs to another account")
	// ErrUsernameInvalid: a chosen username fails the pattern or is
	// reserved. (A chosen username that belongs to someone else is the
	// store's ErrUsernameTaken.)
	ErrUsernameInvalid = errors.New("username not allowed")
)

// Request is one positive authentication response to provision, with
// the user's answers from the consent or username page, if any.
type Request struct {
	// Connection names the connection the user came through.
	Connection string
	// Policy is the connection's JIT policy, validated.
	Policy *Policy
	// Claims are the provider's claims.
	Claims Claims
	// Consented lists the attributes the user agreed to store, exactly
	// as a previous Result.Consent offered them; nil until asked.
	Consented []string
	// Username is the username the user chose (ModeUsername).
	Username string
	// UpdateOnly: the caller may update the identity's user but not
	// create or link one (ErrNotProvisioned): a background refresh,
	// for which nobody signed in, must not bring back a user deleted
	// meanwhile.
	UpdateOnly bool
}

// Result is the outcome of Provision.
type Result struct {
	Outcome Outcome
	// User is the local user; nil unless created, linked or updated.
	User *User
	// Profile is the profile mapped from the claims; with JIT off it is
	// all a session knows of the user.
	Profile Profile
	// Roles are the roles this connection's rules grant on this login.
	Roles []string
	// Username is the name a JIT-off session uses (Policy.SessionName:
	// the verified email, or "<connection>:<value>"), or the suggested
	// username when Outcome is OutcomeNeedsUsername.
	Username string
	// Holder is, with JIT off, the ID of the local user whose name
	// Username is (the same verified email, from a connection with JIT
	// on): a session under it must end when that user is disabled,
	// deleted or signed out everywhere. Empty when no local user has the
	// name.
	Holder string
	// DirectoryErr is, with JIT off, why the directory could not be read
	// to find a local user holding Username; the login was not checked
	// against one, and the caller should say so in its log.
	DirectoryErr error
	// Attributes and Consent are set when consent is needed: the values
	// a page must show, and the names the user is asked to agree to.
	Attributes []AttributeValue
	Consent    []string
	// Changed names the attributes a later login or link updated.
	Changed []string
}

// UserDisabledError is ErrUserDisabled (errors.Is matches it) naming the
// disabled user, so the refused login can be kept in their history.
type UserDisabledError struct{ UserID, Username string }

func (e *UserDisabledError) Error() string        { return ErrUserDisabled.Error() }
func (e *UserDisabledError) Is(target error) bool { return target == ErrUserDisabled }

func disabled(u *User) error { return &UserDisabledError{UserID: u.ID, Username: u.Username} }

// Provisioner applies connection policies against a store.
type Provisioner struct {
	Store UserStore
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// errAskConsent aborts a store transaction that found the recorded
// consent too small.
var errAskConsent = errors.New("consent needed")

// Provision runs JIT for one positive authentication response. It is
// idempotent and safe under concurrency: concurrent first logins of one
// identity yield exactly one user. Nothing is written when it returns an
// error or asks for consent or a username.
func (p *Provisioner) Provision(ctx context.Context, req Request) (Result, error) {
	return p.provision(ctx, req, true)
}

// provision is Provision; with JIT off, a login under a local user's
// name is recorded as theirs only when recordHolder is set (a login, not
// Recognise).
func (p *Provisioner) provision(ctx context.Context, req Request, recordHolder bool) (Result, error) {
	c := req.Claims
	pol := req.Policy
	if pol == nil {
		pol = &Policy{}
	}
	if c.Subject == "" {
		return Result{}, fmt.Errorf("%w: no subject", ErrInvalidClaims)
	}
	if len(c.Subject) > MaxSubjectLength || strings.ContainsRune(c.Subject, 0) || !utf8.ValidString(c.Subject) {
		return Result{}, fmt.Errorf("%w: the subject is not one a store can keep (at most %d bytes of UTF-8 without NUL, as OpenID Connect allows)", ErrInvalidClaims, MaxSubjectLength)
	}
	if req.Connection == "" || strings.Contains(req.Connection, QualifierSeparator) {
		// JIT-off names are qualified by the connection: a name with the
		// separator would make "a:b" + "c" equal "a" + "b:c".
		return Result{}, fmt.Errorf("connection name %q: must be non-empty and without %q", req.Connection, QualifierSeparator)
	}
	profile := pol.MapProfile(req.Connection, c)
	res := Result{Profile: profile, Roles: pol.RolesFor(profile.Groups)}
	if !pol.Enabled {
		return p.notStored(ctx, req.Connection, c, pol, res, recordHolder)
	}
	l := &login{p: p, req: req, pol: pol, profile: profile, res: res, at: p.now().UTC(),
		key: IdentityKey{Connection: req.Connection, Issuer: c.Issuer, Subject: c.Subject}}

	// Two passes at most: a concurrent first login may create or link
	// the identity (or, through another connection, the user a verified
	// email links to) between our lookup and our write; then the second
	// pass finds it.
	for attempt := 0; attempt < 2; attempt++ {
		u, err := p.Store.UserByIdentity(ctx, l.key)
		switch {
		case err == nil:
			if u.Status == StatusDisabled {
				return Result{}, disabled(u)
			}
			res, err := l.recordLogin(ctx)
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile: provision afresh
			}
			return res, err
		case !errors.Is(err, ErrNotFound):
			return Result{}, fmt.Errorf("%w: looking up identity: %w", ErrStoreUnavailable, err)
		case req.UpdateOnly:
			return Result{}, ErrNotProvisioned
		}
		res, err := l.newIdentity(ctx)
		if errors.Is(err, ErrIdentityExists) || errors.Is(err, errLinkableNow) {
			continue
		}
		return res, err
	}
	return Result{}, fmt.Errorf("%w: identity changed concurrently, try again", ErrStoreUnavailable)
}

// notStored names a JIT-off login (Policy.SessionName). A verified
// email is the name only while the directory agrees it names this
// mailbox's owner: no local user holds it, or the one who does has it
// as their own verified email, and is then this person on every
// connection: refused while disabled, and named in Result.Holder so the
// session follows their status and sign-outs. A local user whose name
// is an address they no longer have (the email changed at the
// provider, the mailbox may be someone else's now) keeps the name, and
// this login takes the policy's next template. When the directory
// cannot be read, the login goes on unchecked, as JIT-off logins always
// have while the store is down, and Result.DirectoryErr says so.
func (p *Provisioner) notStored(ctx context.Context, connection string, c Claims, pol *Policy, res Result, recordHolder bool) (Result, error) {
	var holder *User
	res.Outcome = OutcomeNotStored
	res.Username = pol.sessionName(connection, c, res.Profile, func(email string) bool {
		u, err := p.Store.UserByUsername(ctx, email)
		switch {
		case errors.Is(err, ErrNotFound):
			return true
		case err != nil:
			res.DirectoryErr = fmt.Errorf("%w: looking up username: %w", ErrStoreUnavailable, err)
			return true
		case HoldsName(u, email):
			// email is a verified-email name: the address up to ASCII
			// case. Unicode folding would take "\u212Aate@" (Kelvin
			// sign), another mailbox, for "kate@" (as in linking).
			holder = u
			return true
		}
		return false
	})
	switch {
	case res.Username == "":
		return Result{}, fmt.Errorf("%w: no usable username", ErrInvalidClaims)
	case holder != nil && holder.Status == StatusDisabled:
		return Result{}, disabled(holder)
	case holder != nil:
		res.Holder = holder.ID
		// This login is the holder's, as far as rules that count from
		// their last login (deprovisioning) are concerned.
		if rec, ok := p.Store.(LoginRecorder); ok && recordHolder {
			if err := rec.RecordUserLogin(ctx, holder.ID, p.now().UTC()); err != nil && !errors.Is(err, ErrNotFound) {
				res.DirectoryErr = fmt.Errorf("%w: recording the login of %s: %w", ErrStoreUnavailable, holder.Username, err)
			}
		}
	}
	return res, nil
}

// now is the provisioner's clock.
func (p *Provisioner) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// login is one Provision call's working state.
type login struct {
	p       *Provisioner
	req     Request
	pol     *Policy
	profile Profile
	res     Result
	key     IdentityKey
	at      time.Time
}

func (l *login) asksConsent() bool { return l.pol.mode() != ModeSilent }

// consentNeeded returns the attributes a login would store from this
// connection that u (nil for a new user) has not agreed to yet.
func (l *login) consentNeeded(u *User, writes []string) []string {
	need := sortedUnique(append(slices.Clone(writes), claimNames(l.req.Claims.Raw)...))
	if u == nil {
		return need
	}
	have := u.Consents[l.req.Connection].Attributes
	for _, n := range need {
		if !slices.Contains(have, n) {
			return need
		}
	}
	return nil
}

// consented reports whether the user's answer covers need.
func (l *login) consented(need []string) bool {
	if l.req.Consented == nil {
		return false
	}
	for _, n := range need {
		if !slices.Contains(l.req.Consented, n) {
			return false
		}
	}
	return true
}

// askConsent fills the result a consent page needs.
func (l *login) askConsent(outcome Outcome, need []string) Result {
	r := l.res
	r.Outcome = outcome
	r.Consent = need
	for _, n := range need {
		v := l.profile.value(n)
		if strings.HasPrefix(n, "claims.") {
			v = ""
		}
		r.Attributes = append(r.Attributes, AttributeValue{Name: n, Value: v})
	}
	return r
}

// sync applies the connection's sync mode, role grants and consent to
// an existing user inside a store transaction.
func (l *login) sync(u *User, consentAsked bool) error {
	if u.Status == StatusDisabled {
		return disabled(u)
	}
	var writes []string
	switch l.pol.sync() {
	case SyncOverride:
		writes = l.profile.storedAttributes()
	case SyncPreserveLocal:
		for _, n := range l.profile.storedAttributes() {
			if n == AttrEmailVerified && !slices.Contains(u.LocalAttributes, AttrEmail) && l.profile.movesEmail(u) {
				// A local verdict on the old address does not hold for
				// a new one (Profile.writeTo).
				writes = append(writes, n)
				continue
			}
			if !slices.Contains(u.LocalAttributes, n) && !(n == AttrEmailVerified && slices.Contains(u.LocalAttributes, AttrEmail)) {
				writes = append(writes, n)
			}
		}
	}
	if consentAsked {
		if need := l.consentNeeded(u, writes); need != nil {
			if !l.consented(need) {
				l.res.Consent = need
				return errAskConsent
			}
			l.recordConsent(u, need)
		}
	}
	switch l.pol.sync() {
	case SyncOverride:
		l.res.Changed = l.profile.writeTo(u, nil)
	case SyncPreserveLocal:
		l.res.Changed = l.profile.writeTo(u, u.LocalAttributes)
	}
	source := ConnectionSource(l.req.Connection)
	if !slices.Equal(u.RoleGrants[source], l.res.Roles) {
		l.res.Changed = append(l.res.Changed, "roles")
	}
	setRoleGrant(u, source, l.res.Roles)
	return nil
}

func (l *login) recordConsent(u *User, need []string) {
	if u.Consents == nil {
		u.Consents = map[string]Consent{}
	}
	prev := u.Consents[l.req.Connection].Attributes
	u.Consents[l.req.Connection] = Consent{Attributes: sortedUnique(append(slices.Clone(prev), need...)), At: l.at}
}

func setRoleGrant(u *User, source string, roles []string) {
	if len(roles) == 0 {
		delete(u.RoleGrants, source)
		return
	}
	if u.RoleGrants == nil {
		u.RoleGrants = map[string][]string{}
	}
	u.RoleGrants[source] = slices.Clone(roles)
}

// recordLogin is a later login of a known identity.
func (l *login) recordLogin(ctx context.Context) (Result, error) {
	u, err := l.p.Store.RecordLogin(ctx, l.key, storableClaims(l.req.Claims.Raw), l.at, func(u *User) error {
		return l.sync(u, l.asksConsent())
	})
	switch {
	case errors.Is(err, errAskConsent):
		return l.askConsent(OutcomeNeedsConsent, l.res.Consent), nil
	case errors.Is(err, ErrUserDisabled), errors.Is(err, ErrNotFound):
		return Result{}, err
	case err != nil:
		return Result{}, fmt.Errorf("%w: recording login: %w", ErrStoreUnavailable, err)
	}
	l.res.Outcome, l.res.User = OutcomeUpdated, u
	return l.res, nil
}

// newIdentity links or creates the user of an identity seen for the
// first time.
func (l *login) newIdentity(ctx context.Context) (Result, error) {
	target, err := l.linkTarget(ctx)
	if errors.Is(err, ErrEmailConflict) {
		// A concurrent first login of this same identity may have just
		// created the user whose email we met: then it is ours.
		if _, lerr := l.p.Store.UserByIdentity(ctx, l.key); lerr == nil {
			return Result{}, ErrIdentityExists
		}
	}
	if err != nil {
		return Result{}, err
	}
	ident := Identity{IdentityKey: l.key, RawClaims: storableClaims(l.req.Claims.Raw), CreatedAt: l.at, LastLoginAt: l.at}
	if target != nil {
		u, err := l.p.Store.LinkIdentity(ctx, target.ID, ident, func(u *User) error {
			// A link always stores at least the identity, so it is always
			// asked about in the modes that ask.
			if l.asksConsent() && u.Consents[l.req.Connection].Attributes == nil && l.req.Consented == nil {
				return errAskConsent
			}
			return l.sync(u, l.asksConsent())
		})
		switch {
		case errors.Is(err, errAskConsent):
			need := l.res.Consent
			if need == nil {
				need = l.consentNeeded(nil, l.linkWrites(target))
			}
			return l.askConsent(OutcomeNeedsConsent, need), nil
		case errors.Is(err, ErrUserDisabled), errors.Is(err, ErrIdentityExists):
			return Result{}, err
		case errors.Is(err, ErrNotFound):
			return Result{}, fmt.Errorf("%w: linked user deleted meanwhile, try again", ErrStoreUnavailable)
		case err != nil:
			return Result{}, fmt.Errorf("%w: linking identity: %w", ErrStoreUnavailable, err)
		}
		l.res.Outcome, l.res.User = OutcomeLinked, u
		return l.res, nil
	}
	return l.create(ctx, ident)
}

// linkWrites is what linking to target writes under the sync mode.
func (l *login) linkWrites(target *User) []string {
	switch l.pol.sync() {
	case SyncOverride:
		return l.profile.storedAttributes()
	case SyncPreserveLocal:
		var out []string
		for _, n := range l.profile.storedAttributes() {
			if !slices.Contains(target.LocalAttributes, n) {
				out = append(out, n)
			}
		}
		return out
	}
	return nil
}

// linkTarget applies the link policy to a new identity: the user to
// link to, nil to create a new user, or ErrEmailConflict when the email
// is another user's verified email and linking does not apply.
func (l *login) linkTarget(ctx context.Context) (*User, error) {
	if l.profile.Email == "" {
		return nil, nil
	}
	users, err := l.p.Store.UsersByEmail(ctx, l.profile.Email)
	if err != nil {
		return nil, fmt.Errorf("%w: looking up email: %w", ErrStoreUnavailable, err)
	}
	var verified []User
	for _, u := range users {
		// Stores compare normalised addresses (NormalizeEmail), whose
		// Unicode lower-casing makes "\u212Aate@" (Kelvin sign) equal
		// "kate@"; only an address equal up to ASCII letter case is the
		// same mailbox here.
		if u.EmailVerified && asciiLower(strings.TrimSpace(u.Email)) == asciiLower(l.profile.Email) {
			verified = append(verified, u)
		}
	}
	if len(verified) == 0 {
		return nil, nil
	}
	if l.pol.Link == LinkVerifiedEmail && l.profile.EmailVerified && len(verified) == 1 {
		ids, err := l.p.Store.Identities(ctx, verified[0].ID)
		if err != nil {
			return nil, fmt.Errorf("%w: listing identities: %w", ErrStoreUnavailable, err)
		}
		if slices.ContainsFunc(ids, func(id Identity) bool { return id.Connection == l.key.Connection && id.Issuer == l.key.Issuer }) {
			// The issuer that vouches for the address gave that user
			// another subject: to the issuer this is another account,
			// one it gave the address to since (a mailbox reassigned
			// to a new hire), not the same person signing in anew.
			return nil, ErrEmailConflict
		}
		if verified[0].Status == StatusDisabled {
			return nil, disabled(&verified[0])
		}
		return &verified[0], nil
	}
	return nil, ErrEmailConflict
}

// errLinkableNow is create's answer when the user its name belongs to
// was created meanwhile for the same verified mailbox, and this login
// may link to it: provision's second pass does.
var errLinkableNow = errors.New("the verified email's user was created meanwhile")

// create makes a new user for the identity.
func (l *login) create(ctx context.Context, ident Identity) (Result, error) {
	var cands []usernameCandidate
	if l.pol.mode() == ModeUsername {
		suggestion := l.pol.SuggestUsername(l.req.Connection, l.req.Claims, l.profile)
		need := l.consentNeeded(nil, l.profile.storedAttributes())
		if l.req.Username == "" || !l.consented(need) {
			r := l.askConsent(OutcomeNeedsUsername, need)
			r.Username = suggestion
			return r, nil
		}
		norm, err := l.pol.CheckChosenUsername(l.req.Username, l.profile)
		if err != nil {
			return Result{}, err
		}
		cands = []usernameCandidate{{name: norm}}
	} else {
		if cands = l.pol.usernameCandidates(l.req.Connection, l.req.Claims, l.profile); len(cands) == 0 {
			return Result{}, fmt.Errorf("%w: no usable username", ErrInvalidClaims)
		}
		if l.asksConsent() {
			// Refuse before asking when no name is free, not after: the
			// store insert below stays the atomic check.
			if err := l.checkNameFree(ctx, cands); err != nil {
				return Result{}, err
			}
			need := l.consentNeeded(nil, l.profile.storedAttributes())
			if !l.consented(need) {
				return l.askConsent(OutcomeNeedsConsent, need), nil
			}
		}
	}

	for _, cand := range cands {
		nu := l.profile.newUser(cand.name)
		nu.LastLoginAt = l.at
		setRoleGrant(nu, ConnectionSource(l.req.Connection), l.res.Roles)
		if l.asksConsent() {
			l.recordConsent(nu, l.consentNeeded(nil, l.profile.storedAttributes()))
		}
		created, err := l.p.Store.CreateUser(ctx, nu, ident)
		switch {
		case err == nil:
			l.res.Outcome, l.res.User = OutcomeCreated, created
			return l.res, nil
		case errors.Is(err, ErrIdentityExists):
			return Result{}, err
		case errors.Is(err, ErrUsernameTaken):
			// A concurrent first login of this same identity takes the same
			// username; only someone else's account is a conflict.
			if _, err := l.p.Store.UserByIdentity(ctx, l.key); err == nil {
				return Result{}, ErrIdentityExists
			}
			if l.pol.mode() == ModeUsername {
				return Result{}, ErrUsernameTaken
			}
			if cand.verifiedEmail {
				// A first login of the same mailbox through another
				// connection may have created its user since this one
				// looked: one this login may link to is no conflict,
				// and the second pass links it.
				if t, err := l.linkTarget(ctx); err == nil && t != nil {
					return Result{}, errLinkableNow
				}
				return Result{}, ErrUsernameConflict
			}
			// A name from a template that is not the verified email
			// (preferred_username, say) belongs to someone else, or did
			// (a deleted user's, retired: see UsernameRetirer): that is
			// not this user's name, so try the next one.
		default:
			return Result{}, fmt.Errorf("%w: creating user: %w", ErrStoreUnavailable, err)
		}
	}
	return Result{}, ErrUsernameConflict
}

// checkNameFree fails as create's inserts would when no candidate can be
// taken: the first one free ends the search, a taken verified email is a
// conflict, any other taken name (also a deleted user's, retired for
// this identity) falls through to the next.
func (l *login) checkNameFree(ctx context.Context, cands []usernameCandidate) error {
	for _, cand := range cands {
		_, err := l.p.Store.UserByUsername(ctx, cand.name)
		switch {
		case errors.Is(err, ErrNotFound):
			retired, err := l.retired(ctx, cand.name)
			if err != nil {
				return err
			}
			if !retired {
				return nil
			}
		case err != nil:
			return fmt.Errorf("%w: looking up username: %w", ErrStoreUnavailable, err)
		case cand.verifiedEmail:
			return ErrUsernameConflict
		}
	}
	return ErrUsernameConflict
}

// retired reports whether name was a deleted user's and is not this
// identity's to have again (UsernameRetirer); never, with a store that
// does not retire names. CreateUser refuses such a name anyway: this is
// for the checks made before it.
func (l *login) retired(ctx context.Context, name string) (bool, error) {
	r, ok := l.p.Store.(UsernameRetirer)
	if !ok {
		return false, nil
	}
	retired, err := r.UsernameRetired(ctx, name, l.key)
	if err != nil {
		return false, fmt.Errorf("%w: looking up retired usernames: %w", ErrStoreUnavailable, err)
	}
	return retired, nil
}

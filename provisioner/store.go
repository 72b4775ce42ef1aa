package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Status is a local user's account status.
type Status string

const (
	// StatusActive users may log in.
	StatusActive Status = "active"
	// StatusDisabled users are refused at login.
	StatusDisabled Status = "disabled"
)

// User is a local user: a row in the store. It is keyed by a stable
// local ID, never by email or username.
type User struct {
	// ID is the stable local identifier, assigned by the store on creation.
	ID string `json:"id"`
	// Username is unique among local users after normalisation
	// (see NormalizeUsername).
	Username string `json:"username"`
	// Email is the user's email address, if known.
	Email string `json:"email,omitempty"`
	// EmailVerified records whether a provider asserted Email verified.
	EmailVerified bool `json:"email_verified"`
	// Name is the display name.
	Name string `json:"name,omitempty"`
	// GivenName and FamilyName are the name parts, if the provider sent them.
	GivenName  string `json:"given_name,omitempty"`
	FamilyName string `json:"family_name,omitempty"`
	// Picture is a URL of the user's avatar.
	Picture string `json:"picture,omitempty"`
	// Groups are the groups the provider placed the user in.
	Groups []string `json:"groups,omitempty"`
	// Attributes holds further profile attributes mapped from claims.
	Attributes map[string]string `json:"attributes,omitempty"`
	// RoleGrants holds the user's local roles by the source that granted
	// them: RoleSourceLocal for grants made locally, or
	// ConnectionSource(name) for roles a connection's role rules granted.
	// A connection's sync replaces only its own entry.
	RoleGrants map[string][]string `json:"role_grants,omitempty"`
	// LocalAttributes names the profile attributes (see the Attr*
	// constants, or a custom attribute's name) that were changed locally
	// and so are owned locally: sync preserve_local leaves them alone.
	LocalAttributes []string `json:"local_attributes,omitempty"`
	// Consents records, per connection, which attributes the user agreed
	// to have stored, and when.
	Consents map[string]Consent `json:"consents,omitempty"`
	// Status is active or disabled.
	Status Status `json:"status"`
	// StatusReason is what the administrator (or the deprovisioning of
	// inactive users) gave as the reason for the last status change, and
	// StatusChangedAt is when it was made (zero if never).
	StatusReason    string    `json:"status_reason,omitempty"`
	StatusChangedAt time.Time `json:"status_changed_at,omitzero"`
	// Keep exempts the user from the deprovisioning of inactive users
	// (unless a connection's deprovision says include_kept). It is set
	// locally, by an administrator.
	Keep bool `json:"keep"`
	// CreatedAt, UpdatedAt and LastLoginAt are store timestamps (UTC).
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	LastLoginAt time.Time `json:"last_login_at,omitzero"`
}

// Consent is a user's agreement to store a set of attributes from one
// connection.
type Consent struct {
	// Attributes are the attribute names agreed to, sorted.
	Attributes []string `json:"attributes"`
	// At is when the user agreed (UTC).
	At time.Time `json:"at"`
}

// RoleSourceLocal is the RoleGrants key of roles granted locally (by an
// administrator); no connection's sync ever touches it.
const RoleSourceLocal = "local"

// ConnectionSource is the RoleGrants key of roles granted by the named
// connection's role rules.
func ConnectionSource(connection string) string { return "connection:" + connection }

// Roles returns the union of the user's role grants from every source,
// sorted and without duplicates.
func (u *User) Roles() []string {
	var all []string
	for _, rs := range u.RoleGrants {
		all = append(all, rs...)
	}
	return sortedUnique(all)
}

// IdentityKey names one identity at one provider: the link from
// (connection, issuer, subject) to a local user.
type IdentityKey struct {
	Connection string `json:"connection"`
	Issuer     string `json:"issuer"`
	Subject    string `json:"subject"`
}

// Identity is an IdentityKey linked to a local user.
type Identity struct {
	IdentityKey
	UserID      string    `json:"user_id"`
	RawClaims   []byte    `json:"raw_claims,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	LastLoginAt time.Time `json:"last_login_at"`
}

// Errors every Store returns (wrapped or bare) so callers can tell
// outcomes apart with errors.Is.
var (
	// ErrNotFound: no such user or identity.
	ErrNotFound = errors.New("not found")
	// ErrIdentityExists: the identity is already linked to a user.
	ErrIdentityExists = errors.New("identity already exists")
	// ErrUsernameTaken: another user holds the (normalised) username,
	// or held it and was deleted (a retired name, see UsernameRetirer).
	ErrUsernameTaken = errors.New("username already taken")
	// ErrCodeUsed: a TOTP time step at or before the last accepted one,
	// or a recovery code that is not (or no longer) valid.
	ErrCodeUsed = errors.New("code already used or unknown")
	// ErrFactorExists: the user has a second factor already (EnrolTOTP).
	ErrFactorExists = errors.New("second factor already enrolled")
	// ErrConditionFailed: the user no longer meets the condition of a
	// conditional change (SetStatusIf, DeleteUserIf); nothing was
	// written.
	ErrConditionFailed = errors.New("the user no longer meets the condition")
)

// UpdateFunc changes a user inside a store transaction. It may change
// the profile fields (Email, EmailVerified, Name, GivenName,
// FamilyName, Picture, Groups, Attributes), RoleGrants,
// LocalAttributes, Consents and Keep; stores ignore changes to ID,
// Username, Status, StatusReason and the timestamps. An error aborts the transaction: nothing
// is written and the store returns that error unchanged.
type UpdateFunc func(u *User) error

// A store plays up to four roles, one interface each, so that a store
// can implement what its deployment needs and each part of jit_auth
// depends only on the role it uses:
//
//   - UserStore, the directory the Provisioner reads and writes at login
//     (required);
//   - RevocationStore, logouts every instance learns of (required by
//     jit_auth's session handling);
//   - SecondFactorStore, TOTP factors and their attempt counting (needed
//     by applications that require a second factor);
//   - AdminStore, operating the directory: status and deletion (needed
//     by the admin API's operations on users).
//
// Store is all four, as both shipped stores implement. The conformance
// suite (package storetest) has one part per role.
type Store interface {
	UserStore
	RevocationStore
	SecondFactorStore
	AdminStore
}

// UserStore keeps local users and their identities: the directory.
// Implementations must be safe for concurrent use by several goroutines
// and, for shared stores, several processes. A call whose ctx is already
// done fails, with an error wrapping ctx.Err(), and writes nothing.
type UserStore interface {
	// UserByIdentity returns the user linked to key, or ErrNotFound.
	UserByIdentity(ctx context.Context, key IdentityKey) (*User, error)
	// User returns the user with the given local ID, or ErrNotFound.
	User(ctx context.Context, id string) (*User, error)
	// UserByUsername returns the user whose normalised username equals the
	// normalised argument, or ErrNotFound.
	UserByUsername(ctx context.Context, username string) (*User, error)
	// UsersByEmail returns every user whose email equals email, compared
	// case-insensitively (see NormalizeEmail), ordered by normalised
	// username, then ID; none is not an error.
	UsersByEmail(ctx context.Context, email string) ([]User, error)
	// ListUsers returns up to limit users ordered by username, after
	// skipping offset.
	ListUsers(ctx context.Context, offset, limit int) ([]User, error)
	// Identities returns the identities linked to a user, oldest first
	// (by CreatedAt, then connection, issuer and subject).
	Identities(ctx context.Context, userID string) ([]Identity, error)

	// CreateUser atomically inserts u (its ID, Status and timestamps are
	// set by the store) together with its first identity. It returns
	// ErrIdentityExists if the identity is already linked, and
	// ErrUsernameTaken if the username is taken (or retired for this
	// identity, by a store that is a UsernameRetirer); in both cases
	// nothing is written.
	CreateUser(ctx context.Context, u *User, id Identity) (*User, error)
	// LinkIdentity links one more identity to an existing user (account
	// linking) and, in the same transaction, applies update (when
	// non-nil) to that user and sets its last-login time to the
	// identity's LastLoginAt. It returns ErrNotFound if there is no such
	// user and ErrIdentityExists if the identity is linked already, to
	// this user or another; in both cases nothing is written.
	LinkIdentity(ctx context.Context, userID string, id Identity, update UpdateFunc) (*User, error)
	// RecordLogin writes a later login of an existing identity in one
	// transaction: it applies update (when non-nil) to the linked user,
	// refreshes the identity's raw claims, and sets both last-login
	// times to at. It returns ErrNotFound if the identity is not linked.
	RecordLogin(ctx context.Context, key IdentityKey, rawClaims []byte, at time.Time, update UpdateFunc) (*User, error)
	// UpdateUser applies update to the user with this ID in one
	// transaction (a local, administrative change), or returns
	// ErrNotFound. An update that changes nothing writes nothing: the
	// user's UpdatedAt stays as it was.
	UpdateUser(ctx context.Context, userID string, update UpdateFunc) (*User, error)

	// Close releases the store's resources.
	Close() error
}

// LoginRecorder is an optional part of a UserStore: a login that names
// a local user without going through one of the user's identities (a
// connection with JIT off, under the user's verified email; see
// Result.Holder) is recorded as the user's last login, so rules that
// count from it (deprovisioning) see the user as active. Both shipped
// stores implement it; without it such logins are not recorded.
type LoginRecorder interface {
	// RecordUserLogin sets the user's last login to at unless it is
	// later already; ErrNotFound if there is no such user.
	RecordUserLogin(ctx context.Context, userID string, at time.Time) error
}

// AdminStore operates the directory beyond what logins do.
type AdminStore interface {
	// SearchUsers returns up to q.Limit users that match every filter
	// of q, ordered by NormalizeUsername(Username), starting after
	// q.After. An operator's list and export page through the directory
	// with it, one page's last username becoming the next page's After.
	SearchUsers(ctx context.Context, q UserQuery) ([]User, error)
	// CountUsers returns how many users have each status (a status no
	// user has may be missing).
	CountUsers(ctx context.Context) (map[Status]int, error)
	// SetStatus enables or disables a user, keeping reason (at most
	// MaxStatusReason bytes) and the time of the change with it, or
	// returns ErrNotFound.
	SetStatus(ctx context.Context, userID string, s Status, reason string) error
	// DeleteUser removes a user with its identities, second factors,
	// consents, role grants and login history, or returns ErrNotFound.
	// A store that is a UsernameRetirer retires the username in the same
	// transaction.
	DeleteUser(ctx context.Context, userID string) error
	// SetStatusIf is SetStatus done only if cond holds for the user as
	// read in the same transaction, which holds the user against
	// concurrent logins and changes until it ends; otherwise it writes
	// nothing and returns ErrConditionFailed. The deprovisioning of
	// inactive users uses it, so that a user who signs in after a sweep
	// read them is not disabled.
	SetStatusIf(ctx context.Context, userID string, s Status, reason string, cond UserCondition) error
	// DeleteUserIf is DeleteUser done only if cond holds, as SetStatusIf
	// does it; otherwise ErrConditionFailed, and nothing is deleted.
	DeleteUserIf(ctx context.Context, userID string, cond UserCondition) error
	// AddLoginEvent records one login attempt that reached the user,
	// keeping only the LoginHistoryLength newest of that user; ErrNotFound
	// if there is no such user.
	AddLoginEvent(ctx context.Context, userID string, e LoginEvent) error
	// LoginHistory returns the user's recorded login attempts, newest
	// first (none is not an error).
	LoginHistory(ctx context.Context, userID string) ([]LoginEvent, error)
	// AcquireLease takes, or renews, the named lease for holder until
	// now+ttl, and reports whether holder has it: false while another
	// holder's lease has not expired. Several instances on one store
	// use it so that a background job runs on one of them at a time.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
}

// UserCondition decides whether a conditional change (SetStatusIf,
// DeleteUserIf) still applies to the user as stored. It must be a pure
// function of u: a store may hold the user's row lock while it runs.
type UserCondition func(u *User) bool

// MaxStatusReason bounds the reason SetStatus keeps.
const MaxStatusReason = 500

// CheckStatusChange validates a SetStatus call, so every store applies
// the same rules.
func CheckStatusChange(s Status, reason string) error {
	if s != StatusActive && s != StatusDisabled {
		return fmt.Errorf("invalid status %q", s)
	}
	if len(reason) > MaxStatusReason {
		return fmt.Errorf("the reason is %d bytes; at most %d", len(reason), MaxStatusReason)
	}
	if !StorableText(reason) {
		return errors.New("the reason holds a NUL character or is not valid UTF-8")
	}
	return nil
}

// LoginHistoryLength is how many login attempts a store keeps per user.
const LoginHistoryLength = 20

// LoginEvent is one login attempt of a known user.
type LoginEvent struct {
	// At is when it happened (UTC).
	At time.Time `json:"at"`
	// Connection is the connection it came through.
	Connection string `json:"connection"`
	// Outcome is "succeeded", or why it was refused (e.g. "disabled",
	// "denied").
	Outcome string `json:"outcome"`
}

// RevocationStore keeps logouts so that every instance sharing the
// store, and a restarted one, refuses a logged-out session. The same
// records mark other things used once and refused after, such as a
// login's state and a back-channel logout token: to the store, each is
// an opaque ID with an expiry.
type RevocationStore interface {
	// RevokeSession records that the session with this ID must no longer
	// be accepted; the record may be dropped after expires.
	RevokeSession(ctx context.Context, sessionID string, expires time.Time) error
	// RevokedSessions returns the IDs of sessions revoked at or after
	// since whose expiry has not passed, so that every instance sharing
	// the store can learn of logouts. since is compared with the
	// RevokedAt the store reports: jit_auth passes back one it was
	// given (less an overlap), never its own clock, so a store shared
	// by several hosts stamps RevokedAt by one clock (the database's),
	// else a writer whose clock is behind hides its logouts.
	RevokedSessions(ctx context.Context, since time.Time) ([]RevokedSession, error)
}

// SingleUseStore is an optional part of a RevocationStore: it records
// a single-use ID (a login's state, a pending login's answer) so that
// exactly one of the instances sharing the store uses it. Without it,
// jit_auth records such IDs with RevokeSession, and an ID used on one
// instance is refused on the others only from their next revocation
// poll on. Both shipped stores implement it.
type SingleUseStore interface {
	// UseOnce records id until expires, as RevokeSession does (so
	// RevokedSessions lists it), and reports whether this call recorded
	// it: false, with nothing written, when a record of id whose expiry
	// has not passed is there already. Of any number of concurrent
	// calls for one id, on any number of instances, exactly one gets
	// true.
	UseOnce(ctx context.Context, id string, expires time.Time) (first bool, err error)
}

// SecondFactorStore keeps users' TOTP factors. Every method that changes
// a factor is atomic across instances, since two instances may check
// codes of one user at the same moment.
type SecondFactorStore interface {
	// TOTP returns the user's enrolled TOTP factor, or ErrNotFound.
	TOTP(ctx context.Context, userID string) (*TOTP, error)
	// SetTOTP enrols (or replaces) the user's TOTP factor; LastStep and
	// Failures start from the given values. ErrNotFound if no such user.
	SetTOTP(ctx context.Context, userID string, t TOTP) error
	// DeleteTOTP removes the user's TOTP factor (an administrative reset);
	// removing a factor that does not exist is not an error.
	DeleteTOTP(ctx context.Context, userID string) error
	// UseTOTPStep atomically accepts the time step of a correct code: it
	// succeeds only when step is greater than the stored LastStep, stores
	// step and resets Failures. Otherwise it returns ErrCodeUsed (or
	// ErrNotFound when the user has no factor), so a code is accepted at
	// most once, even by several instances at the same moment.
	UseTOTPStep(ctx context.Context, userID string, step int64) error
	// UseRecoveryCode atomically removes hash from the user's recovery
	// code hashes and resets Failures; ErrCodeUsed if it is not there.
	UseRecoveryCode(ctx context.Context, userID, hash string) error
	// AdmitTOTPAttempt decides whether one more code may be checked for
	// the user at time at, atomically with counting it: in one
	// transaction that holds the factor's row against every other
	// caller (other goroutines and other processes sharing the store),
	// it runs wait on the stored Failures and LastFailure. If wait
	// returns more than 0, nothing is written and that is the wait;
	// otherwise the attempt is counted (Failures+1, LastFailure = at)
	// and the wait is 0. attempts is the count after the call. So of
	// any number of concurrent attempts, exactly as many are admitted
	// as the policy allows. ErrNotFound if the user has no factor; on
	// any error nothing is written.
	AdmitTOTPAttempt(ctx context.Context, userID string, at time.Time, wait TOTPWait) (attempts int, retryAfter time.Duration, err error)
}

// TOTPEnroller is an optional part of a SecondFactorStore: it saves a
// user's first factor atomically, so that of two enrolments confirmed at
// the same moment (two browsers, two instances) exactly one is saved and
// the other is told so. Without it, an enrolment checks for a factor
// with TOTP and then saves with SetTOTP, and the later of two such
// enrolments replaces the earlier. Both shipped stores implement it.
type TOTPEnroller interface {
	// EnrolTOTP saves t as the user's TOTP factor, as SetTOTP does,
	// unless the user has one: then it returns ErrFactorExists and
	// writes nothing. ErrNotFound if there is no such user.
	EnrolTOTP(ctx context.Context, userID string, t TOTP) error
}

// TOTPWait is the rate-limit policy that AdmitTOTPAttempt runs inside
// its transaction (mfa.Locked): how long a user with attempts codes
// checked since the last accepted one, the latest at last, must still
// wait at now; 0 admits one more. It must be a pure function: a store
// may hold a row lock while it runs.
type TOTPWait func(attempts int, last, now time.Time) time.Duration

// TOTP is a user's enrolled time-based one-time password factor.
type TOTP struct {
	// SealedSecret is the shared secret, sealed by the caller; the store
	// never sees it in the clear.
	SealedSecret []byte `json:"-"`
	// RecoveryHashes are hashes of the unused recovery codes.
	RecoveryHashes []string `json:"-"`
	// LastStep is the RFC 6238 time step of the last accepted code.
	LastStep int64 `json:"last_step"`
	// Failures counts the codes admitted for checking (see
	// AdmitTOTPAttempt) since the last accepted one, and LastFailure is
	// when the latest was admitted.
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	// CreatedAt is when the factor was enrolled.
	CreatedAt time.Time `json:"created_at"`
}

// RevokedSession is a logged-out session that must stay refused until it
// would have expired anyway.
type RevokedSession struct {
	ID string
	// RevokedAt is when the store last recorded the revocation, by the
	// store's clock (see RevocationStore.RevokedSessions).
	RevokedAt time.Time
	ExpiresAt time.Time
}

// NormalizeEmail is the form in which stores compare email addresses:
// trimmed and lower-cased. Local parts are case-sensitive in theory, but
// no provider we link with treats them so, and comparing them as equal
// can only make linking refuse more, never merge more.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

func sortedUnique(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	out := append([]string(nil), in...)
	slices.Sort(out)
	return slices.Compact(out)
}

// CheckNewUser validates a user a store is about to create, and returns
// its normalised username and its status (active when unset), so every
// store applies the same rules.
func CheckNewUser(u *User) (norm string, status Status, err error) {
	if u == nil {
		return "", "", errors.New("nil user")
	}
	if norm = NormalizeUsername(u.Username); norm == "" {
		return "", "", errors.New("empty username")
	}
	if strings.Contains(norm, QualifierSeparator) {
		// A local username with ':' could equal a JIT-off session name
		// ("<connection>:<value>"), which names someone else (S15).
		return "", "", fmt.Errorf("username %q: ':' is reserved for JIT-off names qualified by their connection", u.Username)
	}
	switch status = u.Status; status {
	case "":
		status = StatusActive
	case StatusActive, StatusDisabled:
	default:
		return "", "", fmt.Errorf("invalid status %q", status)
	}
	return norm, status, nil
}

// UserQuery selects users of the directory; a zero field does not
// filter.
type UserQuery struct {
	// Search matches users whose username, email or name contains it,
	// ignoring letter case.
	Search string
	// Connection matches users with an identity through it.
	Connection string
	// Status matches users with this status.
	Status Status
	// Role matches users who hold it, from any source.
	Role string
	// SeenBefore and SeenAfter match users whose last login is before,
	// or at or after, the time; a user who never logged in is seen
	// before any time and after none.
	SeenBefore, SeenAfter time.Time
	// NotEnabledSince matches users not enabled at or after the time:
	// disabled users, and active users whose status last changed
	// (StatusChangedAt, to active then) before it, or never. With
	// SeenBefore it selects users inactive since the time, counting an
	// administrator's enable as activity.
	NotEnabledSince time.Time
	// After is where the page starts: the normalised username of the
	// last user of the previous page (NormalizeUsername), "" for the
	// first page.
	After string
	// Limit bounds the page; at most MaxSearchLimit, 0 means none.
	Limit int
}

// MaxSearchLimit is the largest page SearchUsers returns.
const MaxSearchLimit = 1000

// SearchPattern is q.Search as a LIKE pattern that matches it anywhere,
// lower-cased as NormalizeName does, with LIKE's own characters escaped
// by '\'.
func (q UserQuery) SearchPattern() string {
	return likePattern(strings.ToLower(q.Search))
}

// UsernamePattern is SearchPattern for usernames, which the stores keep
// as NormalizeUsername makes them.
func (q UserQuery) UsernamePattern() string {
	return likePattern(NormalizeUsername(q.Search))
}

// NamePattern is SearchPattern for the names the stores keep as
// NormalizeName makes them.
func (q UserQuery) NamePattern() string {
	return likePattern(NormalizeName(q.Search))
}

// likePattern is a LIKE pattern (with ESCAPE '\') matching s anywhere.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// NormalizeName is the form in which stores keep a user's name for the
// directory search: composed (NFC, so "E\u0301lodie" is "Élodie") and
// case-folded over all of Unicode (final sigma and sigma alike), as Go
// does it, so that the search's answers do not depend on what a
// database's own lower() folds (SQLite's, ASCII only).
func NormalizeName(name string) string { return cases.Fold().String(norm.NFC.String(name)) }

// RefreshToken is a session's refresh token at its provider, kept for a
// connection that refreshes sessions in the background. Sealed is the
// token sealed by the caller (the store never sees it in the clear).
type RefreshToken struct {
	// SessionID is the session it belongs to.
	SessionID string
	// UserID is the session's local user; deleting the user deletes it.
	UserID     string
	Connection string
	Sealed     []byte
	// RefreshAt is when it is next due; ExpiresAt when the session ends,
	// after which it is of no use.
	RefreshAt time.Time
	ExpiresAt time.Time
}

// RefreshTokenStore keeps the refresh tokens of live sessions, for
// connections with background refresh. Optional: a store without it
// cannot back `refresh`, and loading says so.
type RefreshTokenStore interface {
	// PutRefreshToken inserts or replaces the token of t.SessionID. It
	// returns ErrNotFound if t.UserID is no user.
	PutRefreshToken(ctx context.Context, t RefreshToken) error
	// DueRefreshTokens returns up to limit tokens whose RefreshAt is not
	// after before, the earliest first.
	DueRefreshTokens(ctx context.Context, before time.Time, limit int) ([]RefreshToken, error)
	// DeleteRefreshToken removes the session's token; none is not an
	// error.
	DeleteRefreshToken(ctx context.Context, sessionID string) error
}

// MaxUsersByID bounds the IDs of one UsersByID call.
const MaxUsersByID = 500

// UserBatchReader is an optional role of a user store: many users read
// by ID in one query. The background refresh of live sessions' user
// status uses it (at a million users with 100k live sessions, one query
// per user would be 100k queries a minute); without it, that refresh
// reads one user per query.
type UserBatchReader interface {
	// UsersByID returns the users that exist among ids (at most
	// MaxUsersByID), in any order; an ID with no user is left out.
	UsersByID(ctx context.Context, ids []string) ([]User, error)
}

// IssuerAdopter is an optional role of a user store: it gives the
// identities an earlier release stored under one issuer for a connection
// the issuer that connection's logins give now, once. The goth connector
// keyed identities by the provider's name alone ("gitlab") before it
// named the instance of a connection with one configured
// ("gitlab|https://git.example.com"); what was stored for such a
// connection is that instance's, but only until the connection has run
// on this release: from then on an identity under the bare name is one
// of the provider's own instance, and must never pass to another.
type IssuerAdopter interface {
	// AdoptIssuer moves the identities of connection whose issuer is
	// from to issuer to, the first time it is called for connection on
	// this store, and records the call with the move, atomically; every
	// later call for connection moves nothing, whatever from and to are.
	// from == to only records the call. An identity whose key under to
	// is taken already stays under from. It returns how many identities
	// moved.
	AdoptIssuer(ctx context.Context, connection, from, to string) (int, error)
}

package provisioner

import (
	"context"
	"errors"
	"fmt"
	"time"
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
	// Status is active or disabled.
	Status Status `json:"status"`
	// CreatedAt, UpdatedAt and LastLoginAt are store timestamps (UTC).
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	LastLoginAt time.Time `json:"last_login_at,omitzero"`
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

// Profile is the set of user attributes that provisioning writes.
type Profile struct {
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	Picture       string
	Groups        []string
	Attributes    map[string]string
}

// Errors every Store returns (wrapped or bare) so callers can tell
// outcomes apart with errors.Is.
var (
	// ErrNotFound: no such user or identity.
	ErrNotFound = errors.New("not found")
	// ErrIdentityExists: the identity is already linked to a user.
	ErrIdentityExists = errors.New("identity already exists")
	// ErrUsernameTaken: another user holds the (normalised) username.
	ErrUsernameTaken = errors.New("username already taken")
)

// Store keeps local users and their identities. Implementations must be
// safe for concurrent use by several goroutines and, for shared stores,
// several processes.
type Store interface {
	// UserByIdentity returns the user linked to key, or ErrNotFound.
	UserByIdentity(ctx context.Context, key IdentityKey) (*User, error)
	// User returns the user with the given local ID, or ErrNotFound.
	User(ctx context.Context, id string) (*User, error)
	// UserByUsername returns the user whose normalised username equals the
	// normalised argument, or ErrNotFound.
	UserByUsername(ctx context.Context, username string) (*User, error)

	// CreateUser atomically inserts u (its ID, Status and timestamps are
	// set by the store) together with its first identity. It returns
	// ErrIdentityExists if the identity is already linked, and
	// ErrUsernameTaken if the username is taken; in both cases nothing is
	// written.
	CreateUser(ctx context.Context, u *User, id Identity) (*User, error)
	// LinkIdentity links one more identity to an existing user (account
	// linking). It returns ErrNotFound if there is no such user and
	// ErrIdentityExists if the identity is linked already, to this user
	// or another; in both cases nothing is written.
	LinkIdentity(ctx context.Context, userID string, id Identity) error
	// RecordLogin writes a later login of an existing identity: the
	// profile (when non-nil) replaces the user's attributes, and the
	// identity's raw claims and both last-login times are refreshed.
	RecordLogin(ctx context.Context, key IdentityKey, p *Profile, rawClaims []byte, at time.Time) (*User, error)

	// ListUsers returns up to limit users ordered by username, after
	// skipping offset.
	ListUsers(ctx context.Context, offset, limit int) ([]User, error)
	// Identities returns the identities linked to a user.
	Identities(ctx context.Context, userID string) ([]Identity, error)
	// SetStatus enables or disables a user.
	SetStatus(ctx context.Context, userID string, s Status) error
	// DeleteUser removes a user and its identities.
	DeleteUser(ctx context.Context, userID string) error

	// RevokeSession records that the session with this ID must no longer
	// be accepted; the record may be dropped after expires.
	RevokeSession(ctx context.Context, sessionID string, expires time.Time) error
	// RevokedSessions returns the IDs of sessions revoked at or after
	// since whose expiry has not passed, so that every instance sharing
	// the store can learn of logouts.
	RevokedSessions(ctx context.Context, since time.Time) ([]RevokedSession, error)

	// Close releases the store's resources.
	Close() error
}

// RevokedSession is a logged-out session that must stay refused until it
// would have expired anyway.
type RevokedSession struct {
	ID        string
	RevokedAt time.Time
	ExpiresAt time.Time
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
	switch status = u.Status; status {
	case "":
		status = StatusActive
	case StatusActive, StatusDisabled:
	default:
		return "", "", fmt.Errorf("invalid status %q", status)
	}
	return norm, status, nil
}

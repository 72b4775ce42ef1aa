// Package pgstore is a provisioner.Store kept in PostgreSQL, for several
// Caddy instances that share their users. It uses pgx with a connection
// pool (pgxpool).
//
// # Connection URL
//
// Open takes a libpq-style URL or keyword/value string, for example
//
//	postgres://jitauth:secret@db.example.com:5432/auth?sslmode=verify-full
//
// Everything pgx understands works, including the pool settings
// (pool_max_conns, pool_max_conn_lifetime, …) and server parameters
// passed at connection start. In particular search_path selects the
// schema the store lives in:
//
//	postgres://…/auth?search_path=jitauth
//
// The store creates its tables in the first existing schema of the
// search_path (current_schema()); the schema itself must exist. Behind
// a transaction-pooling proxy (PgBouncer in transaction mode) add
// default_query_exec_mode=exec, since pgx otherwise caches prepared
// statements per connection.
//
// # Schema and migrations
//
// Open migrates the schema automatically. Each step runs in its own
// transaction under a transaction-level advisory lock keyed on the
// schema, and re-reads the version from schema_migrations once it holds
// the lock, so any number of instances may start at once against an
// empty schema. Open refuses a schema migrated by a newer build
// (ErrSchemaTooNew).
//
// Times are timestamptz (microsecond precision, read back in UTC); a
// zero time.Time is stored as NULL. Groups, attributes, role grants,
// local attributes, consents, recovery code hashes and raw claims are
// jsonb.
//
// # Timeouts and outages
//
// Every call runs under the caller's context; when that context has no
// deadline, DefaultTimeout bounds the call. When the server is
// unreachable calls return errors (never ErrNotFound); the pool pings
// every connection before handing it out, drops broken ones, and
// connects afresh once the server is back, so the first login after an
// outage does not fail on a connection that died during it. (The store
// serves logins, not every request, so the extra round trip is cheap.)
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/internal/userrow"
)

// DefaultTimeout bounds each call (and Open as a whole) whose context
// has no deadline of its own.
const DefaultTimeout = 5 * time.Second

// defaultPingTimeout bounds the liveness ping of a connection that sat
// idle, so a connection to a vanished server is replaced quickly rather
// than eating the whole call's time.
const defaultPingTimeout = 2 * time.Second

// Store is a provisioner.Store backed by PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	target  string
	timeout time.Duration
	now     func() time.Time
}

var (
	_ provisioner.Store           = (*Store)(nil)
	_ provisioner.UsernameRetirer = (*Store)(nil)
	_ provisioner.IssuerAdopter   = (*Store)(nil)
)

// Open connects to the database at connString (see the package
// documentation), checks that it answers and migrates the schema to the
// current version: New, then Connect. It fails if the server does not
// answer within the context's deadline (DefaultTimeout if there is none),
// if no schema of the search_path exists, or if the schema was migrated
// by a newer build (ErrSchemaTooNew). Errors never include the password.
func Open(ctx context.Context, connString string) (*Store, error) {
	s, err := New(connString)
	if err != nil {
		return nil, err
	}
	if err := s.Connect(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// New parses connString and sets up the connection pool without
// connecting: nothing reaches the server until Connect or a query. A
// caller that must not touch the database yet (caddy validate) uses it
// alone.
func New(connString string) (*Store, error) {
	if strings.TrimSpace(connString) == "" {
		return nil, errors.New("postgres store: empty database URL")
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %s", parseErrorMessage(err, connString))
	}
	if cfg.PingTimeout == 0 {
		cfg.PingTimeout = defaultPingTimeout
	}
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return true }
	s := &Store{target: describe(cfg), timeout: DefaultTimeout, now: time.Now}
	// NewWithConfig does not connect; Connect and queries do.
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %s: %w", s.target, err)
	}
	s.pool = pool
	return s, nil
}

// Connect checks that the server answers and migrates the schema, within
// the context's deadline (DefaultTimeout if there is none): Reach, then
// Migrate.
func (s *Store) Connect(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.Reach(ctx); err != nil {
		return err
	}
	return s.Migrate(ctx)
}

// Reach checks that the server answers, within the context's deadline
// (DefaultTimeout if there is none).
func (s *Store) Reach(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres store: connecting to %s: %w", s.target, err)
	}
	return nil
}

// Migrate migrates the schema to the current version, within the
// context's deadline (DefaultTimeout if there is none). A step may take
// a while on a large directory, or wait for the lock on a table that an
// instance of an older build is using: give it a deadline of its own,
// longer than the one for reaching the server.
func (s *Store) Migrate(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := migrate(ctx, s.pool); err != nil {
		return fmt.Errorf("postgres store: migrating %s: %w", s.target, err)
	}
	return nil
}

// Target describes the database without secrets, as
// "user@host:port/database" plus the search_path when one is set, for
// logs and error messages.
func (s *Store) Target() string { return s.target }

func describe(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	host := c.Host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "/") {
		host = "[" + host + "]" // IPv6
	}
	d := fmt.Sprintf("%s@%s:%d/%s", c.User, host, c.Port, c.Database)
	if sp := c.RuntimeParams["search_path"]; sp != "" {
		d += " (search_path " + sp + ")"
	}
	return d
}

// RedactURL returns connString with any password masked, for messages.
// Strings it cannot make sense of are replaced entirely.
func RedactURL(connString string) string {
	if u, err := url.Parse(connString); err == nil && u.Scheme != "" {
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") {
				q.Set(k, "xxxxx")
			}
		}
		u.RawQuery = q.Encode()
		return u.Redacted()
	}
	if strings.Contains(connString, "://") {
		return "(unparsable URL hidden)"
	}
	return kvPassword.ReplaceAllString(connString, "${1}xxxxx")
}

var kvPassword = regexp.MustCompile(`((?i:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// parseErrorMessage words a ParseConfig failure without quoting the
// connection string: pgx masks passwords in its messages only on a best
// effort basis.
func parseErrorMessage(err error, connString string) string {
	msg := err.Error()
	if i, j := strings.Index(msg, "`"), strings.LastIndex(msg, "`"); i >= 0 && j > i {
		msg = msg[:i] + "the database URL" + msg[j+1:]
	}
	leaks := strings.Contains(msg, "://") || strings.Contains(msg, "@") ||
		strings.Contains(strings.ToLower(msg), "password=")
	if u, perr := url.Parse(connString); perr == nil {
		if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(msg, pw) {
			leaks = true
		}
	}
	if leaks {
		return "cannot parse the database URL (details withheld: they would show it)"
	}
	return msg
}

// bound applies the default timeout to contexts without a deadline.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || s.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// Ping checks that the database is reachable and the store's schema
// readable.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := schemaVersion(ctx, s.pool); err != nil {
		return fmt.Errorf("postgres store: ping %s: %w", s.target, err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be
// released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

const userColumns = `u.id, u.username, u.email, u.email_verified, u.name, u.given_name,
	u.family_name, u.picture, u.groups, u.attributes, u.role_grants, u.local_attributes,
	u.consents, u.status, u.created_at, u.updated_at, u.last_login_at,
	u.status_reason, u.status_changed_at, u.keep`

func scanUser(row pgx.Row) (*provisioner.User, error) {
	var (
		u                provisioner.User
		groups, attrs    []byte
		roles, local     []byte
		consents         []byte
		status           string
		created, updated time.Time
		lastLogin        *time.Time
		statusChanged    *time.Time
	)
	if err := row.Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.Name, &u.GivenName,
		&u.FamilyName, &u.Picture, &groups, &attrs, &roles, &local,
		&consents, &status, &created, &updated, &lastLogin,
		&u.StatusReason, &statusChanged, &u.Keep); err != nil {
		return nil, err
	}
	u.Status = provisioner.Status(status)
	u.CreatedAt = created.UTC()
	u.UpdatedAt = updated.UTC()
	if lastLogin != nil {
		u.LastLoginAt = lastLogin.UTC()
	}
	if statusChanged != nil {
		u.StatusChangedAt = statusChanged.UTC()
	}
	for _, c := range []struct {
		what string
		text []byte
		dst  any
	}{
		{"groups", groups, &u.Groups},
		{"attributes", attrs, &u.Attributes},
		{"role grants", roles, &u.RoleGrants},
		{"local attributes", local, &u.LocalAttributes},
		{"consents", consents, &u.Consents},
	} {
		if len(c.text) == 0 {
			continue
		}
		if err := json.Unmarshal(c.text, c.dst); err != nil {
			return nil, fmt.Errorf("decoding %s of user %s: %w", c.what, u.ID, err)
		}
	}
	userrow.ConsentsInUTC(u.Consents)
	return &u, nil
}

func getUser(ctx context.Context, q queryRower, where string, args ...any) (*provisioner.User, error) {
	u, err := scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM users u `+where, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, provisioner.ErrNotFound
	}
	return u, err
}

// UserByIdentity returns the user linked to key, or provisioner.ErrNotFound.
func (s *Store) UserByIdentity(ctx context.Context, key provisioner.IdentityKey) (*provisioner.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u, err := getUser(ctx, s.pool, `JOIN identities i ON i.user_id = u.id
		WHERE i.connection = $1 AND i.issuer = $2 AND i.subject = $3`,
		key.Connection, key.Issuer, key.Subject)
	if err != nil {
		return nil, fmt.Errorf("postgres store: user by identity: %w", err)
	}
	return u, nil
}

// User returns the user with the given ID, or provisioner.ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (*provisioner.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u, err := getUser(ctx, s.pool, `WHERE u.id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("postgres store: user: %w", err)
	}
	return u, nil
}

// UserByUsername returns the user whose normalised username equals the
// normalised argument, or provisioner.ErrNotFound.
func (s *Store) UserByUsername(ctx context.Context, username string) (*provisioner.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u, err := getUser(ctx, s.pool, `WHERE u.username_norm = $1`, provisioner.NormalizeUsername(username))
	if err != nil {
		return nil, fmt.Errorf("postgres store: user by username: %w", err)
	}
	return u, nil
}

// UsersByEmail returns the users whose normalised email equals the
// normalised argument, ordered by normalised username; none for an
// empty email.
func (s *Store) UsersByEmail(ctx context.Context, email string) ([]provisioner.User, error) {
	users := []provisioner.User{}
	norm := provisioner.NormalizeEmail(email)
	if norm == "" {
		return users, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u
		WHERE u.email_norm = $1 ORDER BY u.username_norm, u.id COLLATE "C"`, norm)
	if err != nil {
		return nil, fmt.Errorf("postgres store: users by email: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres store: users by email: %w", err)
		}
		users = append(users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: users by email: %w", err)
	}
	return users, nil
}

// CreateUser inserts u and its first identity in one transaction.
func (s *Store) CreateUser(ctx context.Context, u *provisioner.User, id provisioner.Identity) (*provisioner.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	created, err := s.createUser(ctx, u, id)
	if err != nil {
		return nil, fmt.Errorf("postgres store: creating user: %w", err)
	}
	return created, nil
}

func (s *Store) createUser(ctx context.Context, u *provisioner.User, id provisioner.Identity) (*provisioner.User, error) {
	norm, status, err := provisioner.CheckNewUser(u)
	if err != nil {
		return nil, err
	}
	cols, err := userrow.Columns(u)
	if err != nil {
		return nil, err
	}
	raw, err := rawClaims(id.RawClaims)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	identCreated := id.CreatedAt
	if identCreated.IsZero() {
		identCreated = now
	}
	userID := uuid.NewString()

	var created *provisioner.User
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// The identity is checked first so that a duplicate identity is
		// reported as such even when its username also collides. A
		// concurrent transaction inserting the same identity or username
		// is caught by the unique constraints below: the second insert
		// waits for the first transaction and fails once it commits.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM identities
			WHERE connection = $1 AND issuer = $2 AND subject = $3`,
			id.Connection, id.Issuer, id.Subject).Scan(&one)
		switch {
		case err == nil:
			return provisioner.ErrIdentityExists
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("checking identity: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, username, username_norm,
				email, email_norm, email_verified, name, given_name, family_name, picture,
				groups, attributes, role_grants, local_attributes, consents,
				status, created_at, updated_at, last_login_at, name_norm)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
			userID, u.Username, norm, cols.Email, cols.EmailNorm, cols.EmailVerified,
			cols.Name, cols.GivenName, cols.FamilyName, cols.Picture,
			cols.Groups, cols.Attributes, cols.RoleGrants, cols.LocalAttributes, cols.Consents,
			string(status), now, now, nullTime(u.LastLoginAt), cols.NameNorm); err != nil {
			return mapConstraint(err)
		}
		// A deleted user's name goes to nobody else (S15). Read after the
		// insert: an insert of a name whose holder a concurrent
		// transaction is deleting waits for it, and this statement (READ
		// COMMITTED) then sees the name that transaction retired.
		switch retired, err := usernameRetired(ctx, tx, norm, id.IdentityKey); {
		case err != nil:
			return fmt.Errorf("checking retired usernames: %w", err)
		case retired:
			return fmt.Errorf("%w: a deleted user had it", provisioner.ErrUsernameTaken)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO identities (connection, issuer, subject,
				user_id, raw_claims, created_at, last_login_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			id.Connection, id.Issuer, id.Subject, userID, raw,
			identCreated.UTC(), nullTime(id.LastLoginAt)); err != nil {
			return mapConstraint(err)
		}
		created, err = getUser(ctx, tx, `WHERE u.id = $1`, userID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// LinkIdentity links one more identity to an existing user and, in the
// same transaction, applies update (when non-nil) to the user and sets
// its last-login time to the identity's LastLoginAt (unless zero). An
// error from update is returned unchanged; update is not called when the
// identity is refused.
func (s *Store) LinkIdentity(ctx context.Context, userID string, id provisioner.Identity, update provisioner.UpdateFunc) (*provisioner.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	raw, err := rawClaims(id.RawClaims)
	if err != nil {
		return nil, fmt.Errorf("postgres store: linking identity: %w", err)
	}
	now := s.now().UTC()
	created := id.CreatedAt
	if created.IsZero() {
		created = now
	}
	var u *provisioner.User
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// Lock the user row, as RecordLogin and DeleteUser's cascade do,
		// so a concurrent delete cannot leave an orphan identity and
		// concurrent updates of the user apply one after the other.
		cur, err := getUser(ctx, tx, `WHERE u.id = $1 FOR UPDATE`, userID)
		if err != nil {
			return fmt.Errorf("checking user: %w", err)
		}
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM identities
			WHERE connection = $1 AND issuer = $2 AND subject = $3`,
			id.Connection, id.Issuer, id.Subject).Scan(&one)
		switch {
		case err == nil:
			return provisioner.ErrIdentityExists
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("checking identity: %w", err)
		}
		if u, err = updateUser(ctx, tx, cur, update, now, id.LastLoginAt); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO identities (connection, issuer, subject,
				user_id, raw_claims, created_at, last_login_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			id.Connection, id.Issuer, id.Subject, userID, raw,
			created.UTC(), nullTime(id.LastLoginAt)); err != nil {
			return mapConstraint(err)
		}
		return nil
	})
	if err != nil {
		return nil, userrow.CallerError(err, "postgres store: linking identity")
	}
	return u, nil
}

// RecordLogin records a later login of an existing identity in one
// transaction: update (when non-nil) changes the user, the identity's
// raw claims are replaced when rawClaims is non-nil, and both last-login
// times are set to at (now when zero). The user's updated_at becomes at
// when update changed it. An error from update is returned unchanged.
func (s *Store) RecordLogin(ctx context.Context, key provisioner.IdentityKey, rawClaims []byte, at time.Time, update provisioner.UpdateFunc) (*provisioner.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u, err := s.recordLogin(ctx, key, rawClaims, at, update)
	if err != nil {
		return nil, userrow.CallerError(err, "postgres store: recording login")
	}
	return u, nil
}

func (s *Store) recordLogin(ctx context.Context, key provisioner.IdentityKey, claims []byte, at time.Time, update provisioner.UpdateFunc) (*provisioner.User, error) {
	if at.IsZero() {
		at = s.now()
	}
	at = at.UTC()
	raw, err := rawClaims(claims)
	if err != nil {
		return nil, err
	}
	var u *provisioner.User
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		// Lock the user row first: DeleteUser locks the user and then
		// (by cascade) its identities, so taking them in the same order
		// here cannot deadlock with it. A user deleted meanwhile is not
		// found.
		cur, err := getUser(ctx, tx, `JOIN identities i ON i.user_id = u.id
			WHERE i.connection = $1 AND i.issuer = $2 AND i.subject = $3
			FOR UPDATE OF u`,
			key.Connection, key.Issuer, key.Subject)
		if err != nil {
			return fmt.Errorf("looking up identity: %w", err)
		}
		if u, err = updateUser(ctx, tx, cur, update, at, at); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE identities
			SET raw_claims = COALESCE($1, raw_claims), last_login_at = $2
			WHERE connection = $3 AND issuer = $4 AND subject = $5`,
			raw, at, key.Connection, key.Issuer, key.Subject)
		if err != nil {
			return fmt.Errorf("updating identity: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return provisioner.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser applies update to the user with this ID in one transaction,
// holding the user's row lock; updated_at becomes now when update
// changed the user. An error from update is returned unchanged.
func (s *Store) UpdateUser(ctx context.Context, userID string, update provisioner.UpdateFunc) (*provisioner.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var u *provisioner.User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := getUser(ctx, tx, `WHERE u.id = $1 FOR UPDATE`, userID)
		if err != nil {
			return err
		}
		u, err = updateUser(ctx, tx, cur, update, s.now().UTC(), time.Time{})
		return err
	})
	if err != nil {
		return nil, userrow.CallerError(err, "postgres store: updating user")
	}
	return u, nil
}

// RecordUserLogin sets the user's last login to at unless it is later
// already (provisioner.LoginRecorder).
func (s *Store) RecordUserLogin(ctx context.Context, userID string, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := getUser(ctx, tx, `WHERE u.id = $1 FOR UPDATE`, userID)
		if err != nil {
			return err
		}
		if !cur.LastLoginAt.Before(at) {
			return nil
		}
		_, err = updateUser(ctx, tx, cur, nil, time.Time{}, at.UTC())
		return err
	})
	if err != nil {
		return userrow.CallerError(err, "postgres store: recording a login")
	}
	return nil
}

// ListUsers returns up to limit users ordered by normalised username
// (byte order, as in the SQLite store), after skipping offset. A limit
// of zero or less returns no users.
func (s *Store) ListUsers(ctx context.Context, offset, limit int) ([]provisioner.User, error) {
	if offset < 0 {
		offset = 0
	}
	if limit <= 0 {
		return []provisioner.User{}, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u
		ORDER BY u.username_norm, u.id COLLATE "C" LIMIT $1 OFFSET $2`, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("postgres store: listing users: %w", err)
	}
	defer rows.Close()
	users := []provisioner.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres store: listing users: %w", err)
		}
		users = append(users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: listing users: %w", err)
	}
	return users, nil
}

// Identities returns the identities linked to a user, oldest first. An
// unknown user has none.
func (s *Store) Identities(ctx context.Context, userID string) ([]provisioner.Identity, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT connection, issuer, subject, user_id,
			raw_claims, created_at, last_login_at
		FROM identities WHERE user_id = $1
		ORDER BY created_at, connection COLLATE "C", issuer COLLATE "C", subject COLLATE "C"`, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres store: listing identities: %w", err)
	}
	defer rows.Close()
	ids := []provisioner.Identity{}
	for rows.Next() {
		var (
			id        provisioner.Identity
			created   time.Time
			lastLogin *time.Time
		)
		if err := rows.Scan(&id.Connection, &id.Issuer, &id.Subject, &id.UserID,
			&id.RawClaims, &created, &lastLogin); err != nil {
			return nil, fmt.Errorf("postgres store: listing identities: %w", err)
		}
		id.CreatedAt = created.UTC()
		if lastLogin != nil {
			id.LastLoginAt = lastLogin.UTC()
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: listing identities: %w", err)
	}
	return ids, nil
}

// SetStatus enables or disables a user; provisioner.ErrNotFound if there
// is no such user.
func (s *Store) SetStatus(ctx context.Context, userID string, st provisioner.Status, reason string) error {
	if err := provisioner.CheckStatusChange(st, reason); err != nil {
		return fmt.Errorf("postgres store: setting status: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.now().UTC()
	tag, err := s.pool.Exec(ctx, setStatusSQL, string(st), reason, now, userID)
	if err := affectedOne(tag, err); err != nil {
		return fmt.Errorf("postgres store: setting status: %w", err)
	}
	return nil
}

const setStatusSQL = `UPDATE users SET status = $1, status_reason = $2, status_changed_at = $3, updated_at = $3 WHERE id = $4`

// SetStatusIf sets the status as SetStatus does, in a transaction that
// locks the user's row, and writes only if cond holds for it.
func (s *Store) SetStatusIf(ctx context.Context, userID string, st provisioner.Status, reason string, cond provisioner.UserCondition) error {
	if err := provisioner.CheckStatusChange(st, reason); err != nil {
		return fmt.Errorf("postgres store: setting status: %w", err)
	}
	err := s.ifUser(ctx, userID, cond, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, setStatusSQL, string(st), reason, s.now().UTC(), userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres store: setting status: %w", err)
	}
	return nil
}

// DeleteUser removes a user and (by cascade) its identities and TOTP
// factor, and retires its username (see retireUsername);
// provisioner.ErrNotFound if there is no such user.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.inTx(ctx, func(tx pgx.Tx) error { return deleteUser(ctx, tx, userID) })
	if err != nil {
		return fmt.Errorf("postgres store: deleting user: %w", err)
	}
	return nil
}

// DeleteUserIf deletes the user as DeleteUser does, in a transaction
// that locks the user's row, and only if cond holds for it.
func (s *Store) DeleteUserIf(ctx context.Context, userID string, cond provisioner.UserCondition) error {
	err := s.ifUser(ctx, userID, cond, func(ctx context.Context, tx pgx.Tx) error {
		return deleteUser(ctx, tx, userID)
	})
	if err != nil {
		return fmt.Errorf("postgres store: deleting user: %w", err)
	}
	return nil
}

// deleteUser retires the user's username and deletes the user, in tx;
// provisioner.ErrNotFound if there is no such user.
func deleteUser(ctx context.Context, tx pgx.Tx, userID string) error {
	if err := retireUsername(ctx, tx, userID); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, userID)
	return affectedOne(tag, err)
}

// retireUsername records the username of the user about to be deleted
// as retired, with each of the user's identities, as hashes
// (provisioner.UsernameRetirer). It locks the user's row first, as
// LinkIdentity does, so no identity is linked to the user between the
// read of its identities and the delete. A name that is already
// retired keeps its records and gains this user's identities.
func retireUsername(ctx context.Context, tx pgx.Tx, userID string) error {
	var norm string
	err := tx.QueryRow(ctx, `SELECT username_norm FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&norm)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return provisioner.ErrNotFound
	case err != nil:
		return fmt.Errorf("reading the username to retire: %w", err)
	}
	name := provisioner.RetiredName(norm)
	if name == "" {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT connection, issuer, subject FROM identities WHERE user_id = $1`, userID)
	if err != nil {
		return fmt.Errorf("reading the identities to retire the username with: %w", err)
	}
	holders := []string{""} // the mark that the name is retired
	for rows.Next() {
		var k provisioner.IdentityKey
		if err := rows.Scan(&k.Connection, &k.Issuer, &k.Subject); err != nil {
			rows.Close()
			return fmt.Errorf("reading the identities to retire the username with: %w", err)
		}
		holders = append(holders, provisioner.RetiredHolder(norm, k))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the identities to retire the username with: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO retired_usernames (name_hash, holder_hash)
		SELECT $1, h FROM unnest($2::text[]) AS h ON CONFLICT DO NOTHING`, name, holders); err != nil {
		return fmt.Errorf("retiring the username: %w", err)
	}
	return nil
}

// UsernameRetired reports whether username is retired for key (see
// provisioner.UsernameRetirer).
func (s *Store) UsernameRetired(ctx context.Context, username string, key provisioner.IdentityKey) (bool, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	retired, err := usernameRetired(ctx, s.pool, username, key)
	if err != nil {
		return false, fmt.Errorf("postgres store: looking up retired usernames: %w", err)
	}
	return retired, nil
}

// usernameRetired is UsernameRetired, read through q.
func usernameRetired(ctx context.Context, q queryRower, username string, key provisioner.IdentityKey) (bool, error) {
	name := provisioner.RetiredName(username)
	if name == "" {
		return false, nil
	}
	var retired bool
	err := q.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM retired_usernames WHERE name_hash = $1)
		AND NOT EXISTS (SELECT 1 FROM retired_usernames WHERE name_hash = $1 AND holder_hash = $2)`,
		name, provisioner.RetiredHolder(username, key)).Scan(&retired)
	return retired, err
}

// ifUser runs change in a transaction if cond holds for the user as
// read there, FOR UPDATE: a login's write of the row waits for it, and
// it reads the row as a login that committed first left it.
// provisioner.ErrConditionFailed if cond does not hold.
func (s *Store) ifUser(ctx context.Context, userID string, cond provisioner.UserCondition, change func(context.Context, pgx.Tx) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.inTx(ctx, func(tx pgx.Tx) error {
		cur, err := getUser(ctx, tx, `WHERE u.id = $1 FOR UPDATE`, userID)
		if err != nil {
			return err
		}
		if !cond(userrow.Clone(cur)) {
			return provisioner.ErrConditionFailed
		}
		return change(ctx, tx)
	})
}

func affectedOne(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return provisioner.ErrNotFound
	}
	return nil
}

// RevokeSession records a revoked session until expires, and drops
// records whose expiry has passed. Revoking a session again keeps its
// first revocation time and the later of the two expiries, and records
// the row anew, so the other instances read the expiry it now has.
// Revocation times come from the database's clock, not this process's: the
// instances sharing the database read each other's revocations by them
// (RevokedSessions), and one whose clock is behind would otherwise
// write revocations the others never read.
func (s *Store) RevokeSession(ctx context.Context, sessionID string, expires time.Time) error {
	// The prune spares this session's row: a statement may not both
	// delete and update it. A record of it that has expired is replaced
	// instead, as if pruned first.
	_, err := s.recordRevocation(ctx, "revoking session", sessionID, expires, `DO UPDATE SET
			revoked_at = CASE WHEN r.expires_at <= $2 THEN EXCLUDED.revoked_at ELSE r.revoked_at END,
			expires_at = CASE WHEN r.expires_at <= $2 THEN EXCLUDED.expires_at
				ELSE GREATEST(r.expires_at, EXCLUDED.expires_at) END,
			recorded_at = EXCLUDED.recorded_at`)
	return err
}

// UseOnce records a single-use ID as RevokeSession does, unless a
// record of it that has not expired is there (see
// provisioner.SingleUseStore). A concurrent insert of the same ID waits
// for the other's commit and then meets its row, so one caller wins.
func (s *Store) UseOnce(ctx context.Context, id string, expires time.Time) (bool, error) {
	// An expired record is replaced, as if pruned first; a live one is
	// left alone, and the statement then writes no row.
	return s.recordRevocation(ctx, "recording a single-use ID", id, expires, `DO UPDATE SET
			revoked_at = EXCLUDED.revoked_at, expires_at = EXCLUDED.expires_at,
			recorded_at = EXCLUDED.recorded_at
			WHERE r.expires_at <= $2`)
}

// recordRevocation prunes expired records and inserts id's in one
// statement (one round trip, atomic on its own), resolving a record
// already there with onConflict; it reports whether a row was written.
// A written row's recorded_at is the database's clock_timestamp(), so
// every instance reads it by the same clock (RevokedSessions); expiries
// stay this process's times, as the sessions' own are.
func (s *Store) recordRevocation(ctx context.Context, what, id string, expires time.Time, onConflict string) (bool, error) {
	if id == "" {
		return false, fmt.Errorf("postgres store: %s: empty ID", what)
	}
	if expires.IsZero() {
		return false, fmt.Errorf("postgres store: %s: zero expiry", what)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.now().UTC()
	tag, err := s.pool.Exec(ctx, `WITH pruned AS (
			DELETE FROM revoked_sessions WHERE expires_at <= $2 AND id <> $1
		)
		INSERT INTO revoked_sessions AS r (id, revoked_at, expires_at, recorded_at)
		VALUES ($1, now(), $3, clock_timestamp())
		ON CONFLICT (id) `+onConflict,
		id, now, expires.UTC())
	if err != nil {
		return false, fmt.Errorf("postgres store: %s: %w", what, err)
	}
	return tag.RowsAffected() > 0, nil
}

// RevokedSessions returns sessions recorded at or after since (all of
// them when since is zero) that have not yet expired, oldest record
// first. RevokedAt is when the database last recorded the revocation,
// by its own clock (recorded_at), so a since taken from an earlier
// answer misses nothing whatever the writers' clocks say.
func (s *Store) RevokedSessions(ctx context.Context, since time.Time) ([]provisioner.RevokedSession, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT id, recorded_at, expires_at FROM revoked_sessions
		WHERE ($1::timestamptz IS NULL OR recorded_at >= $1) AND expires_at > $2
		ORDER BY recorded_at, id COLLATE "C"`,
		nullTime(since), s.now().UTC())
	if err != nil {
		return nil, fmt.Errorf("postgres store: listing revoked sessions: %w", err)
	}
	defer rows.Close()
	out := []provisioner.RevokedSession{}
	for rows.Next() {
		var rs provisioner.RevokedSession
		if err := rows.Scan(&rs.ID, &rs.RevokedAt, &rs.ExpiresAt); err != nil {
			return nil, fmt.Errorf("postgres store: listing revoked sessions: %w", err)
		}
		rs.RevokedAt, rs.ExpiresAt = rs.RevokedAt.UTC(), rs.ExpiresAt.UTC()
		out = append(out, rs)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: listing revoked sessions: %w", err)
	}
	return out, nil
}

// inTx runs fn in a transaction, committing if fn succeeds and rolling
// back otherwise, also when fn (a caller's UpdateFunc) panics, so no
// connection is left holding row locks.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		// A rollback that fails (the connection died, ctx ended) makes
		// pgx close the connection, so it never returns to the pool
		// mid-transaction; the server rolls back on its own.
		_ = tx.Rollback(ctx)
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", mapConstraint(err))
	}
	return nil
}

// Constraint names from the migrations, which mapConstraint keys on.
const (
	usernameConstraint = "users_username_norm_key"
	identityConstraint = "identities_pkey"
)

// mapConstraint turns unique violations (SQLSTATE 23505) into the store
// errors callers check for, by constraint name.
func mapConstraint(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return err
	}
	switch pe.ConstraintName {
	case usernameConstraint:
		return fmt.Errorf("%w (%v)", provisioner.ErrUsernameTaken, err)
	case identityConstraint:
		return fmt.Errorf("%w (%v)", provisioner.ErrIdentityExists, err)
	}
	return err
}

// rawClaims returns the jsonb argument for raw claims: NULL for nil, and
// a clear error for bytes that are not JSON.
func rawClaims(b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, errors.New("raw claims are not valid JSON")
	}
	return string(b), nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// UsersByID returns the existing users among ids, in one query.
func (s *Store) UsersByID(ctx context.Context, ids []string) ([]provisioner.User, error) {
	users := []provisioner.User{}
	if len(ids) == 0 {
		return users, nil
	}
	if len(ids) > provisioner.MaxUsersByID {
		return nil, fmt.Errorf("postgres store: users by ID: %d IDs, at most %d per call", len(ids), provisioner.MaxUsersByID)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres store: users by ID: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres store: users by ID: %w", err)
		}
		users = append(users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: users by ID: %w", err)
	}
	return users, nil
}

var _ provisioner.UserBatchReader = (*Store)(nil)

// AdoptIssuer implements provisioner.IssuerAdopter: the record of the
// connection and the move are one transaction, so of several instances
// starting at once only one moves anything.
func (s *Store) AdoptIssuer(ctx context.Context, connection, from, to string) (int, error) {
	var moved int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO adopted_issuers (connection, issuer, adopted_at) VALUES ($1, $2, $3)
			ON CONFLICT (connection) DO NOTHING`, connection, to, time.Now().UTC())
		if err != nil || tag.RowsAffected() == 0 || from == to {
			return err
		}
		tag, err = tx.Exec(ctx, `UPDATE identities SET issuer = $1
			WHERE connection = $2 AND issuer = $3 AND NOT EXISTS (
				SELECT 1 FROM identities AS taken WHERE taken.connection = identities.connection
					AND taken.issuer = $1 AND taken.subject = identities.subject)`, to, connection, from)
		moved = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres store: adopting the issuer of connection %s's identities: %w", connection, err)
	}
	return int(moved), nil
}

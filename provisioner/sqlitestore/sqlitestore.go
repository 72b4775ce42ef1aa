// Package sqlitestore is an embedded provisioner.Store kept in one SQLite
// file, using the pure-Go driver modernc.org/sqlite (no cgo).
//
// The database runs in WAL mode; every write transaction takes the write
// lock when it begins (BEGIN IMMEDIATE), so concurrent writers queue on
// the busy timeout instead of failing to upgrade a read lock. Several
// processes may share one file on a local filesystem.
//
// Times are stored as INTEGER Unix nanoseconds (UTC), so they round-trip
// exactly; a zero time.Time is stored as NULL. Non-zero times must lie
// between the years 1678 and 2262.
package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/internal/userrow"
)

// Store is a provisioner.Store backed by a SQLite database file.
type Store struct {
	db   *sql.DB
	path string
	now  func() time.Time
	// writer admits one writing transaction of this process at a time.
	// SQLite allows one writer anyway, but makes waiting writers retry
	// on a timer rather than queue, so under load some starve until
	// their busy timeout; queueing them here keeps every write prompt.
	// Other processes on the same file still meet the busy timeout.
	writer chan struct{}
}

var (
	_ provisioner.Store           = (*Store)(nil)
	_ provisioner.UsernameRetirer = (*Store)(nil)
	_ provisioner.IssuerAdopter   = (*Store)(nil)
)

// BusyTimeout is how long a statement waits for another writer's lock
// before failing.
const BusyTimeout = 10 * time.Second

// Open opens (creating if needed) the SQLite database at path, creating
// its parent directory with mode 0700 if missing, and migrates it to the
// current schema. It fails if the database was created by a newer build
// (see ErrSchemaTooNew).
func Open(path string) (*Store, error) {
	return open(context.Background(), path)
}

func open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite store: empty database path")
	}
	dsn, memory, err := dataSourceName(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: %w", err)
	}
	if !memory {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("sqlite store: creating directory for %s: %w", path, err)
		}
		// The file holds personal data: create it readable by its owner
		// only (SQLite gives its -wal and -shm files the same mode).
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: creating %s: %w", path, err)
		}
		_ = f.Close()
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: opening %s: %w", path, err)
	}
	if memory {
		// Each connection to ":memory:" is a separate database.
		db.SetMaxOpenConns(1)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store: opening %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store: migrating %s: %w", path, err)
	}
	return &Store{db: db, path: path, now: time.Now, writer: make(chan struct{}, 1)}, nil
}

// dataSourceName builds the driver DSN for path: a file: URI with the
// path escaped (so '?' or '#' in it are harmless) and the connection
// parameters.
func dataSourceName(path string) (dsn string, memory bool, err error) {
	q := url.Values{}
	// busy_timeout first, so the PRAGMAs after it wait for locks too.
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if path == ":memory:" {
		return "file::memory:?" + q.Encode(), true, nil
	}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", false, fmt.Errorf("resolving %s: %w", path, err)
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	if !strings.HasPrefix(u.Path, "/") { // Windows drive letters
		u.Path = "/" + u.Path
	}
	return u.String(), false, nil
}

// Path returns the database file path given to Open.
func (s *Store) Path() string { return s.path }

// Ping checks that the database is reachable and readable.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := schemaVersion(ctx, s.db); err != nil {
		return fmt.Errorf("sqlite store: ping: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite store: closing: %w", err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const userColumns = `u.id, u.username, u.email, u.email_verified, u.name, u.given_name,
	u.family_name, u.picture, u.groups, u.attributes, u.role_grants, u.local_attributes,
	u.consents, u.status, u.created_at, u.updated_at, u.last_login_at,
	u.status_reason, u.status_changed_at, u.keep`

type scanner interface{ Scan(dest ...any) error }

func scanUser(row scanner) (*provisioner.User, error) {
	var (
		u                provisioner.User
		groups, attrs    sql.NullString
		roles, local     sql.NullString
		consents         sql.NullString
		status           string
		created, updated int64
		lastLogin        sql.NullInt64
		statusChanged    sql.NullInt64
	)
	if err := row.Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.Name, &u.GivenName,
		&u.FamilyName, &u.Picture, &groups, &attrs, &roles, &local,
		&consents, &status, &created, &updated, &lastLogin,
		&u.StatusReason, &statusChanged, &u.Keep); err != nil {
		return nil, err
	}
	u.Status = provisioner.Status(status)
	u.CreatedAt = fromNanos(created)
	u.UpdatedAt = fromNanos(updated)
	if lastLogin.Valid {
		u.LastLoginAt = fromNanos(lastLogin.Int64)
	}
	if statusChanged.Valid {
		u.StatusChangedAt = fromNanos(statusChanged.Int64)
	}
	for _, c := range []struct {
		what string
		text sql.NullString
		dst  any
	}{
		{"groups", groups, &u.Groups},
		{"attributes", attrs, &u.Attributes},
		{"role grants", roles, &u.RoleGrants},
		{"local attributes", local, &u.LocalAttributes},
		{"consents", consents, &u.Consents},
	} {
		if !c.text.Valid || c.text.String == "" {
			continue
		}
		if err := json.Unmarshal([]byte(c.text.String), c.dst); err != nil {
			return nil, fmt.Errorf("decoding %s of user %s: %w", c.what, u.ID, err)
		}
	}
	userrow.ConsentsInUTC(u.Consents)
	return &u, nil
}

func getUser(ctx context.Context, q querier, where string, args ...any) (*provisioner.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users u `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, provisioner.ErrNotFound
	}
	return u, err
}

// UserByIdentity returns the user linked to key, or provisioner.ErrNotFound.
func (s *Store) UserByIdentity(ctx context.Context, key provisioner.IdentityKey) (*provisioner.User, error) {
	u, err := getUser(ctx, s.db, `JOIN identities i ON i.user_id = u.id
		WHERE i.connection = ? AND i.issuer = ? AND i.subject = ?`,
		key.Connection, key.Issuer, key.Subject)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: user by identity: %w", err)
	}
	return u, nil
}

// User returns the user with the given ID, or provisioner.ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (*provisioner.User, error) {
	u, err := getUser(ctx, s.db, `WHERE u.id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: user: %w", err)
	}
	return u, nil
}

// UserByUsername returns the user whose normalised username equals the
// normalised argument, or provisioner.ErrNotFound.
func (s *Store) UserByUsername(ctx context.Context, username string) (*provisioner.User, error) {
	u, err := getUser(ctx, s.db, `WHERE u.username_norm = ?`, provisioner.NormalizeUsername(username))
	if err != nil {
		return nil, fmt.Errorf("sqlite store: user by username: %w", err)
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
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users u
		WHERE u.email_norm = ? ORDER BY u.username_norm, u.id`, norm)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: users by email: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: users by email: %w", err)
		}
		users = append(users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: users by email: %w", err)
	}
	return users, nil
}

// CreateUser inserts u and its first identity in one transaction.
func (s *Store) CreateUser(ctx context.Context, u *provisioner.User, id provisioner.Identity) (*provisioner.User, error) {
	created, err := s.createUser(ctx, u, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: creating user: %w", err)
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
	now := s.now().UTC()
	identCreated := id.CreatedAt
	if identCreated.IsZero() {
		identCreated = now
	}
	times := []time.Time{now, u.LastLoginAt, identCreated, id.LastLoginAt}
	for _, t := range times {
		if err := checkTime(t); err != nil {
			return nil, err
		}
	}
	userID := uuid.NewString()

	var created *provisioner.User
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// The identity is checked first so that a duplicate identity is
		// reported as such even when its username also collides.
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM identities
			WHERE connection = ? AND issuer = ? AND subject = ?`,
			id.Connection, id.Issuer, id.Subject).Scan(&one)
		switch {
		case err == nil:
			return provisioner.ErrIdentityExists
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("checking identity: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, username_norm,
				email, email_norm, email_verified, name, given_name, family_name, picture,
				groups, attributes, role_grants, local_attributes, consents,
				status, created_at, updated_at, last_login_at, name_norm)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			userID, u.Username, norm, cols.Email, cols.EmailNorm, cols.EmailVerified,
			cols.Name, cols.GivenName, cols.FamilyName, cols.Picture,
			cols.Groups, cols.Attributes, cols.RoleGrants, cols.LocalAttributes, cols.Consents,
			string(status), now.UnixNano(), now.UnixNano(), nullTime(u.LastLoginAt), cols.NameNorm); err != nil {
			return mapConstraint(err)
		}
		// A deleted user's name goes to nobody else (S15).
		switch retired, err := usernameRetired(ctx, tx, norm, id.IdentityKey); {
		case err != nil:
			return fmt.Errorf("checking retired usernames: %w", err)
		case retired:
			return fmt.Errorf("%w: a deleted user had it", provisioner.ErrUsernameTaken)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO identities (connection, issuer, subject,
				user_id, raw_claims, created_at, last_login_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id.Connection, id.Issuer, id.Subject, userID, nullBytes(id.RawClaims),
			identCreated.UnixNano(), nullTime(id.LastLoginAt)); err != nil {
			return mapConstraint(err)
		}
		created, err = getUser(ctx, tx, `WHERE u.id = ?`, userID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// RecordLogin records a later login of an existing identity in one
// transaction: update (when non-nil) changes the user, the identity's
// raw claims are replaced when rawClaims is non-nil, and both last-login
// times are set to at (now when zero). The user's updated_at becomes at
// when update changed it. An error from update is returned unchanged.
func (s *Store) RecordLogin(ctx context.Context, key provisioner.IdentityKey, rawClaims []byte, at time.Time, update provisioner.UpdateFunc) (*provisioner.User, error) {
	u, err := s.recordLogin(ctx, key, rawClaims, at, update)
	if err != nil {
		return nil, userrow.CallerError(err, "sqlite store: recording login")
	}
	return u, nil
}

func (s *Store) recordLogin(ctx context.Context, key provisioner.IdentityKey, rawClaims []byte, at time.Time, update provisioner.UpdateFunc) (*provisioner.User, error) {
	if at.IsZero() {
		at = s.now()
	}
	at = at.UTC()
	if err := checkTime(at); err != nil {
		return nil, err
	}
	var u *provisioner.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := getUser(ctx, tx, `JOIN identities i ON i.user_id = u.id
			WHERE i.connection = ? AND i.issuer = ? AND i.subject = ?`,
			key.Connection, key.Issuer, key.Subject)
		if err != nil {
			return fmt.Errorf("looking up identity: %w", err)
		}
		if u, err = updateUser(ctx, tx, cur, update, at, at); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE identities
			SET raw_claims = COALESCE(?, raw_claims), last_login_at = ?
			WHERE connection = ? AND issuer = ? AND subject = ?`,
			nullBytes(rawClaims), at.UnixNano(),
			key.Connection, key.Issuer, key.Subject); err != nil {
			return fmt.Errorf("updating identity: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// UpdateUser applies update to the user with this ID in one transaction;
// updated_at becomes now when update changed the user. An error from
// update is returned unchanged.
func (s *Store) UpdateUser(ctx context.Context, userID string, update provisioner.UpdateFunc) (*provisioner.User, error) {
	var u *provisioner.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := getUser(ctx, tx, `WHERE u.id = ?`, userID)
		if err != nil {
			return err
		}
		u, err = updateUser(ctx, tx, cur, update, s.now().UTC(), time.Time{})
		return err
	})
	if err != nil {
		return nil, userrow.CallerError(err, "sqlite store: updating user")
	}
	return u, nil
}

// RecordUserLogin sets the user's last login to at unless it is later
// already (provisioner.LoginRecorder).
func (s *Store) RecordUserLogin(ctx context.Context, userID string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := getUser(ctx, tx, `WHERE u.id = ?`, userID)
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
		return userrow.CallerError(err, "sqlite store: recording a login")
	}
	return nil
}

// ListUsers returns up to limit users ordered by normalised username,
// after skipping offset. A limit of zero or less returns no users.
func (s *Store) ListUsers(ctx context.Context, offset, limit int) ([]provisioner.User, error) {
	if offset < 0 {
		offset = 0
	}
	if limit <= 0 {
		return []provisioner.User{}, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users u
		ORDER BY u.username_norm, u.id LIMIT ? OFFSET ?`, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: listing users: %w", err)
	}
	defer rows.Close()
	users := []provisioner.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: listing users: %w", err)
		}
		users = append(users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: listing users: %w", err)
	}
	return users, nil
}

// Identities returns the identities linked to a user, oldest first. An
// unknown user has none.
func (s *Store) Identities(ctx context.Context, userID string) ([]provisioner.Identity, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT connection, issuer, subject, user_id,
			raw_claims, created_at, last_login_at
		FROM identities WHERE user_id = ?
		ORDER BY created_at, connection, issuer, subject`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: listing identities: %w", err)
	}
	defer rows.Close()
	ids := []provisioner.Identity{}
	for rows.Next() {
		var (
			id        provisioner.Identity
			created   int64
			lastLogin sql.NullInt64
		)
		if err := rows.Scan(&id.Connection, &id.Issuer, &id.Subject, &id.UserID,
			&id.RawClaims, &created, &lastLogin); err != nil {
			return nil, fmt.Errorf("sqlite store: listing identities: %w", err)
		}
		id.CreatedAt = fromNanos(created)
		if lastLogin.Valid {
			id.LastLoginAt = fromNanos(lastLogin.Int64)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: listing identities: %w", err)
	}
	return ids, nil
}

// LinkIdentity links one more identity to an existing user and, in the
// same transaction, applies update (when non-nil) to the user and sets
// its last-login time to the identity's LastLoginAt (unless zero). An
// error from update is returned unchanged; update is not called when the
// identity is refused.
func (s *Store) LinkIdentity(ctx context.Context, userID string, id provisioner.Identity, update provisioner.UpdateFunc) (*provisioner.User, error) {
	now := s.now().UTC()
	created := id.CreatedAt
	if created.IsZero() {
		created = now
	}
	for _, t := range []time.Time{created, id.LastLoginAt} {
		if err := checkTime(t); err != nil {
			return nil, fmt.Errorf("sqlite store: linking identity: %w", err)
		}
	}
	var u *provisioner.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := getUser(ctx, tx, `WHERE u.id = ?`, userID)
		if err != nil {
			return fmt.Errorf("checking user: %w", err)
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM identities
			WHERE connection = ? AND issuer = ? AND subject = ?`,
			id.Connection, id.Issuer, id.Subject).Scan(&one)
		switch {
		case err == nil:
			return provisioner.ErrIdentityExists
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("checking identity: %w", err)
		}
		if u, err = updateUser(ctx, tx, cur, update, now, id.LastLoginAt); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO identities (connection, issuer, subject,
				user_id, raw_claims, created_at, last_login_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			id.Connection, id.Issuer, id.Subject, userID, nullBytes(id.RawClaims),
			created.UnixNano(), nullTime(id.LastLoginAt)); err != nil {
			return mapConstraint(err)
		}
		return nil
	})
	if err != nil {
		return nil, userrow.CallerError(err, "sqlite store: linking identity")
	}
	return u, nil
}

// SetStatus enables or disables a user; provisioner.ErrNotFound if there
// is no such user.
func (s *Store) SetStatus(ctx context.Context, userID string, st provisioner.Status, reason string) error {
	if err := provisioner.CheckStatusChange(st, reason); err != nil {
		return fmt.Errorf("sqlite store: setting status: %w", err)
	}
	now := s.now().UTC().UnixNano()
	res, err := s.exec(ctx, setStatusSQL, string(st), reason, now, now, userID)
	if err := affectedOne(res, err); err != nil {
		return fmt.Errorf("sqlite store: setting status: %w", err)
	}
	return nil
}

const setStatusSQL = `UPDATE users SET status = ?, status_reason = ?, status_changed_at = ?, updated_at = ? WHERE id = ?`

// SetStatusIf sets the status as SetStatus does, in a write transaction
// that reads the user first and writes only if cond holds for it.
func (s *Store) SetStatusIf(ctx context.Context, userID string, st provisioner.Status, reason string, cond provisioner.UserCondition) error {
	if err := provisioner.CheckStatusChange(st, reason); err != nil {
		return fmt.Errorf("sqlite store: setting status: %w", err)
	}
	err := s.ifUser(ctx, userID, cond, func(tx *sql.Tx) error {
		now := s.now().UTC().UnixNano()
		_, err := tx.ExecContext(ctx, setStatusSQL, string(st), reason, now, now, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: setting status: %w", err)
	}
	return nil
}

// DeleteUser removes a user and (by cascade) its identities and TOTP
// factor, and retires its username (see retireUsername);
// provisioner.ErrNotFound if there is no such user.
func (s *Store) DeleteUser(ctx context.Context, userID string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error { return deleteUser(ctx, tx, userID) })
	if err != nil {
		return fmt.Errorf("sqlite store: deleting user: %w", err)
	}
	return nil
}

// DeleteUserIf deletes the user as DeleteUser does, in a write
// transaction that reads the user first and deletes only if cond holds
// for it.
func (s *Store) DeleteUserIf(ctx context.Context, userID string, cond provisioner.UserCondition) error {
	err := s.ifUser(ctx, userID, cond, func(tx *sql.Tx) error { return deleteUser(ctx, tx, userID) })
	if err != nil {
		return fmt.Errorf("sqlite store: deleting user: %w", err)
	}
	return nil
}

// deleteUser retires the user's username and deletes the user, in tx;
// provisioner.ErrNotFound if there is no such user.
func deleteUser(ctx context.Context, tx *sql.Tx, userID string) error {
	if err := retireUsername(ctx, tx, userID); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, userID)
	return affectedOne(res, err)
}

// retireUsername records the username of the user about to be deleted
// as retired, with each of the user's identities, as hashes
// (provisioner.UsernameRetirer). A name that is already retired keeps
// its records and gains this user's identities.
func retireUsername(ctx context.Context, tx *sql.Tx, userID string) error {
	var norm string
	err := tx.QueryRowContext(ctx, `SELECT username_norm FROM users WHERE id = ?`, userID).Scan(&norm)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return provisioner.ErrNotFound
	case err != nil:
		return fmt.Errorf("reading the username to retire: %w", err)
	}
	name := provisioner.RetiredName(norm)
	if name == "" {
		return nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT connection, issuer, subject FROM identities WHERE user_id = ?`, userID)
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
	for _, h := range holders {
		if _, err := tx.ExecContext(ctx, `INSERT INTO retired_usernames (name_hash, holder_hash)
			VALUES (?, ?) ON CONFLICT DO NOTHING`, name, h); err != nil {
			return fmt.Errorf("retiring the username: %w", err)
		}
	}
	return nil
}

// UsernameRetired reports whether username is retired for key (see
// provisioner.UsernameRetirer).
func (s *Store) UsernameRetired(ctx context.Context, username string, key provisioner.IdentityKey) (bool, error) {
	retired, err := usernameRetired(ctx, s.db, username, key)
	if err != nil {
		return false, fmt.Errorf("sqlite store: looking up retired usernames: %w", err)
	}
	return retired, nil
}

// usernameRetired is UsernameRetired, read through q.
func usernameRetired(ctx context.Context, q querier, username string, key provisioner.IdentityKey) (bool, error) {
	name := provisioner.RetiredName(username)
	if name == "" {
		return false, nil
	}
	var retired bool
	err := q.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM retired_usernames WHERE name_hash = ?)
		AND NOT EXISTS (SELECT 1 FROM retired_usernames WHERE name_hash = ? AND holder_hash = ?)`,
		name, name, provisioner.RetiredHolder(username, key)).Scan(&retired)
	return retired, err
}

// ifUser runs change in a write transaction (which no other writer,
// such as a login, can interleave with) if cond holds for the user as
// read in it; provisioner.ErrConditionFailed if not.
func (s *Store) ifUser(ctx context.Context, userID string, cond provisioner.UserCondition, change func(*sql.Tx) error) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := getUser(ctx, tx, `WHERE u.id = ?`, userID)
		if err != nil {
			return err
		}
		if !cond(userrow.Clone(cur)) {
			return provisioner.ErrConditionFailed
		}
		return change(tx)
	})
}

func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return provisioner.ErrNotFound
	}
	return nil
}

// RevokeSession records a revoked session until expires, and drops
// records whose expiry has passed. Revoking a session again keeps its
// first revocation time and the later of the two expiries. Revocation
// times come from this process's clock: every process that shares the
// file runs on the one host, and so reads the same clock (the
// PostgreSQL store, shared across hosts, stamps them in the database).
func (s *Store) RevokeSession(ctx context.Context, sessionID string, expires time.Time) error {
	_, err := s.recordRevocation(ctx, "revoking session", sessionID, expires,
		`ON CONFLICT (id) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`)
	return err
}

// UseOnce records a single-use ID as RevokeSession does, unless a
// record of it that has not expired is there (see
// provisioner.SingleUseStore). The writer lock and the transaction make
// the check and the insert one step for every process on the file.
func (s *Store) UseOnce(ctx context.Context, id string, expires time.Time) (bool, error) {
	return s.recordRevocation(ctx, "recording a single-use ID", id, expires, `ON CONFLICT (id) DO NOTHING`)
}

// recordRevocation prunes expired records and inserts id's, resolving a
// record already there with onConflict; it reports whether a row was
// written.
func (s *Store) recordRevocation(ctx context.Context, what, id string, expires time.Time, onConflict string) (bool, error) {
	if id == "" {
		return false, fmt.Errorf("sqlite store: %s: empty ID", what)
	}
	if expires.IsZero() {
		return false, fmt.Errorf("sqlite store: %s: zero expiry", what)
	}
	now := s.now().UTC()
	if err := checkTime(expires); err != nil {
		return false, fmt.Errorf("sqlite store: %s: expiry: %w", what, err)
	}
	var written bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM revoked_sessions WHERE expires_at <= ?`,
			now.UnixNano()); err != nil {
			return fmt.Errorf("pruning: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO revoked_sessions (id, revoked_at, expires_at)
			VALUES (?, ?, ?) `+onConflict,
			id, now.UnixNano(), expires.UTC().UnixNano())
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		written = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite store: %s: %w", what, err)
	}
	return written, nil
}

// RevokedSessions returns sessions revoked at or after since that have
// not yet expired, oldest revocation first.
func (s *Store) RevokedSessions(ctx context.Context, since time.Time) ([]provisioner.RevokedSession, error) {
	sinceN := int64(-1 << 63)
	if !since.IsZero() {
		if err := checkTime(since); err != nil {
			return nil, fmt.Errorf("sqlite store: listing revoked sessions: %w", err)
		}
		sinceN = since.UnixNano()
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, revoked_at, expires_at FROM revoked_sessions
		WHERE revoked_at >= ? AND expires_at > ? ORDER BY revoked_at, id`,
		sinceN, s.now().UTC().UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlite store: listing revoked sessions: %w", err)
	}
	defer rows.Close()
	out := []provisioner.RevokedSession{}
	for rows.Next() {
		var (
			rs               provisioner.RevokedSession
			revoked, expires int64
		)
		if err := rows.Scan(&rs.ID, &revoked, &expires); err != nil {
			return nil, fmt.Errorf("sqlite store: listing revoked sessions: %w", err)
		}
		rs.RevokedAt, rs.ExpiresAt = fromNanos(revoked), fromNanos(expires)
		out = append(out, rs)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: listing revoked sessions: %w", err)
	}
	return out, nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE), committing if
// fn succeeds and rolling back otherwise, also when fn (a caller's
// UpdateFunc) panics, so the write lock is never left held.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	release, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer release()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// lockWriter waits for this process's turn to write, or for ctx.
func (s *Store) lockWriter(ctx context.Context) (release func(), err error) {
	select {
	case s.writer <- struct{}{}:
		return func() { <-s.writer }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// exec runs one writing statement in this process's turn.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	release, err := s.lockWriter(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return s.db.ExecContext(ctx, query, args...)
}

// mapConstraint turns SQLite uniqueness violations into the store errors
// callers check for.
func mapConstraint(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
	default:
		return err
	}
	msg := se.Error()
	switch {
	case strings.Contains(msg, "users.username_norm"):
		return fmt.Errorf("%w (%v)", provisioner.ErrUsernameTaken, err)
	case strings.Contains(msg, "identities."):
		return fmt.Errorf("%w (%v)", provisioner.ErrIdentityExists, err)
	}
	return err
}

// Times must fit int64 Unix nanoseconds.
var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

func checkTime(t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return fmt.Errorf("time %s out of range (%d..%d)", t, minTime.Year(), maxTime.Year())
	}
	return nil
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().UnixNano()
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// UsersByID returns the existing users among ids, in one query.
func (s *Store) UsersByID(ctx context.Context, ids []string) ([]provisioner.User, error) {
	users := []provisioner.User{}
	if len(ids) == 0 {
		return users, nil
	}
	if len(ids) > provisioner.MaxUsersByID {
		return nil, fmt.Errorf("sqlite store: users by ID: %d IDs, at most %d per call", len(ids), provisioner.MaxUsersByID)
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id IN (?`+strings.Repeat(",?", len(ids)-1)+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: users by ID: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: users by ID: %w", err)
		}
		users = append(users, *u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: users by ID: %w", err)
	}
	return users, nil
}

var _ provisioner.UserBatchReader = (*Store)(nil)

// AdoptIssuer implements provisioner.IssuerAdopter: the record of the
// connection and the move are one transaction, so of several processes
// starting at once only one moves anything.
func (s *Store) AdoptIssuer(ctx context.Context, connection, from, to string) (int, error) {
	var moved int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO adopted_issuers (connection, issuer, adopted_at) VALUES (?, ?, ?)
			ON CONFLICT (connection) DO NOTHING`, connection, to, time.Now().UTC().UnixNano())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 || from == to {
			return err
		}
		res, err = tx.ExecContext(ctx, `UPDATE identities SET issuer = ?
			WHERE connection = ? AND issuer = ? AND NOT EXISTS (
				SELECT 1 FROM identities AS taken WHERE taken.connection = identities.connection
					AND taken.issuer = ? AND taken.subject = identities.subject)`, to, connection, from, to)
		if err != nil {
			return err
		}
		moved, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite store: adopting the issuer of connection %s's identities: %w", connection, err)
	}
	return int(moved), nil
}

package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// migrations are the schema steps, in order. Step i (0-based) brings the
// database to schema version i+1. Steps are never edited once released;
// later changes are appended as new steps.
var migrations = []string{
	// 1: users, identities, revoked sessions.
	`
CREATE TABLE users (
	id             TEXT PRIMARY KEY NOT NULL,
	username       TEXT NOT NULL,
	username_norm  TEXT NOT NULL UNIQUE,
	email          TEXT NOT NULL DEFAULT '',
	email_verified INTEGER NOT NULL DEFAULT 0,
	name           TEXT NOT NULL DEFAULT '',
	given_name     TEXT NOT NULL DEFAULT '',
	family_name    TEXT NOT NULL DEFAULT '',
	picture        TEXT NOT NULL DEFAULT '',
	groups         TEXT,
	attributes     TEXT,
	status         TEXT NOT NULL DEFAULT 'active',
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL,
	last_login_at  INTEGER
);

CREATE TABLE identities (
	connection    TEXT NOT NULL,
	issuer        TEXT NOT NULL,
	subject       TEXT NOT NULL,
	user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	raw_claims    BLOB,
	created_at    INTEGER NOT NULL,
	last_login_at INTEGER,
	PRIMARY KEY (connection, issuer, subject)
);

CREATE INDEX identities_user_id ON identities(user_id);

CREATE TABLE revoked_sessions (
	id         TEXT PRIMARY KEY NOT NULL,
	revoked_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);

CREATE INDEX revoked_sessions_revoked_at ON revoked_sessions(revoked_at);
CREATE INDEX revoked_sessions_expires_at ON revoked_sessions(expires_at);
`,
	// 2: role grants, local attributes and consents of users (JSON text
	// or NULL) and their normalised email (see backfillEmailNorm); TOTP
	// factors.
	`
ALTER TABLE users ADD COLUMN email_norm TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN role_grants TEXT;
ALTER TABLE users ADD COLUMN local_attributes TEXT;
ALTER TABLE users ADD COLUMN consents TEXT;

UPDATE users SET email_norm = lower(trim(email));
CREATE INDEX users_email_norm ON users(email_norm);

CREATE TABLE totp_factors (
	user_id         TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	sealed_secret   BLOB NOT NULL,
	recovery_hashes TEXT,
	last_step       INTEGER NOT NULL DEFAULT 0,
	failures        INTEGER NOT NULL DEFAULT 0,
	last_failure    INTEGER,
	created_at      INTEGER NOT NULL
);
`,
	// 3: operating the directory: the reason and time of a status change
	// and the keep flag of users; a short login history per user; leases
	// for background jobs that one instance of several runs at a time;
	// indexes for the inactive-user sweep and the connection filter.
	`
ALTER TABLE users ADD COLUMN status_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN status_changed_at INTEGER;
ALTER TABLE users ADD COLUMN keep INTEGER NOT NULL DEFAULT 0;

CREATE INDEX users_last_login_at ON users(last_login_at);
CREATE INDEX identities_connection ON identities(connection, user_id);

CREATE TABLE login_events (
	id         INTEGER PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	at         INTEGER NOT NULL,
	connection TEXT NOT NULL,
	outcome    TEXT NOT NULL
);

CREATE INDEX login_events_user_at ON login_events(user_id, at);

CREATE TABLE leases (
	name       TEXT PRIMARY KEY NOT NULL,
	holder     TEXT NOT NULL,
	expires_at INTEGER NOT NULL
);
`,
	// 4: an index holding the columns a directory search reads, in
	// username order, so that a search for text few users have scans it
	// rather than every row of users (five times faster at a million
	// users; see sqliteSearch).
	`
CREATE INDEX users_search_cols ON users(username_norm, email_norm, name);
`,
	// 5: the refresh tokens of live sessions whose connection refreshes
	// in the background, due first.
	`
CREATE TABLE refresh_tokens (
	session_id TEXT PRIMARY KEY NOT NULL,
	user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	connection TEXT NOT NULL,
	sealed     BLOB NOT NULL,
	refresh_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
);

CREATE INDEX refresh_tokens_due ON refresh_tokens(refresh_at);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);
`,
	// 6: users' names lower-cased as provisioner.NormalizeName does it
	// (see backfillNameNorm), which the directory search matches, in
	// place of the name in the search index.
	`
ALTER TABLE users ADD COLUMN name_norm TEXT NOT NULL DEFAULT '';
UPDATE users SET name_norm = lower(name);
DROP INDEX users_search_cols;
CREATE INDEX users_search_cols ON users(username_norm, email_norm, name_norm);
`,
	// 7: the usernames of deleted users, retired so that no other
	// identity gets one (provisioner.UsernameRetirer): hashes only. A
	// row with an empty holder_hash marks the name retired; each other
	// row names one identity that may have it again.
	`
CREATE TABLE retired_usernames (
	name_hash   TEXT NOT NULL,
	holder_hash TEXT NOT NULL,
	PRIMARY KEY (name_hash, holder_hash)
) WITHOUT ROWID;
`,
	// 8: the connections whose identities' issuer was adopted
	// (provisioner.IssuerAdopter), each once.
	`
CREATE TABLE adopted_issuers (
	connection TEXT PRIMARY KEY NOT NULL,
	issuer     TEXT NOT NULL,
	adopted_at INTEGER NOT NULL
) WITHOUT ROWID;
`,
}

// backfills complete a migration step in Go, in the step's transaction,
// where SQL cannot compute a value exactly as the store does. The key is
// the schema version the step brings the database to.
var backfills = map[int]func(context.Context, *sql.Tx) error{
	2: backfillEmailNorm,
	6: backfillNameNorm,
}

// backfillEmailNorm corrects email_norm of existing users to
// provisioner.NormalizeEmail(email) where the step's SQL, whose lower()
// and trim() know only ASCII, computed it differently.
func backfillEmailNorm(ctx context.Context, tx *sql.Tx) error {
	return backfillNorm(ctx, tx, "email", provisioner.NormalizeEmail)
}

// backfillNameNorm corrects name_norm of existing users to
// provisioner.NormalizeName(name) where the step's lower(), which folds
// only ASCII, computed it differently.
func backfillNameNorm(ctx context.Context, tx *sql.Tx) error {
	return backfillNorm(ctx, tx, "name", provisioner.NormalizeName)
}

// backfillNorm sets column+"_norm" to normalize(column) in every row
// of users where it differs. column is one of the migrations' own
// names, never input.
func backfillNorm(ctx context.Context, tx *sql.Tx, column string, normalize func(string) string) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, `+column+`, `+column+`_norm FROM users`)
	if err != nil {
		return fmt.Errorf("reading %ss: %w", column, err)
	}
	type fix struct{ id, norm string }
	var fixes []fix
	for rows.Next() {
		var id, value, got string
		if err := rows.Scan(&id, &value, &got); err != nil {
			rows.Close()
			return fmt.Errorf("reading %ss: %w", column, err)
		}
		if norm := normalize(value); norm != got {
			fixes = append(fixes, fix{id, norm})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %ss: %w", column, err)
	}
	if len(fixes) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `UPDATE users SET `+column+`_norm = ? WHERE id = ?`)
	if err != nil {
		return fmt.Errorf("normalising %ss: %w", column, err)
	}
	defer stmt.Close()
	for _, f := range fixes {
		if _, err := stmt.ExecContext(ctx, f.norm, f.id); err != nil {
			return fmt.Errorf("normalising %ss: %w", column, err)
		}
	}
	return nil
}

// SchemaVersion is the schema version this build migrates databases to.
var SchemaVersion = len(migrations)

// ErrSchemaTooNew is returned by Open when the database was migrated by a
// newer build than this one.
var ErrSchemaTooNew = errors.New("database schema is newer than this build supports")

// migrate brings the database up to the newest schema. Each step runs in
// its own (immediate, hence exclusive for writers) transaction that first
// re-reads the current version, so several processes opening one database
// at once apply each step exactly once.
func migrate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY NOT NULL,
	applied_at INTEGER NOT NULL
)`); err != nil {
		return fmt.Errorf("creating schema_migrations: %w", err)
	}
	for {
		done, err := migrateStep(ctx, db)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// migrateStep applies the next pending migration, if any. It reports
// done when the database is up to date.
func migrateStep(ctx context.Context, db *sql.DB) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("beginning migration: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return false, err
	}
	switch {
	case current > SchemaVersion:
		return false, fmt.Errorf("%w: database is at schema version %d, this build knows up to %d; upgrade caddy-jitauth or use another database file",
			ErrSchemaTooNew, current, SchemaVersion)
	case current == SchemaVersion:
		return true, tx.Rollback()
	}
	next := current + 1
	if _, err := tx.ExecContext(ctx, migrations[current]); err != nil {
		return false, fmt.Errorf("applying migration %d: %w", next, err)
	}
	if backfill := backfills[next]; backfill != nil {
		if err := backfill(ctx, tx); err != nil {
			return false, fmt.Errorf("applying migration %d: %w", next, err)
		}
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		next, time.Now().UTC().UnixNano()); err != nil {
		return false, fmt.Errorf("recording migration %d: %w", next, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("committing migration %d: %w", next, err)
	}
	return false, nil
}

func schemaVersion(ctx context.Context, q querier) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	return int(v.Int64), nil
}

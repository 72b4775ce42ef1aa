package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// migrations are the schema steps, in order. Step i (0-based) brings the
// schema to version i+1. Steps are never edited once released; later
// changes are appended as new steps. Tables are created unqualified, so
// in the schema the connection's search_path selects (current_schema()).
//
// The semantics follow the SQLite store's schema version 1: constraint
// names are fixed because mapConstraint keys on them.
var migrations = []string{
	// 1: users, identities, revoked sessions.
	`
CREATE TABLE users (
	id             text PRIMARY KEY,
	username       text NOT NULL,
	username_norm  text COLLATE "C" NOT NULL,
	email          text NOT NULL DEFAULT '',
	email_verified boolean NOT NULL DEFAULT false,
	name           text NOT NULL DEFAULT '',
	given_name     text NOT NULL DEFAULT '',
	family_name    text NOT NULL DEFAULT '',
	picture        text NOT NULL DEFAULT '',
	groups         jsonb,
	attributes     jsonb,
	status         text NOT NULL DEFAULT 'active'
	               CONSTRAINT users_status_check CHECK (status IN ('active', 'disabled')),
	created_at     timestamptz NOT NULL,
	updated_at     timestamptz NOT NULL,
	last_login_at  timestamptz,
	CONSTRAINT users_username_norm_key UNIQUE (username_norm)
);

CREATE TABLE identities (
	connection    text NOT NULL,
	issuer        text NOT NULL,
	subject       text NOT NULL,
	user_id       text NOT NULL
	              CONSTRAINT identities_user_id_fkey REFERENCES users(id) ON DELETE CASCADE,
	raw_claims    jsonb,
	created_at    timestamptz NOT NULL,
	last_login_at timestamptz,
	CONSTRAINT identities_pkey PRIMARY KEY (connection, issuer, subject)
);

CREATE INDEX identities_user_id ON identities (user_id);

CREATE TABLE revoked_sessions (
	id         text PRIMARY KEY,
	revoked_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);

CREATE INDEX revoked_sessions_revoked_at ON revoked_sessions (revoked_at);
CREATE INDEX revoked_sessions_expires_at ON revoked_sessions (expires_at);
`,
	// 2: role grants, local attributes and consents of users (jsonb or
	// NULL) and their normalised email (see backfillEmailNorm); TOTP
	// factors, whose foreign key name setTOTP keys on.
	`
ALTER TABLE users
	ADD COLUMN email_norm       text COLLATE "C" NOT NULL DEFAULT '',
	ADD COLUMN role_grants      jsonb,
	ADD COLUMN local_attributes jsonb,
	ADD COLUMN consents         jsonb;

UPDATE users SET email_norm = lower(btrim(email)) WHERE email <> '';
CREATE INDEX users_email_norm ON users (email_norm);

CREATE TABLE totp_factors (
	user_id         text PRIMARY KEY
	                CONSTRAINT totp_factors_user_id_fkey REFERENCES users(id) ON DELETE CASCADE,
	sealed_secret   bytea NOT NULL,
	recovery_hashes jsonb,
	last_step       bigint NOT NULL DEFAULT 0,
	failures        integer NOT NULL DEFAULT 0,
	last_failure    timestamptz,
	created_at      timestamptz NOT NULL
);
`,
	// 3: operating the directory: the reason and time of a status change
	// and the keep flag of users; a short login history per user; leases
	// for background jobs that one instance of several runs at a time;
	// indexes for the inactive-user sweep and the connection filter.
	`
ALTER TABLE users
	ADD COLUMN status_reason     text NOT NULL DEFAULT '',
	ADD COLUMN status_changed_at timestamptz,
	ADD COLUMN keep              boolean NOT NULL DEFAULT false;

CREATE INDEX users_last_login_at ON users (last_login_at);
CREATE INDEX identities_connection ON identities (connection, user_id);

CREATE TABLE login_events (
	id         bigserial PRIMARY KEY,
	user_id    text NOT NULL
	           CONSTRAINT login_events_user_id_fkey REFERENCES users(id) ON DELETE CASCADE,
	at         timestamptz NOT NULL,
	connection text NOT NULL,
	outcome    text NOT NULL
);

CREATE INDEX login_events_user_at ON login_events (user_id, at);

CREATE TABLE leases (
	name       text PRIMARY KEY,
	holder     text NOT NULL,
	expires_at timestamptz NOT NULL
);
`,
	// 4: the refresh tokens of live sessions whose connection refreshes
	// in the background, due first.
	`
CREATE TABLE refresh_tokens (
	session_id text PRIMARY KEY,
	user_id    text NOT NULL
	           CONSTRAINT refresh_tokens_user_id_fkey REFERENCES users(id) ON DELETE CASCADE,
	connection text NOT NULL,
	sealed     bytea NOT NULL,
	refresh_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL
);

CREATE INDEX refresh_tokens_due ON refresh_tokens (refresh_at);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
`,
	// 5: when the database recorded each revocation, by its own clock:
	// instances read the revocations recorded since their last read by
	// this column, so an instance whose clock is off neither hides its
	// logouts from the others nor misses theirs. Rows written by older
	// builds (which do not name the column) get it from the default.
	`
ALTER TABLE revoked_sessions ADD COLUMN recorded_at timestamptz NOT NULL DEFAULT clock_timestamp();

CREATE INDEX revoked_sessions_recorded_at ON revoked_sessions (recorded_at);
`,
	// 6: users' names lower-cased as provisioner.NormalizeName does it
	// (see backfillNameNorm), which the directory search matches:
	// lower() follows the database's locale, which may fold only ASCII.
	`
ALTER TABLE users ADD COLUMN name_norm text NOT NULL DEFAULT '';
UPDATE users SET name_norm = lower(name) WHERE name <> '';
`,
	// 7: the usernames of deleted users, retired so that no other
	// identity gets one (provisioner.UsernameRetirer): hashes only. A
	// row with an empty holder_hash marks the name retired; each other
	// row names one identity that may have it again. Instances of an
	// older build sharing the schema during a rolling upgrade neither
	// record nor read it.
	`
CREATE TABLE retired_usernames (
	name_hash   text COLLATE "C" NOT NULL,
	holder_hash text COLLATE "C" NOT NULL,
	PRIMARY KEY (name_hash, holder_hash)
);
`,
	// 8: the connections whose identities' issuer was adopted
	// (provisioner.IssuerAdopter), each once.
	`
CREATE TABLE adopted_issuers (
	connection text COLLATE "C" PRIMARY KEY,
	issuer     text COLLATE "C" NOT NULL,
	adopted_at timestamptz NOT NULL
);
`,
}

// backfills complete a migration step in Go, in the step's transaction,
// where SQL cannot compute a value exactly as the store does. The key is
// the schema version the step brings the schema to.
var backfills = map[int]func(context.Context, pgx.Tx) error{
	2: backfillEmailNorm,
	6: backfillNameNorm,
}

// backfillEmailNorm corrects email_norm of existing users to
// provisioner.NormalizeEmail(email) where the step's SQL computed it
// differently (lower() follows the database's locale, btrim() trims
// only spaces).
func backfillEmailNorm(ctx context.Context, tx pgx.Tx) error {
	return backfillNorm(ctx, tx, "email", provisioner.NormalizeEmail)
}

// backfillNameNorm corrects name_norm of existing users to
// provisioner.NormalizeName(name) where the step's lower() computed it
// differently (it follows the database's locale).
func backfillNameNorm(ctx context.Context, tx pgx.Tx) error {
	return backfillNorm(ctx, tx, "name", provisioner.NormalizeName)
}

// backfillNorm sets column+"_norm" to normalize(column) in every row
// of users where it differs. column is one of the migrations' own
// names, never input.
func backfillNorm(ctx context.Context, tx pgx.Tx, column string, normalize func(string) string) error {
	rows, err := tx.Query(ctx, `SELECT id, `+column+`, `+column+`_norm FROM users`)
	if err != nil {
		return fmt.Errorf("reading %ss: %w", column, err)
	}
	var ids, norms []string
	for rows.Next() {
		var id, value, got string
		if err := rows.Scan(&id, &value, &got); err != nil {
			rows.Close()
			return fmt.Errorf("reading %ss: %w", column, err)
		}
		if norm := normalize(value); norm != got {
			ids, norms = append(ids, id), append(norms, norm)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading %ss: %w", column, err)
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE users u SET `+column+`_norm = f.norm
		FROM unnest($1::text[], $2::text[]) AS f(id, norm) WHERE u.id = f.id`, ids, norms); err != nil {
		return fmt.Errorf("normalising %ss: %w", column, err)
	}
	return nil
}

// SchemaVersion is the schema version this build migrates databases to.
var SchemaVersion = len(migrations)

// ErrSchemaTooNew is returned by Open when the schema was migrated by a
// newer build than this one.
var ErrSchemaTooNew = errors.New("database schema is newer than this build supports")

// migrationLockClass is the first key of the transaction-level advisory
// lock that serialises migrations ("jita"); the second is a hash of the
// schema, so stores in different schemas of one database do not wait on
// each other.
const migrationLockClass int32 = 0x6a697461

// migrate brings the schema up to date. Each step runs in its own
// transaction that first takes the advisory lock and then re-reads the
// current version, so several processes starting at once against one
// schema apply each step exactly once and all come up. DDL is
// transactional in PostgreSQL: a failed step leaves nothing behind.
func migrate(ctx context.Context, db *pgxpool.Pool) error {
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
// done when the schema is up to date.
func migrateStep(ctx context.Context, db *pgxpool.Pool) (done bool, err error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("beginning migration: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()

	var schema *string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return false, fmt.Errorf("reading current schema: %w", err)
	}
	if schema == nil {
		var path string
		if err := tx.QueryRow(ctx, `SELECT current_setting('search_path')`).Scan(&path); err != nil {
			return false, fmt.Errorf("reading search_path: %w", err)
		}
		return false, fmt.Errorf("no schema named in search_path (%s) exists; create it first (CREATE SCHEMA …) or fix search_path in the URL", path)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`,
		migrationLockClass, *schema); err != nil {
		return false, fmt.Errorf("taking the migration lock: %w", err)
	}
	// Only create schema_migrations when it is missing from this very
	// schema: CREATE TABLE IF NOT EXISTS would need the CREATE privilege
	// even when the table exists, and a table of that name elsewhere on
	// the search_path must not count.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables
		WHERE schemaname = $1 AND tablename = 'schema_migrations')`, *schema).Scan(&exists); err != nil {
		return false, fmt.Errorf("looking for schema_migrations: %w", err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE TABLE schema_migrations (
	version    integer PRIMARY KEY,
	applied_at timestamptz NOT NULL
)`); err != nil {
			return false, fmt.Errorf("creating schema_migrations in schema %q: %w", *schema, err)
		}
	}
	current, err := schemaVersion(ctx, tx)
	if err != nil {
		return false, err
	}
	switch {
	case current > SchemaVersion:
		return false, fmt.Errorf("%w: schema %q is at version %d, this build knows up to %d; upgrade caddy-jitauth or use another schema or database",
			ErrSchemaTooNew, *schema, current, SchemaVersion)
	case current == SchemaVersion:
		return true, tx.Rollback(ctx)
	}
	next := current + 1
	if _, err := tx.Exec(ctx, migrations[current]); err != nil {
		return false, fmt.Errorf("applying migration %d: %w", next, err)
	}
	if backfill := backfills[next]; backfill != nil {
		if err := backfill(ctx, tx); err != nil {
			return false, fmt.Errorf("applying migration %d: %w", next, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
		next, time.Now().UTC()); err != nil {
		return false, fmt.Errorf("recording migration %d: %w", next, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("committing migration %d: %w", next, err)
	}
	return false, nil
}

// queryRower is what pools, connections and transactions have in common
// for single-row reads.
type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func schemaVersion(ctx context.Context, q queryRower) (int, error) {
	var v *int32
	if err := q.QueryRow(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("reading schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return int(*v), nil
}

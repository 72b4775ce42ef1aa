package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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

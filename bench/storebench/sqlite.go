package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the driver sqlitestore uses, for the bulk path

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// sqliteBackend keeps each run's store in its own file under dir.
type sqliteBackend struct {
	dir  string
	keep bool

	path string
	bulk *sql.DB
}

func (b *sqliteBackend) name() string { return "sqlite" }

func (b *sqliteBackend) open(ctx context.Context, n int) (provisioner.Store, error) {
	b.path = filepath.Join(b.dir, fmt.Sprintf("users-%d.db", n))
	b.removeFiles()
	return sqlitestore.Open(b.path)
}

func (b *sqliteBackend) describe() string { return b.path }

func (b *sqliteBackend) removeFiles() {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(b.path + suffix)
	}
}

// bulkDB is a second handle on the store's file, with the store's own
// connection settings (WAL, synchronous=NORMAL, foreign keys on, write
// transactions BEGIN IMMEDIATE) plus a 1 GiB page cache so that large
// transactions do not spill to the WAL before they commit.
func (b *sqliteBackend) bulkDB() (*sql.DB, error) {
	if b.bulk != nil {
		return b.bulk, nil
	}
	abs, err := filepath.Abs(b.path)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "cache_size(-1048576)")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	b.bulk = db
	return db, nil
}

// writeBatch inserts rows in one transaction with the store's own INSERT
// statements (sqlitestore.createUser) and the same argument encodings:
// bool for email_verified, JSON text or NULL for groups and attributes,
// BLOB or NULL for raw claims, Unix nanoseconds or NULL for times.
func (b *sqliteBackend) writeBatch(ctx context.Context, rows []row) error {
	db, err := b.bulkDB()
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	users, err := tx.PrepareContext(ctx, `INSERT INTO users (id, username, username_norm,
				email, email_verified, name, given_name, family_name, picture,
				groups, attributes, status, created_at, updated_at, last_login_at, email_norm, name_norm)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	idents, err := tx.PrepareContext(ctx, `INSERT INTO identities (connection, issuer, subject,
				user_id, raw_claims, created_at, last_login_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	for _, r := range rows {
		u, id := &r.user, &r.ident
		if _, err := users.ExecContext(ctx, u.ID, u.Username, r.norm, u.Email, u.EmailVerified,
			u.Name, u.GivenName, u.FamilyName, u.Picture,
			encodeJSONList(u.Groups), encodeJSONMap(u.Attributes), string(u.Status),
			u.CreatedAt.UnixNano(), u.UpdatedAt.UnixNano(), sqliteTime(u.LastLoginAt), provisioner.NormalizeEmail(u.Email), provisioner.NormalizeName(u.Name)); err != nil {
			return fmt.Errorf("inserting user %s: %w", u.Username, err)
		}
		if _, err := idents.ExecContext(ctx, id.Connection, id.Issuer, id.Subject, id.UserID,
			sqliteBytes(id.RawClaims), id.CreatedAt.UnixNano(), sqliteTime(id.LastLoginAt)); err != nil {
			return fmt.Errorf("inserting identity of %s: %w", u.Username, err)
		}
	}
	return tx.Commit()
}

func sqliteTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func sqliteBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// finishBulk checkpoints the WAL into the database file, as SQLite's
// automatic checkpoints would have done had the users arrived one by
// one, so lookups do not search a WAL of hundreds of megabytes.
func (b *sqliteBackend) finishBulk(ctx context.Context) (string, error) {
	db, err := b.bulkDB()
	if err != nil {
		return "", err
	}
	var busy, logPages, done int // the page counts read 0 after TRUNCATE
	if err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &done); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return "", errors.New("checkpoint: database busy")
	}
	return "PRAGMA wal_checkpoint(TRUNCATE)", nil
}

// signature describes how a user's row is stored, without its values:
// SQLite is dynamically typed, so a bulk row that differed in a column's
// storage class (INTEGER vs TEXT time, TEXT vs BLOB claims) from what
// CreateUser writes would show here.
func (b *sqliteBackend) signature(ctx context.Context, key provisioner.IdentityKey) (string, error) {
	db, err := b.bulkDB()
	if err != nil {
		return "", err
	}
	var sig string
	err = db.QueryRowContext(ctx, `SELECT
		'id:' || typeof(u.id) || length(u.id) ||
		' username:' || typeof(u.username) || (u.username = u.username_norm) ||
		' norm:' || typeof(u.username_norm) ||
		' email:' || typeof(u.email) ||
		' email_verified:' || typeof(u.email_verified) || u.email_verified ||
		' names:' || typeof(u.name) || typeof(u.given_name) || typeof(u.family_name) ||
		' picture:' || typeof(u.picture) ||
		' groups:' || typeof(u.groups) || json_valid(u.groups) || json_type(u.groups) ||
		' attributes:' || typeof(u.attributes) ||
		' status:' || typeof(u.status) || u.status ||
		' created:' || typeof(u.created_at) || (u.created_at = u.updated_at) ||
		' updated:' || typeof(u.updated_at) ||
		' last_login:' || typeof(u.last_login_at) || (u.last_login_at <= u.created_at) ||
		' | identity:' || typeof(i.connection) || typeof(i.issuer) || typeof(i.subject) || typeof(i.user_id) ||
		' raw_claims:' || typeof(i.raw_claims) || json_valid(i.raw_claims) ||
		' created:' || typeof(i.created_at) ||
		' last_login:' || typeof(i.last_login_at) || (i.last_login_at = i.created_at) || (i.last_login_at = u.last_login_at)
		FROM users u JOIN identities i ON i.user_id = u.id
		WHERE i.connection = ? AND i.issuer = ? AND i.subject = ?`,
		key.Connection, key.Issuer, key.Subject).Scan(&sig)
	return sig, err
}

// size is the database's own size (page_count × page_size), without
// the WAL file, which SQLite truncates on close.
func (b *sqliteBackend) size(ctx context.Context) (int64, error) {
	db, err := b.bulkDB()
	if err != nil {
		return 0, err
	}
	var pages, pageSize int64
	if err := db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		return 0, err
	}
	if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
		return 0, err
	}
	return pages * pageSize, nil
}

func (b *sqliteBackend) cleanup(ctx context.Context) error {
	if b.bulk != nil {
		b.bulk.Close()
		b.bulk = nil
	}
	if !b.keep && b.path != "" {
		b.removeFiles()
	}
	return nil
}

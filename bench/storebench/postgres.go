package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/pgstore"
)

// pgBackend keeps each run's store in a schema of its own
// (storebench_<pid>_<users>), created before and dropped after the run.
type pgBackend struct {
	base string // connection URL without search_path
	keep bool

	schema string
	url    string
	admin  *pgx.Conn // on base, for CREATE/DROP SCHEMA
	bulk   *pgx.Conn // on url, for COPY and the checks
}

func (b *pgBackend) name() string { return "postgres" }

func (b *pgBackend) open(ctx context.Context, n int) (provisioner.Store, error) {
	if b.admin == nil {
		c, err := pgx.Connect(ctx, b.base)
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", pgstore.RedactURL(b.base), err)
		}
		b.admin = c
	}
	b.schema = fmt.Sprintf("storebench_%d_%d", os.Getpid(), n)
	if _, err := b.admin.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{b.schema}.Sanitize()); err != nil {
		b.schema = ""
		return nil, fmt.Errorf("creating schema: %w", err)
	}
	u, err := url.Parse(b.base)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", b.schema)
	u.RawQuery = q.Encode()
	b.url = u.String()
	return pgstore.Open(ctx, b.url)
}

func (b *pgBackend) describe() string { return pgstore.RedactURL(b.url) }

func (b *pgBackend) bulkConn(ctx context.Context) (*pgx.Conn, error) {
	if b.bulk != nil {
		return b.bulk, nil
	}
	c, err := pgx.Connect(ctx, b.url)
	if err != nil {
		return nil, err
	}
	b.bulk = c
	return c, nil
}

// writeBatch copies rows into the store's tables with COPY (binary) in
// one transaction, with the values and Go types pgstore.createUser
// passes: text, bool, JSON text or NULL for the jsonb columns, UTC
// time.Time (pgx keeps microseconds, as in the store) or NULL.
func (b *pgBackend) writeBatch(ctx context.Context, rows []row) error {
	c, err := b.bulkConn(ctx)
	if err != nil {
		return err
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"users"},
		[]string{"id", "username", "username_norm", "email", "email_verified", "name", "given_name",
			"family_name", "picture", "groups", "attributes", "status", "created_at", "updated_at", "last_login_at", "email_norm", "name_norm"},
		pgx.CopyFromSlice(len(rows), func(k int) ([]any, error) {
			u := &rows[k].user
			return []any{u.ID, u.Username, rows[k].norm, u.Email, u.EmailVerified, u.Name, u.GivenName,
				u.FamilyName, u.Picture, encodeJSONList(u.Groups), encodeJSONMap(u.Attributes), string(u.Status),
				u.CreatedAt.UTC(), u.UpdatedAt.UTC(), pgTime(u.LastLoginAt), provisioner.NormalizeEmail(u.Email), provisioner.NormalizeName(u.Name)}, nil
		}))
	if err != nil {
		return fmt.Errorf("COPY users: %w", err)
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"identities"},
		[]string{"connection", "issuer", "subject", "user_id", "raw_claims", "created_at", "last_login_at"},
		pgx.CopyFromSlice(len(rows), func(k int) ([]any, error) {
			id := &rows[k].ident
			raw, err := pgRawClaims(id.RawClaims)
			if err != nil {
				return nil, err
			}
			return []any{id.Connection, id.Issuer, id.Subject, id.UserID, raw,
				id.CreatedAt.UTC(), pgTime(id.LastLoginAt)}, nil
		}))
	if err != nil {
		return fmt.Errorf("COPY identities: %w", err)
	}
	return tx.Commit(ctx)
}

func pgTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// pgRawClaims mirrors pgstore's rawClaims: NULL for nil, else the JSON
// text.
func pgRawClaims(b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, errors.New("raw claims are not valid JSON")
	}
	return string(b), nil
}

// finishBulk runs VACUUM (ANALYZE) on the two tables: a table that grew
// to this size row by row would have been vacuumed and analysed by
// autovacuum long ago, and a fresh COPY leaves hint bits unset (the
// first reads would write) and no statistics.
func (b *pgBackend) finishBulk(ctx context.Context) (string, error) {
	c, err := b.bulkConn(ctx)
	if err != nil {
		return "", err
	}
	if _, err := c.Exec(ctx, `VACUUM (ANALYZE) users, identities`); err != nil {
		return "", fmt.Errorf("vacuum: %w", err)
	}
	return "VACUUM (ANALYZE) users, identities", nil
}

// signature describes how a user's row is stored, without its values.
// The column types are fixed by the schema; what could still differ is
// NULL versus a value, the JSON types in the jsonb columns and how the
// timestamps relate.
func (b *pgBackend) signature(ctx context.Context, key provisioner.IdentityKey) (string, error) {
	c, err := b.bulkConn(ctx)
	if err != nil {
		return "", err
	}
	var sig string
	err = c.QueryRow(ctx, `SELECT concat_ws(' ',
		'id:' || length(u.id),
		'username:' || (u.username = u.username_norm),
		'email:' || (u.email <> ''),
		'email_verified:' || u.email_verified,
		'names:' || (u.name <> '') || (u.given_name <> '') || (u.family_name <> ''),
		'picture:' || (u.picture <> ''),
		'groups:' || coalesce(jsonb_typeof(u.groups), 'NULL'),
		'attributes:' || coalesce(jsonb_typeof(u.attributes), 'NULL'),
		'status:' || u.status,
		'created:' || (u.created_at = u.updated_at),
		'last_login:' || coalesce((u.last_login_at <= u.created_at)::text, 'NULL'),
		'| raw_claims:' || coalesce(jsonb_typeof(i.raw_claims), 'NULL'),
		'last_login:' || coalesce((i.last_login_at = i.created_at)::text, 'NULL')
			|| coalesce((i.last_login_at = u.last_login_at)::text, 'NULL'))
		FROM users u JOIN identities i ON i.user_id = u.id
		WHERE i.connection = $1 AND i.issuer = $2 AND i.subject = $3`,
		key.Connection, key.Issuer, key.Subject).Scan(&sig)
	return sig, err
}

func (b *pgBackend) size(ctx context.Context) (int64, error) {
	c, err := b.bulkConn(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	err = c.QueryRow(ctx, `SELECT pg_total_relation_size('users') + pg_total_relation_size('identities')`).Scan(&n)
	return n, err
}

// cleanup drops the run's schema (unless -keep) and closes the
// benchmark's own connections.
func (b *pgBackend) cleanup(ctx context.Context) error {
	if b.bulk != nil {
		b.bulk.Close(ctx)
		b.bulk = nil
	}
	var err error
	if b.schema != "" && !b.keep && b.admin != nil {
		_, err = b.admin.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{b.schema}.Sanitize()+` CASCADE`)
		if err != nil {
			err = fmt.Errorf("dropping schema %s: %w", b.schema, err)
		}
	}
	b.schema = ""
	return err
}

func (b *pgBackend) close(ctx context.Context) {
	if b.admin != nil {
		b.admin.Close(ctx)
		b.admin = nil
	}
}

package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// PutRefreshToken inserts or replaces a session's refresh token.
func (s *Store) PutRefreshToken(ctx context.Context, t provisioner.RefreshToken) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO refresh_tokens (session_id, user_id, connection, sealed, refresh_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (session_id) DO UPDATE SET user_id = excluded.user_id, connection = excluded.connection,
			sealed = excluded.sealed, refresh_at = excluded.refresh_at, expires_at = excluded.expires_at`,
		t.SessionID, t.UserID, t.Connection, t.Sealed, t.RefreshAt.UTC(), t.ExpiresAt.UTC())
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.ConstraintName == "refresh_tokens_user_id_fkey" {
		return fmt.Errorf("postgres store: keeping a refresh token: user %s: %w", t.UserID, provisioner.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres store: keeping a refresh token: %w", err)
	}
	return nil
}

// DueRefreshTokens returns up to limit tokens due by before, earliest
// first.
func (s *Store) DueRefreshTokens(ctx context.Context, before time.Time, limit int) ([]provisioner.RefreshToken, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT session_id, user_id, connection, sealed, refresh_at, expires_at
		FROM refresh_tokens WHERE refresh_at <= $1 ORDER BY refresh_at, session_id LIMIT $2`, before.UTC(), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres store: reading due refresh tokens: %w", err)
	}
	defer rows.Close()
	var out []provisioner.RefreshToken
	for rows.Next() {
		var t provisioner.RefreshToken
		if err := rows.Scan(&t.SessionID, &t.UserID, &t.Connection, &t.Sealed, &t.RefreshAt, &t.ExpiresAt); err != nil {
			return nil, fmt.Errorf("postgres store: reading due refresh tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: reading due refresh tokens: %w", err)
	}
	return out, nil
}

// DeleteRefreshToken removes a session's refresh token.
func (s *Store) DeleteRefreshToken(ctx context.Context, sessionID string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM refresh_tokens WHERE session_id = $1`, sessionID); err != nil {
		return fmt.Errorf("postgres store: deleting a refresh token: %w", err)
	}
	return nil
}

var _ provisioner.RefreshTokenStore = (*Store)(nil)

package sqlitestore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// PutRefreshToken inserts or replaces a session's refresh token.
func (s *Store) PutRefreshToken(ctx context.Context, t provisioner.RefreshToken) error {
	_, err := s.exec(ctx, `INSERT INTO refresh_tokens (session_id, user_id, connection, sealed, refresh_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (session_id) DO UPDATE SET user_id = excluded.user_id, connection = excluded.connection,
			sealed = excluded.sealed, refresh_at = excluded.refresh_at, expires_at = excluded.expires_at`,
		t.SessionID, t.UserID, t.Connection, t.Sealed, t.RefreshAt.UnixNano(), t.ExpiresAt.UnixNano())
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
		return fmt.Errorf("sqlite store: keeping a refresh token: user %s: %w", t.UserID, provisioner.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("sqlite store: keeping a refresh token: %w", err)
	}
	return nil
}

// DueRefreshTokens returns up to limit tokens due by before, earliest
// first.
func (s *Store) DueRefreshTokens(ctx context.Context, before time.Time, limit int) ([]provisioner.RefreshToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT session_id, user_id, connection, sealed, refresh_at, expires_at
		FROM refresh_tokens WHERE refresh_at <= ? ORDER BY refresh_at, session_id LIMIT ?`, before.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: reading due refresh tokens: %w", err)
	}
	defer rows.Close()
	var out []provisioner.RefreshToken
	for rows.Next() {
		var t provisioner.RefreshToken
		var at, exp int64
		if err := rows.Scan(&t.SessionID, &t.UserID, &t.Connection, &t.Sealed, &at, &exp); err != nil {
			return nil, fmt.Errorf("sqlite store: reading due refresh tokens: %w", err)
		}
		t.RefreshAt, t.ExpiresAt = fromNanos(at), fromNanos(exp)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: reading due refresh tokens: %w", err)
	}
	return out, nil
}

// DeleteRefreshToken removes a session's refresh token.
func (s *Store) DeleteRefreshToken(ctx context.Context, sessionID string) error {
	if _, err := s.exec(ctx, `DELETE FROM refresh_tokens WHERE session_id = ?`, sessionID); err != nil {
		return fmt.Errorf("sqlite store: deleting a refresh token: %w", err)
	}
	return nil
}

var _ provisioner.RefreshTokenStore = (*Store)(nil)

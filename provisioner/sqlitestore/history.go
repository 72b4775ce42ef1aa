package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// AddLoginEvent records a login attempt of the user and drops the
// user's oldest beyond provisioner.LoginHistoryLength, in one
// transaction.
func (s *Store) AddLoginEvent(ctx context.Context, userID string, e provisioner.LoginEvent) error {
	if err := checkTime(e.At); err != nil {
		return fmt.Errorf("sqlite store: recording a login: %w", err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		switch err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, userID).Scan(&one); {
		case errors.Is(err, sql.ErrNoRows):
			return provisioner.ErrNotFound
		case err != nil:
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO login_events (user_id, at, connection, outcome) VALUES (?, ?, ?, ?)`,
			userID, e.At.UTC().UnixNano(), e.Connection, e.Outcome); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM login_events WHERE user_id = ? AND id NOT IN
			(SELECT id FROM login_events WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT ?)`,
			userID, userID, provisioner.LoginHistoryLength)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: recording a login: %w", err)
	}
	return nil
}

// LoginHistory returns the user's recorded logins, newest first.
func (s *Store) LoginHistory(ctx context.Context, userID string) ([]provisioner.LoginEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, connection, outcome FROM login_events
		WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT ?`, userID, provisioner.LoginHistoryLength)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: reading login history: %w", err)
	}
	defer rows.Close()
	events := []provisioner.LoginEvent{}
	for rows.Next() {
		var e provisioner.LoginEvent
		var at int64
		if err := rows.Scan(&at, &e.Connection, &e.Outcome); err != nil {
			return nil, fmt.Errorf("sqlite store: reading login history: %w", err)
		}
		e.At = fromNanos(at)
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: reading login history: %w", err)
	}
	return events, nil
}

// AcquireLease takes the lease when it is free or expired, or renews it
// for the holder that has it, in one statement: of several processes
// on one database file, one gets it.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return false, fmt.Errorf("sqlite store: acquiring a lease: a name, a holder and a positive duration are needed")
	}
	now := s.now().UTC()
	res, err := s.exec(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
		name, holder, now.Add(ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("sqlite store: acquiring a lease: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite store: acquiring a lease: %w", err)
	}
	return n == 1, nil
}

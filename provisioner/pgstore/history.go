package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// AddLoginEvent records a login attempt of the user and drops the
// user's oldest beyond provisioner.LoginHistoryLength, in one
// transaction.
func (s *Store) AddLoginEvent(ctx context.Context, userID string, e provisioner.LoginEvent) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// The row lock on the user orders two logins of one user, so
		// the trim below keeps exactly the newest.
		var one int
		switch err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&one); {
		case errors.Is(err, pgx.ErrNoRows):
			return provisioner.ErrNotFound
		case err != nil:
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO login_events (user_id, at, connection, outcome) VALUES ($1, $2, $3, $4)`,
			userID, e.At.UTC(), e.Connection, e.Outcome); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM login_events WHERE user_id = $1 AND id NOT IN
			(SELECT id FROM login_events WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2)`,
			userID, provisioner.LoginHistoryLength)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres store: recording a login: %w", err)
	}
	return nil
}

// LoginHistory returns the user's recorded logins, newest first.
func (s *Store) LoginHistory(ctx context.Context, userID string) ([]provisioner.LoginEvent, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT at, connection, outcome FROM login_events
		WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2`, userID, provisioner.LoginHistoryLength)
	if err != nil {
		return nil, fmt.Errorf("postgres store: reading login history: %w", err)
	}
	defer rows.Close()
	events := []provisioner.LoginEvent{}
	for rows.Next() {
		var e provisioner.LoginEvent
		if err := rows.Scan(&e.At, &e.Connection, &e.Outcome); err != nil {
			return nil, fmt.Errorf("postgres store: reading login history: %w", err)
		}
		e.At = e.At.UTC()
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres store: reading login history: %w", err)
	}
	return events, nil
}

// AcquireLease takes the lease when it is free or expired, or renews it
// for the holder that has it, in one statement: of several instances
// on one database, one gets it. Its expiry is set and compared by the
// database's clock (clock_timestamp()), as revocations are recorded:
// by the instances' own, one whose clock is ahead of the holder's by
// more than ttl took a lease that was held.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return false, fmt.Errorf("postgres store: acquiring a lease: a name, a holder and a positive duration are needed")
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO leases (name, holder, expires_at)
		VALUES ($1, $2, clock_timestamp() + $3::bigint * interval '1 microsecond')
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= clock_timestamp()`,
		name, holder, ttl.Microseconds())
	if err != nil {
		return false, fmt.Errorf("postgres store: acquiring a lease: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

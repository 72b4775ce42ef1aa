package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/internal/userrow"
)

// totpUserConstraint is the foreign key of totp_factors to users, from
// migration 2.
const totpUserConstraint = "totp_factors_user_id_fkey"

// TOTP returns the user's TOTP factor, or provisioner.ErrNotFound.
func (s *Store) TOTP(ctx context.Context, userID string) (*provisioner.TOTP, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		t           provisioner.TOTP
		hashes      []byte
		lastFailure *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT sealed_secret, recovery_hashes, last_step,
			failures, last_failure, created_at
		FROM totp_factors WHERE user_id = $1`, userID).Scan(
		&t.SealedSecret, &hashes, &t.LastStep, &t.Failures, &lastFailure, &t.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		err = provisioner.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("postgres store: reading TOTP factor: %w", err)
	}
	if len(hashes) > 0 {
		if err := json.Unmarshal(hashes, &t.RecoveryHashes); err != nil {
			return nil, fmt.Errorf("postgres store: reading TOTP factor: decoding recovery hashes: %w", err)
		}
	}
	if len(t.RecoveryHashes) == 0 {
		t.RecoveryHashes = nil
	}
	if lastFailure != nil {
		t.LastFailure = lastFailure.UTC()
	}
	t.CreatedAt = t.CreatedAt.UTC()
	return &t, nil
}

// SetTOTP enrols or replaces the user's TOTP factor. A zero CreatedAt
// means now. provisioner.ErrNotFound if there is no such user.
func (s *Store) SetTOTP(ctx context.Context, userID string, t provisioner.TOTP) error {
	if err := s.setTOTP(ctx, userID, t, `DO UPDATE SET
			sealed_secret = EXCLUDED.sealed_secret,
			recovery_hashes = EXCLUDED.recovery_hashes,
			last_step = EXCLUDED.last_step,
			failures = EXCLUDED.failures,
			last_failure = EXCLUDED.last_failure,
			created_at = EXCLUDED.created_at`); err != nil {
		return fmt.Errorf("postgres store: setting TOTP factor: %w", err)
	}
	return nil
}

// EnrolTOTP saves the user's first TOTP factor, or returns
// provisioner.ErrFactorExists if there is one (provisioner.TOTPEnroller):
// a concurrent enrolment waits for the other's commit and meets its row.
func (s *Store) EnrolTOTP(ctx context.Context, userID string, t provisioner.TOTP) error {
	if err := s.setTOTP(ctx, userID, t, `DO NOTHING`); err != nil {
		return fmt.Errorf("postgres store: enrolling TOTP factor: %w", err)
	}
	return nil
}

// setTOTP inserts the factor, resolving a factor the user has already
// with onConflict; no row written means it was kept.
func (s *Store) setTOTP(ctx context.Context, userID string, t provisioner.TOTP, onConflict string) error {
	if len(t.SealedSecret) == 0 {
		return errors.New("empty sealed secret")
	}
	hashes, err := userrow.EncodeJSON("recovery hashes", len(t.RecoveryHashes), t.RecoveryHashes)
	if err != nil {
		return err
	}
	created := t.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// One statement: the foreign key refuses a missing user, also one
	// deleted concurrently.
	tag, err := s.pool.Exec(ctx, `INSERT INTO totp_factors (user_id, sealed_secret,
			recovery_hashes, last_step, failures, last_failure, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (user_id) `+onConflict,
		userID, t.SealedSecret, hashes, t.LastStep, t.Failures,
		nullTime(t.LastFailure), created.UTC())
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "23503" && pe.ConstraintName == totpUserConstraint {
		return provisioner.ErrNotFound
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return provisioner.ErrFactorExists
	}
	return nil
}

// DeleteTOTP removes the user's TOTP factor, if there is one.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM totp_factors WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("postgres store: deleting TOTP factor: %w", err)
	}
	return nil
}

// UseTOTPStep accepts step if it is later than the last accepted one,
// in one statement: a concurrent caller with the same step waits for
// the row, finds the condition false once the first commits, and gets
// provisioner.ErrCodeUsed.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE totp_factors SET last_step = $2, failures = 0
		WHERE user_id = $1 AND last_step < $2`, userID, step)
	if err == nil && tag.RowsAffected() == 0 {
		err = s.refusedCode(ctx, userID)
	}
	if err != nil {
		return fmt.Errorf("postgres store: using TOTP step: %w", err)
	}
	return nil
}

// UseRecoveryCode removes hash from the user's recovery code hashes and
// resets the failure count in one statement, or returns
// provisioner.ErrCodeUsed if hash is not among them
// (provisioner.ErrNotFound if there is no factor). As in UseTOTPStep,
// of concurrent callers with one hash exactly one succeeds.
func (s *Store) UseRecoveryCode(ctx context.Context, userID, hash string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE totp_factors
		SET recovery_hashes = NULLIF(recovery_hashes - $2::text, '[]'::jsonb), failures = 0
		WHERE user_id = $1 AND recovery_hashes @> jsonb_build_array($2::text)`, userID, hash)
	if err == nil && tag.RowsAffected() == 0 {
		err = s.refusedCode(ctx, userID)
	}
	if err != nil {
		return fmt.Errorf("postgres store: using recovery code: %w", err)
	}
	return nil
}

// AdmitTOTPAttempt runs wait on the stored count and, unless it says to
// wait, counts the attempt, in one transaction that reads the count
// with SELECT ... FOR UPDATE: a concurrent caller, from any instance,
// waits for the row and reads the count this one wrote.
// provisioner.ErrNotFound if there is no factor.
func (s *Store) AdmitTOTPAttempt(ctx context.Context, userID string, at time.Time, wait provisioner.TOTPWait) (attempts int, retryAfter time.Duration, err error) {
	if wait == nil {
		return 0, 0, errors.New("postgres store: admitting a TOTP attempt: nil wait policy")
	}
	if at.IsZero() {
		at = s.now()
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var last *time.Time
		err := tx.QueryRow(ctx, `SELECT failures, last_failure FROM totp_factors
			WHERE user_id = $1 FOR UPDATE`, userID).Scan(&attempts, &last)
		if errors.Is(err, pgx.ErrNoRows) {
			return provisioner.ErrNotFound
		}
		if err != nil {
			return err
		}
		var lastAt time.Time
		if last != nil {
			lastAt = last.UTC()
		}
		if retryAfter = wait(attempts, lastAt, at); retryAfter > 0 {
			return nil
		}
		attempts++
		_, err = tx.Exec(ctx, `UPDATE totp_factors SET failures = $2, last_failure = $3
			WHERE user_id = $1`, userID, attempts, at.UTC())
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("postgres store: admitting a TOTP attempt: %w", err)
	}
	return attempts, retryAfter, nil
}

// refusedCode tells a code refused because it was used (or is unknown)
// from one refused because the user has no factor.
func (s *Store) refusedCode(ctx context.Context, userID string) error {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM totp_factors WHERE user_id = $1)`,
		userID).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return provisioner.ErrNotFound
	}
	return provisioner.ErrCodeUsed
}

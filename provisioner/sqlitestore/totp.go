package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/internal/userrow"
)

// TOTP returns the user's TOTP factor, or provisioner.ErrNotFound.
func (s *Store) TOTP(ctx context.Context, userID string) (*provisioner.TOTP, error) {
	var (
		t           provisioner.TOTP
		hashes      sql.NullString
		lastFailure sql.NullInt64
		created     int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT sealed_secret, recovery_hashes, last_step,
			failures, last_failure, created_at
		FROM totp_factors WHERE user_id = ?`, userID).Scan(
		&t.SealedSecret, &hashes, &t.LastStep, &t.Failures, &lastFailure, &created)
	if errors.Is(err, sql.ErrNoRows) {
		err = provisioner.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite store: reading TOTP factor: %w", err)
	}
	if t.RecoveryHashes, err = decodeHashes(hashes); err != nil {
		return nil, fmt.Errorf("sqlite store: reading TOTP factor: %w", err)
	}
	if lastFailure.Valid {
		t.LastFailure = fromNanos(lastFailure.Int64)
	}
	t.CreatedAt = fromNanos(created)
	return &t, nil
}

// SetTOTP enrols or replaces the user's TOTP factor. A zero CreatedAt
// means now. provisioner.ErrNotFound if there is no such user.
func (s *Store) SetTOTP(ctx context.Context, userID string, t provisioner.TOTP) error {
	if err := s.setTOTP(ctx, userID, t, `ON CONFLICT (user_id) DO UPDATE SET
				sealed_secret = excluded.sealed_secret,
				recovery_hashes = excluded.recovery_hashes,
				last_step = excluded.last_step,
				failures = excluded.failures,
				last_failure = excluded.last_failure,
				created_at = excluded.created_at`); err != nil {
		return fmt.Errorf("sqlite store: setting TOTP factor: %w", err)
	}
	return nil
}

// EnrolTOTP saves the user's first TOTP factor, or returns
// provisioner.ErrFactorExists if there is one (provisioner.TOTPEnroller).
func (s *Store) EnrolTOTP(ctx context.Context, userID string, t provisioner.TOTP) error {
	if err := s.setTOTP(ctx, userID, t, `ON CONFLICT (user_id) DO NOTHING`); err != nil {
		return fmt.Errorf("sqlite store: enrolling TOTP factor: %w", err)
	}
	return nil
}

// setTOTP inserts the factor in a transaction, resolving a factor the
// user has already with onConflict; no row written means it was kept.
func (s *Store) setTOTP(ctx context.Context, userID string, t provisioner.TOTP, onConflict string) error {
	if len(t.SealedSecret) == 0 {
		return errors.New("empty sealed secret")
	}
	created := t.CreatedAt
	if created.IsZero() {
		created = s.now()
	}
	for _, tm := range []time.Time{created, t.LastFailure} {
		if err := checkTime(tm); err != nil {
			return err
		}
	}
	hashes, err := userrow.EncodeJSON("recovery hashes", len(t.RecoveryHashes), t.RecoveryHashes)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, userID).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return provisioner.ErrNotFound
		case err != nil:
			return fmt.Errorf("checking user: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO totp_factors (user_id, sealed_secret,
				recovery_hashes, last_step, failures, last_failure, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) `+onConflict,
			userID, t.SealedSecret, hashes, t.LastStep, t.Failures,
			nullTime(t.LastFailure), created.UTC().UnixNano())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return provisioner.ErrFactorExists
		}
		return nil
	})
}

// DeleteTOTP removes the user's TOTP factor, if there is one.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	if _, err := s.exec(ctx, `DELETE FROM totp_factors WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("sqlite store: deleting TOTP factor: %w", err)
	}
	return nil
}

// UseTOTPStep accepts step if it is later than the last accepted one,
// in one statement: of several callers with the same step exactly one
// succeeds, the others get provisioner.ErrCodeUsed.
func (s *Store) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE totp_factors SET last_step = ?, failures = 0
			WHERE user_id = ? AND last_step < ?`, step, userID, step)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return refusedCode(ctx, tx, userID)
	})
	if err != nil {
		return fmt.Errorf("sqlite store: using TOTP step: %w", err)
	}
	return nil
}

// UseRecoveryCode removes hash from the user's recovery code hashes and
// resets the failure count, or returns provisioner.ErrCodeUsed if hash
// is not among them (provisioner.ErrNotFound if there is no factor).
func (s *Store) UseRecoveryCode(ctx context.Context, userID, hash string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var text sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT recovery_hashes FROM totp_factors
			WHERE user_id = ?`, userID).Scan(&text)
		if errors.Is(err, sql.ErrNoRows) {
			return provisioner.ErrNotFound
		}
		if err != nil {
			return err
		}
		hashes, err := decodeHashes(text)
		if err != nil {
			return err
		}
		rest := slices.DeleteFunc(slices.Clone(hashes), func(h string) bool { return h == hash })
		if len(rest) == len(hashes) {
			return provisioner.ErrCodeUsed
		}
		enc, err := userrow.EncodeJSON("recovery hashes", len(rest), rest)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE totp_factors SET recovery_hashes = ?, failures = 0
			WHERE user_id = ?`, enc, userID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: using recovery code: %w", err)
	}
	return nil
}

// AdmitTOTPAttempt runs wait on the stored count and, unless it says to
// wait, counts the attempt, in one write transaction: BEGIN IMMEDIATE
// takes the database's write lock before the count is read, so no other
// writer, in this process or another on the same file, reads it between
// the read and the write. provisioner.ErrNotFound if there is no factor.
func (s *Store) AdmitTOTPAttempt(ctx context.Context, userID string, at time.Time, wait provisioner.TOTPWait) (attempts int, retryAfter time.Duration, err error) {
	if wait == nil {
		return 0, 0, errors.New("sqlite store: admitting a TOTP attempt: nil wait policy")
	}
	if at.IsZero() {
		at = s.now()
	}
	if err := checkTime(at); err != nil {
		return 0, 0, fmt.Errorf("sqlite store: admitting a TOTP attempt: %w", err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var last sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT failures, last_failure FROM totp_factors
			WHERE user_id = ?`, userID).Scan(&attempts, &last)
		if errors.Is(err, sql.ErrNoRows) {
			return provisioner.ErrNotFound
		}
		if err != nil {
			return err
		}
		var lastAt time.Time
		if last.Valid {
			lastAt = fromNanos(last.Int64)
		}
		if retryAfter = wait(attempts, lastAt, at); retryAfter > 0 {
			return nil
		}
		attempts++
		_, err = tx.ExecContext(ctx, `UPDATE totp_factors SET failures = ?, last_failure = ?
			WHERE user_id = ?`, attempts, at.UTC().UnixNano(), userID)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite store: admitting a TOTP attempt: %w", err)
	}
	return attempts, retryAfter, nil
}

// refusedCode tells a code refused because it was used (or is unknown)
// from one refused because the user has no factor.
func refusedCode(ctx context.Context, tx *sql.Tx, userID string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM totp_factors WHERE user_id = ?`, userID).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return provisioner.ErrNotFound
	case err != nil:
		return err
	}
	return provisioner.ErrCodeUsed
}

func decodeHashes(text sql.NullString) ([]string, error) {
	if !text.Valid || text.String == "" {
		return nil, nil
	}
	var hashes []string
	if err := json.Unmarshal([]byte(text.String), &hashes); err != nil {
		return nil, fmt.Errorf("decoding recovery hashes: %w", err)
	}
	if len(hashes) == 0 {
		return nil, nil
	}
	return hashes, nil
}

package mfa

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The second factor's rules, run against the store that keeps the
// factors. They return outcomes for the caller to show; they never
// render, and an error is always the store's or the sealing keys'.

// Result is what checking one code came to.
type Result int

const (
	// Accepted: the code was right; the session may be upgraded.
	Accepted Result = iota
	// Wrong: neither a valid code nor an unused recovery code.
	Wrong
	// Reused: a valid code whose time step was already accepted (a
	// replay, or a second submit within the same 30 s).
	Reused
	// Throttled: too many attempts since the last accepted code; the
	// code was not checked and the attempt not counted.
	Throttled
	// NoFactor: the user's factor was removed (reset) meanwhile.
	NoFactor
)

// Check is the outcome of one code.
type Check struct {
	Result Result
	// Method is how the user passed: "totp" or "recovery code".
	Method string
	// Attempts counts the codes admitted for checking since the last
	// accepted one, this one included.
	Attempts int
	// Wait is how long a Throttled user must wait.
	Wait time.Duration
}

// ErrSecretUnreadable: the stored secret does not open with the
// configured keys (they changed without the old ones kept); only an
// administrative reset helps.
var ErrSecretUnreadable = errors.New("the stored TOTP secret does not open with the configured keys")

// CheckCode decides one code a user typed. The attempt is admitted and
// counted by the store in one transaction (store.AdmitTOTPAttempt with
// Locked), so parallel guesses on any number of instances each take
// their own place in the count and at most the free attempts are
// checked; only then is the factor's sealed secret opened (open) and
// the code checked,
// as a TOTP code (whose time step the store accepts at most once) or,
// failing that, as a recovery code (used up on success) under each of
// the hashes it may be stored as (hashes: Sealer.RecoveryHash with each
// key, and HashRecoveryCode for codes stored before keyed hashes).
func CheckCode(ctx context.Context, store provisioner.SecondFactorStore, userID string, sealed []byte, code string, now time.Time, open func(sealed []byte) (string, error), hashes func(code string) []string) (Check, error) {
	n, wait, err := store.AdmitTOTPAttempt(ctx, userID, now, Locked)
	switch {
	case errors.Is(err, provisioner.ErrNotFound):
		return Check{Result: NoFactor}, nil
	case err != nil:
		return Check{}, err
	case wait > 0:
		return Check{Result: Throttled, Attempts: n, Wait: wait}, nil
	}
	secret, err := open(sealed)
	if err != nil {
		return Check{}, fmt.Errorf("%w: %v", ErrSecretUnreadable, err)
	}
	if step, ok := Validate(secret, code, now); ok {
		switch err := store.UseTOTPStep(ctx, userID, step); {
		case err == nil:
			return Check{Result: Accepted, Method: "totp", Attempts: n}, nil
		case errors.Is(err, provisioner.ErrCodeUsed):
			return Check{Result: Reused, Attempts: n}, nil
		default:
			return Check{}, err
		}
	}
	if LooksLikeRecoveryCode(code) {
		for _, h := range hashes(code) {
			switch err := store.UseRecoveryCode(ctx, userID, h); {
			case err == nil:
				return Check{Result: Accepted, Method: "recovery code", Attempts: n}, nil
			case !errors.Is(err, provisioner.ErrCodeUsed):
				return Check{}, err
			}
		}
	}
	return Check{Result: Wrong, Attempts: n}, nil
}

// LooksLikeRecoveryCode reports whether a typed code is worth trying as
// a recovery code: 8 to 32 characters besides spaces and dashes.
func LooksLikeRecoveryCode(code string) bool {
	n := 0
	for _, r := range code {
		if r != ' ' && r != '-' {
			n++
		}
	}
	return n >= 8 && n <= 32
}

// ErrNotPrepared: the new factor could not be prepared for the store
// (recovery codes or sealing the secret failed); nothing was saved.
var ErrNotPrepared = errors.New("the new second factor could not be prepared")

// EnrolResult is what confirming an enrolment came to.
type EnrolResult int

const (
	// Enrolled: the factor is saved; show the recovery codes once.
	Enrolled EnrolResult = iota
	// WrongEnrolCode: the code does not match the new secret.
	WrongEnrolCode
	// AlreadyEnrolled: the user has a factor already, and enrolment
	// never replaces one: whoever holds only the first factor must not
	// be able to swap in their own authenticator.
	AlreadyEnrolled
)

// Enrol saves a new factor for userID once code proves the user's app
// holds secret, with recoveryCodes fresh recovery codes, which it
// returns for the user to see once. seal seals the secret for the
// store, and hash gives the hash each recovery code is stored as
// (Sealer.RecoveryHash).
func Enrol(ctx context.Context, store provisioner.SecondFactorStore, userID, secret, code string, recoveryCodes int, now time.Time, seal func(secret string) ([]byte, error), hash func(code string) string) (EnrolResult, []string, error) {
	step, ok := Validate(secret, code, now)
	if !ok {
		return WrongEnrolCode, nil, nil
	}
	codes, hashes, err := NewRecoveryCodes(recoveryCodes)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: creating recovery codes: %v", ErrNotPrepared, err)
	}
	for i, c := range codes {
		hashes[i] = hash(c)
	}
	sealed, err := seal(secret)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: sealing the secret: %v", ErrNotPrepared, err)
	}
	t := provisioner.TOTP{SealedSecret: sealed, RecoveryHashes: hashes, LastStep: step, CreatedAt: now.UTC()}
	if enroller, ok := store.(provisioner.TOTPEnroller); ok {
		// One atomic step: of two enrolments confirmed at once, the
		// second is told the user has a factor.
		switch err := enroller.EnrolTOTP(ctx, userID, t); {
		case errors.Is(err, provisioner.ErrFactorExists):
			return AlreadyEnrolled, nil, nil
		case err != nil:
			return 0, nil, err
		}
		return Enrolled, codes, nil
	}
	if _, err := store.TOTP(ctx, userID); err == nil {
		return AlreadyEnrolled, nil, nil
	} else if !errors.Is(err, provisioner.ErrNotFound) {
		return 0, nil, err
	}
	if err := store.SetTOTP(ctx, userID, t); err != nil {
		return 0, nil, err
	}
	return Enrolled, codes, nil
}

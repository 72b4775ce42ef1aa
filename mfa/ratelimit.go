package mfa

import "time"

const (
	// freeAttempts is how many codes in a row may be checked at once:
	// enough for a typo, a code that expired while typing, and a second
	// typo.
	freeAttempts = 3
	// firstDelay is the wait after the free attempts; each further
	// attempt doubles it.
	firstDelay = time.Second
	// maxDelay caps the wait, so a user whose account is being guessed at
	// is not locked out for ever (which would hand an attacker a way to
	// deny them service), while guessing stays slow: at one attempt per
	// 5 minutes, with 3 of the million codes valid at any moment, an
	// attacker who already has the first factor needs about three years
	// on average (about one chance in four per year of trying).
	maxDelay = 5 * time.Minute
)

// Delay is the rate-limit policy for TOTP and recovery codes: how long a
// user must wait after attempts codes checked since the last accepted
// one before the next is checked. The first 3 are free, the 4th waits
// 1s after the 3rd, then 2s, 4s, ... doubling up to 5 minutes. A growing
// delay rather than a hard lockout keeps the factor usable for its owner
// while making online guessing of 6 digits slow.
//
// attempts counts every code let through, before it is checked (an
// accepted code resets it), so parallel guesses each take a place in the
// count: of a burst of any size at most 3 are checked. The count lives in
// the store, which runs Locked inside the transaction that counts (see
// provisioner.Store.AdmitTOTPAttempt), so the policy holds across
// goroutines and instances alike.
func Delay(attempts int) time.Duration {
	if attempts < freeAttempts {
		return 0
	}
	n := attempts - freeAttempts // compared first: cannot wrap around
	// 1s<<9 already exceeds the cap; stop before the shift could overflow.
	if n >= 9 {
		return maxDelay
	}
	return min(firstDelay<<n, maxDelay)
}

// Locked reports how long a user with attempts codes checked since the
// last accepted one, the latest at last, must still wait at now before
// another is checked; 0 means one may be checked now. Check it before
// validating a code, so that a right code sent during the wait is
// refused too and guessing gains nothing from ignoring the wait. A last
// in the future (clocks of several instances disagreeing) never makes
// the wait longer than Delay. Its signature is provisioner.TOTPWait.
func Locked(attempts int, last, now time.Time) (wait time.Duration) {
	d := Delay(attempts)
	if d == 0 {
		return 0
	}
	left := last.Add(d).Sub(now)
	if left <= 0 {
		return 0
	}
	return min(left, d)
}

package mfa

import "time"

const (
	// freeFailures is how many wrong codes in a row cost nothing: enough
	// for a typo, a code that expired while typing, and a second typo.
	freeFailures = 3
	// firstDelay is the wait after the first failure past the free ones;
	// each further failure doubles it.
	firstDelay = time.Second
	// maxDelay caps the wait, so a user whose account is being guessed at
	// is not locked out for ever (which would hand an attacker a way to
	// deny them service), while guessing stays slow: at one attempt per
	// 5 minutes, with 3 of the million codes valid at any moment, an
	// attacker who already has the first factor needs about three years
	// on average (about one chance in four per year of trying).
	maxDelay = 5 * time.Minute
)

// Delay is the rate-limit policy for wrong TOTP and recovery codes: how
// long a user must wait after failures wrong codes in a row before the
// next attempt. The first 3 are free; then 1s, 2s, 4s, ... doubling up to
// 5 minutes. A growing delay rather than a hard lockout keeps the factor
// usable for its owner while making online guessing of 6 digits slow.
// The count itself lives in the store (provisioner.Store.RecordTOTPFailure,
// reset by a code accepted), so the policy holds across instances.
func Delay(failures int) time.Duration {
	if failures <= freeFailures {
		return 0
	}
	n := failures - freeFailures // compared first: cannot wrap around
	// 1s<<9 already exceeds the cap; stop before the shift could overflow.
	if n > 9 {
		return maxDelay
	}
	return min(firstDelay<<(n-1), maxDelay)
}

// Locked reports how long a user with failures wrong codes in a row, the
// latest at lastFailure, must still wait at now before trying again;
// 0 means they may try now. Check it before validating a code, so that
// a right code sent during the wait is refused too and guessing gains
// nothing from ignoring the wait. A lastFailure in the future (clocks of
// several instances disagreeing) never makes the wait longer than Delay.
func Locked(failures int, lastFailure, now time.Time) (wait time.Duration) {
	d := Delay(failures)
	if d == 0 {
		return 0
	}
	left := lastFailure.Add(d).Sub(now)
	if left <= 0 {
		return 0
	}
	return min(left, d)
}

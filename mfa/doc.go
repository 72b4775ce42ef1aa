// Package mfa is the pure-Go core of the TOTP second factor: enrolment
// (secret, otpauth URL, QR code), code validation, recovery codes,
// sealing secrets at rest, and the rate-limit policy for wrong codes.
//
// It holds no state and does no I/O. What must be remembered between
// requests lives in the store (provisioner.Store): the sealed secret,
// the recovery code hashes, the last accepted time step and the failure
// counter. The intended flow for a code typed by a user is:
//
//	t, _ := store.TOTP(ctx, userID)
//	// Decides and counts in one store transaction, running mfa.Locked.
//	if _, wait, _ := store.AdmitTOTPAttempt(ctx, userID, now, mfa.Locked); wait > 0 { refuse; say how long }
//	secret, err := sealer.Open(userID, t.SealedSecret)
//	if step, ok := mfa.Validate(secret, code, now); ok {
//		err = store.UseTOTPStep(ctx, userID, step) // refuses a replayed step; resets the count
//	}
//
// Nothing here puts a secret, a code or key material into an error
// message or a String method (SECURITY.md S13).
package mfa

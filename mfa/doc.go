// Package mfa is the pure-Go core of the TOTP second factor: enrolment
// (secret, otpauth URL, QR code), code validation, recovery codes,
// sealing secrets at rest, and the rate-limit policy for wrong codes.
//
// The codes, secrets and policy hold no state and do no I/O. What must
// be remembered between requests lives in the store
// (provisioner.SecondFactorStore): the sealed secret, the recovery code
// hashes, the last accepted time step and the attempt counter. The rules
// that use it are in flow.go, as plain functions that return outcomes
// for the caller to show: CheckCode (one typed code: admitted and
// counted atomically by the store, then checked as a TOTP code or a
// recovery code) and Enrol (a new factor, which never replaces one).
//
// Nothing here puts a secret, a code or key material into an error
// message or a String method (SECURITY.md S13).
package mfa

package caddymodule

import (
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// eventKind names an outcome worth recording. Its value is the audit
// log's message, which operators match on, so it never changes once
// released (the README lists them under "Audit events").
type eventKind string

const (
	// Logins.
	eventLoggedIn         eventKind = "user logged in"
	eventLoginRefused     eventKind = "login refused"
	eventLoginDenied      eventKind = "login denied"
	eventLoginFailed      eventKind = "login failed"
	eventUserDisabled     eventKind = "login refused: user disabled"
	eventNoLocalUserForMF eventKind = "login refused: second factor needs a local user"
	eventLoggedOut        eventKind = "user logged out"

	// Provisioning.
	eventUserCreated    eventKind = "user created"
	eventIdentityLinked eventKind = "identity linked"
	eventUserUpdated    eventKind = "user updated"

	// Consent.
	eventConsentGiven    eventKind = "consent given"
	eventConsentDeclined eventKind = "consent declined"

	// Second factor.
	eventTOTPEnrolled    eventKind = "totp enrolled"
	eventMFAAccepted     eventKind = "second factor accepted"
	eventTOTPRefused     eventKind = "totp code refused"
	eventTOTPRateLimited eventKind = "totp attempt refused: too many wrong codes"

	// Administration (the admin API).
	eventAdminUpdated      eventKind = "user updated by an administrator"
	eventAdminRolesGranted eventKind = "roles granted by an administrator"
	eventAdminRolesRevoked eventKind = "local roles revoked by an administrator"
	eventAdminTOTPReset    eventKind = "totp reset by an administrator"
)

// event is one outcome, with the one field set every outcome shares:
// who (connection, username, local ID, provider subject) and what (the
// outcome's own details). No field ever holds a secret, a token or a
// cookie value.
type event struct {
	kind eventKind
	// connection is the connection the user came through.
	connection string
	// username and localID name the local user, when there is one.
	username, localID string
	// subject is the user's subject at the provider.
	subject string
	// reason says why a login was refused, for the refusals that have
	// no error of their own.
	reason string
	// outcome is what provisioning did on a login (created, linked,
	// updated, none).
	outcome string
	// attributes are attribute names: consented to, changed by a login
	// or by an administrator.
	attributes []string
	// roles are the user's roles, or those an administrator granted or
	// revoked.
	roles []string
	// method is how a second factor was passed (totp, recovery_code).
	method string
	// failures counts wrong second-factor codes since the last good one.
	failures int
	// providerError is the error code a provider answered with.
	providerError string
	// err is the error behind a failure.
	err error
}

// emit records ev. It is the one place every outcome passes through:
// the audit log today, metrics and Caddy events beside it.
func emit(logger *zap.Logger, ev event) {
	if ce := logger.Check(zapcore.InfoLevel, string(ev.kind)); ce != nil {
		ce.Write(ev.fields()...)
	}
}

// fields is ev as log fields, leaving out what it does not have.
func (ev event) fields() []zap.Field {
	f := make([]zap.Field, 0, 8)
	str := func(key, v string) {
		if v != "" {
			f = append(f, zap.String(key, v))
		}
	}
	str("connection", ev.connection)
	str("username", ev.username)
	str("local_id", ev.localID)
	str("subject", ev.subject)
	str("reason", ev.reason)
	str("outcome", ev.outcome)
	if ev.attributes != nil {
		f = append(f, zap.Strings("attributes", ev.attributes))
	}
	if ev.roles != nil {
		f = append(f, zap.Strings("roles", ev.roles))
	}
	str("method", ev.method)
	if ev.failures > 0 {
		f = append(f, zap.Int("failures", ev.failures))
	}
	str("provider_error", ev.providerError)
	if ev.err != nil {
		f = append(f, zap.Error(ev.err))
	}
	return f
}

// emit records ev through the handler's logger.
func (h *Handler) emit(ev event) { emit(h.logger, ev) }

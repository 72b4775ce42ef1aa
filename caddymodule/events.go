package caddymodule

import (
	"context"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/jitauth/caddy-jitauth/provisioner"
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
	eventSessionIdle      eventKind = "session ended: idle timeout"
	eventBearerRefused    eventKind = "bearer token refused"
	// eventBackchannelLogout: the provider signed a user out there.
	eventBackchannelLogout  eventKind = "sessions ended by the provider (back-channel logout)"
	eventBackchannelRefused eventKind = "back-channel logout refused"
	// eventRefreshRefused: the provider refused a session's refresh,
	// and the session ended.
	eventRefreshRefused eventKind = "session ended: the provider refused its refresh"

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
	eventAdminDisabled     eventKind = "user disabled by an administrator"
	eventAdminEnabled      eventKind = "user enabled by an administrator"
	eventAdminDeleted      eventKind = "user deleted by an administrator"
	eventAdminSignedOut    eventKind = "user signed out everywhere by an administrator"

	eventDeprovisionDisabled eventKind = "user disabled for inactivity"
	eventDeprovisionDeleted  eventKind = "user deleted for inactivity"
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
	// held counts the same outcomes not audited since the last one that
	// was (emitSpaced).
	held uint64
}

// observers are where an outcome goes besides the audit log: the
// process's metrics, Caddy's events app, and the login history of the
// user it concerns.
type observers struct {
	metrics *metrics
	// history keeps each user's latest login attempts (nil: the store
	// has no admin role, and keeps none).
	history provisioner.AdminStore
	// events and ctx emit Caddy events (nil events: none, as in tests
	// that build a Handler by hand).
	events *caddyevents.App
	ctx    caddy.Context
}

// emit records ev. It is the one place every outcome passes through:
// the audit log (through logger, the caller's), the metrics and Caddy's
// events.
func (o *observers) emit(logger *zap.Logger, ev event) {
	writeAudit(logger, ev)
	if o == nil {
		return
	}
	if o.metrics != nil {
		o.metrics.record(ev)
	}
	if name, ok := caddyEvents[ev.kind]; ok && o.events != nil {
		o.events.Emit(o.ctx, name, ev.data())
	}
	if outcome, ok := loginOutcomes[ev.kind]; ok && o.history != nil && ev.localID != "" {
		o.recordLogin(logger, ev, outcome)
	}
}

// loginOutcomes are the login attempts kept in a user's history, with
// the outcome recorded for each.
var loginOutcomes = map[eventKind]string{
	eventLoggedIn:         "succeeded",
	eventUserDisabled:     "refused: user disabled",
	eventLoginDenied:      "denied",
	eventLoginRefused:     "refused",
	eventNoLocalUserForMF: "refused: second factor needs a local user",
}

// recordLogin adds a login attempt to its user's history. It runs in
// the login's request, which has written to the store already; a
// failure is logged and does not change the login's outcome.
func (o *observers) recordLogin(logger *zap.Logger, ev event, outcome string) {
	if ev.reason != "" && outcome != loginOutcomes[eventLoggedIn] {
		outcome += ": " + ev.reason
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := o.history.AddLoginEvent(ctx, ev.localID, provisioner.LoginEvent{At: time.Now().UTC(), Connection: ev.connection, Outcome: outcome})
	if err != nil && !errors.Is(err, provisioner.ErrNotFound) {
		logger.Warn("recording the login in the user's history", zap.String("local_id", ev.localID), zap.Error(err))
	}
}

// caddyEvents names the outcomes that are Caddy events, so that an
// `events` block (or the events app's JSON) can react to them. Their
// origin is the jit_auth app.
var caddyEvents = map[eventKind]string{
	eventUserCreated:         "user_created",
	eventIdentityLinked:      "user_linked",
	eventUserUpdated:         "user_updated",
	eventAdminUpdated:        "user_updated",
	eventAdminRolesGranted:   "user_updated",
	eventAdminRolesRevoked:   "user_updated",
	eventAdminDisabled:       "user_disabled",
	eventAdminEnabled:        "user_enabled",
	eventAdminDeleted:        "user_deleted",
	eventAdminSignedOut:      "user_signed_out",
	eventDeprovisionDisabled: "user_disabled",
	eventDeprovisionDeleted:  "user_deleted",
	eventLoggedIn:            "login_succeeded",
	eventLoginRefused:        "login_failed",
	eventLoginDenied:         "login_failed",
	eventLoginFailed:         "login_failed",
	eventUserDisabled:        "login_failed",
	eventNoLocalUserForMF:    "login_failed",
}

// data is ev as a Caddy event's data: the same field set as the audit
// log, under the same names ({event.data.username} in a handler's
// placeholders), with the audit message as "message".
func (ev event) data() map[string]any {
	d := map[string]any{"message": string(ev.kind)}
	for k, v := range map[string]string{"connection": ev.connection, "username": ev.username, "local_id": ev.localID,
		"subject": ev.subject, "reason": ev.reason, "outcome": ev.outcome, "method": ev.method, "provider_error": ev.providerError} {
		if v != "" {
			d[k] = v
		}
	}
	if ev.attributes != nil {
		d["attributes"] = ev.attributes
	}
	if ev.roles != nil {
		d["roles"] = ev.roles
	}
	if ev.err != nil {
		d["error"] = ev.err.Error()
	}
	if ev.held > 0 {
		d["not_logged_since_last"] = ev.held
	}
	return d
}

// writeAudit writes ev to the audit log.
func writeAudit(logger *zap.Logger, ev event) {
	if ce := logger.Check(ev.level(), string(ev.kind)); ce != nil {
		ce.Write(ev.fields()...)
	}
}

// level is ev's level in the audit log: a record (INFO), except a login
// the site could not finish, which an operator must see (ERROR).
func (ev event) level() zapcore.Level {
	if ev.kind == eventLoginFailed && (ev.reason == reasonStoreUnavailable || ev.reason == reasonProvisioningError) {
		return zapcore.ErrorLevel
	}
	return zapcore.InfoLevel
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
	if ev.held > 0 {
		f = append(f, zap.Uint64("not_logged_since_last", ev.held))
	}
	return f
}

// emit records ev through the handler's logger.
// sessionEvent is an event about the user of s: who they are here and
// at their provider, in the same fields wherever a session is at hand.
func sessionEvent(kind eventKind, s *Session) event {
	return event{kind: kind, connection: s.Connection, username: s.Username, localID: s.UserID, subject: s.Subject}
}

func (h *Handler) emit(ev event) {
	var o *observers
	if h.app != nil {
		o = h.app.observers
	}
	o.emit(h.logger, ev)
}

// emitSpaced records ev, an outcome with no identity to name that
// anyone's requests can repeat at will (a callback without a valid flow
// cookie): it counts in the metrics each time, but is audited and sent
// as a Caddy event (on which an events block may run a program) at most
// once per logSpacingInterval of l, saying how many were held back;
// those log at DEBUG.
func (h *Handler) emitSpaced(l *logSpacing, ev event) {
	if held, ok := l.due(time.Now()); ok {
		ev.held = held
		h.emit(ev)
		return
	}
	if h.app != nil && h.app.observers != nil && h.app.observers.metrics != nil {
		h.app.observers.metrics.record(ev)
	}
	if ce := h.logger.Check(zapcore.DebugLevel, string(ev.kind)); ce != nil {
		ce.Write(ev.fields()...)
	}
}

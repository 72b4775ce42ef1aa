package caddymodule

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The store's roles are wrapped so that every call is timed into
// jit_auth_store_operation_seconds{operation}, whatever the store
// module: a third-party store is measured as the shipped ones are. Each
// role is wrapped on its own, so the wrappers claim exactly the roles
// the store plays.

// storeTimer observes one call's duration under its operation's label.
type storeTimer struct{ h *prometheus.HistogramVec }

func (t storeTimer) since(op string, start time.Time) {
	t.h.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// timedSessionStore times the user and revocation roles.
type timedSessionStore struct {
	s sessionStore
	t storeTimer
}

func (w timedSessionStore) UserByIdentity(ctx context.Context, k provisioner.IdentityKey) (*provisioner.User, error) {
	defer w.t.since("user_by_identity", time.Now())
	return w.s.UserByIdentity(ctx, k)
}

// timedBatchStore is timedSessionStore for a store that also reads
// users in batches (provisioner.UserBatchReader).
type timedBatchStore struct {
	timedSessionStore
	b provisioner.UserBatchReader
}

func (w timedBatchStore) UsersByID(ctx context.Context, ids []string) ([]provisioner.User, error) {
	defer w.t.since("users_by_id", time.Now())
	return w.b.UsersByID(ctx, ids)
}

func (w timedSessionStore) User(ctx context.Context, id string) (*provisioner.User, error) {
	defer w.t.since("user", time.Now())
	return w.s.User(ctx, id)
}

func (w timedSessionStore) UserByUsername(ctx context.Context, name string) (*provisioner.User, error) {
	defer w.t.since("user_by_username", time.Now())
	return w.s.UserByUsername(ctx, name)
}

func (w timedSessionStore) UsersByEmail(ctx context.Context, email string) ([]provisioner.User, error) {
	defer w.t.since("users_by_email", time.Now())
	return w.s.UsersByEmail(ctx, email)
}

func (w timedSessionStore) ListUsers(ctx context.Context, offset, limit int) ([]provisioner.User, error) {
	defer w.t.since("list_users", time.Now())
	return w.s.ListUsers(ctx, offset, limit)
}

func (w timedSessionStore) Identities(ctx context.Context, userID string) ([]provisioner.Identity, error) {
	defer w.t.since("identities", time.Now())
	return w.s.Identities(ctx, userID)
}

func (w timedSessionStore) CreateUser(ctx context.Context, u *provisioner.User, id provisioner.Identity) (*provisioner.User, error) {
	defer w.t.since("create_user", time.Now())
	return w.s.CreateUser(ctx, u, id)
}

func (w timedSessionStore) LinkIdentity(ctx context.Context, userID string, id provisioner.Identity, update provisioner.UpdateFunc) (*provisioner.User, error) {
	defer w.t.since("link_identity", time.Now())
	return w.s.LinkIdentity(ctx, userID, id, update)
}

func (w timedSessionStore) RecordLogin(ctx context.Context, k provisioner.IdentityKey, raw []byte, at time.Time, update provisioner.UpdateFunc) (*provisioner.User, error) {
	defer w.t.since("record_login", time.Now())
	return w.s.RecordLogin(ctx, k, raw, at, update)
}

func (w timedSessionStore) UpdateUser(ctx context.Context, userID string, update provisioner.UpdateFunc) (*provisioner.User, error) {
	defer w.t.since("update_user", time.Now())
	return w.s.UpdateUser(ctx, userID, update)
}

// RecordUserLogin passes a login by user ID to a store that records
// them (provisioner.LoginRecorder, optional); for one that does not it
// does nothing, as the provisioner would without the wrapper.
func (w timedSessionStore) RecordUserLogin(ctx context.Context, userID string, at time.Time) error {
	rec, ok := w.s.(provisioner.LoginRecorder)
	if !ok {
		return nil
	}
	defer w.t.since("record_user_login", time.Now())
	return rec.RecordUserLogin(ctx, userID, at)
}

// UsernameRetired asks a store that retires deleted users' names
// (provisioner.UsernameRetirer, optional); for one that does not, no
// name is retired, as the provisioner would see it without the wrapper.
func (w timedSessionStore) UsernameRetired(ctx context.Context, name string, k provisioner.IdentityKey) (bool, error) {
	r, ok := w.s.(provisioner.UsernameRetirer)
	if !ok {
		return false, nil
	}
	defer w.t.since("username_retired", time.Now())
	return r.UsernameRetired(ctx, name, k)
}

func (w timedSessionStore) Close() error { return w.s.Close() }

func (w timedSessionStore) RevokeSession(ctx context.Context, id string, expires time.Time) error {
	defer w.t.since("revoke_session", time.Now())
	return w.s.RevokeSession(ctx, id, expires)
}

func (w timedSessionStore) RevokedSessions(ctx context.Context, since time.Time) ([]provisioner.RevokedSession, error) {
	defer w.t.since("revoked_sessions", time.Now())
	return w.s.RevokedSessions(ctx, since)
}

// timedSingleUse times the single-use role.
type timedSingleUse struct {
	s provisioner.SingleUseStore
	t storeTimer
}

func (w timedSingleUse) UseOnce(ctx context.Context, id string, expires time.Time) (bool, error) {
	defer w.t.since("use_once", time.Now())
	return w.s.UseOnce(ctx, id, expires)
}

// timedFactors times the second-factor role.
type timedFactors struct {
	s provisioner.SecondFactorStore
	t storeTimer
}

func (w timedFactors) TOTP(ctx context.Context, userID string) (*provisioner.TOTP, error) {
	defer w.t.since("totp", time.Now())
	return w.s.TOTP(ctx, userID)
}

func (w timedFactors) SetTOTP(ctx context.Context, userID string, f provisioner.TOTP) error {
	defer w.t.since("set_totp", time.Now())
	return w.s.SetTOTP(ctx, userID, f)
}

func (w timedFactors) DeleteTOTP(ctx context.Context, userID string) error {
	defer w.t.since("delete_totp", time.Now())
	return w.s.DeleteTOTP(ctx, userID)
}

func (w timedFactors) UseTOTPStep(ctx context.Context, userID string, step int64) error {
	defer w.t.since("use_totp_step", time.Now())
	return w.s.UseTOTPStep(ctx, userID, step)
}

func (w timedFactors) UseRecoveryCode(ctx context.Context, userID, hash string) error {
	defer w.t.since("use_recovery_code", time.Now())
	return w.s.UseRecoveryCode(ctx, userID, hash)
}

func (w timedFactors) AdmitTOTPAttempt(ctx context.Context, userID string, at time.Time, wait provisioner.TOTPWait) (int, time.Duration, error) {
	defer w.t.since("admit_totp_attempt", time.Now())
	return w.s.AdmitTOTPAttempt(ctx, userID, at, wait)
}

// timedFactorRole is the store module's second-factor role, timed, with
// the atomic enrolment when the module has it; nil without the role.
func timedFactorRole(mod any, timer storeTimer) provisioner.SecondFactorStore {
	f, ok := mod.(provisioner.SecondFactorStore)
	if !ok {
		return nil
	}
	if e, ok := mod.(provisioner.TOTPEnroller); ok {
		return timedEnrollingFactors{timedFactors{f, timer}, e}
	}
	return timedFactors{f, timer}
}

// timedEnrollingFactors is timedFactors for a store that also enrols a
// first factor atomically (provisioner.TOTPEnroller).
type timedEnrollingFactors struct {
	timedFactors
	e provisioner.TOTPEnroller
}

func (w timedEnrollingFactors) EnrolTOTP(ctx context.Context, userID string, f provisioner.TOTP) error {
	defer w.t.since("enrol_totp", time.Now())
	return w.e.EnrolTOTP(ctx, userID, f)
}

// timedAdmin times the admin role.
type timedAdmin struct {
	s provisioner.AdminStore
	t storeTimer
}

func (w timedAdmin) SearchUsers(ctx context.Context, q provisioner.UserQuery) ([]provisioner.User, error) {
	defer w.t.since("search_users", time.Now())
	return w.s.SearchUsers(ctx, q)
}

func (w timedAdmin) CountUsers(ctx context.Context) (map[provisioner.Status]int, error) {
	defer w.t.since("count_users", time.Now())
	return w.s.CountUsers(ctx)
}

func (w timedAdmin) SetStatus(ctx context.Context, userID string, s provisioner.Status, reason string) error {
	defer w.t.since("set_status", time.Now())
	return w.s.SetStatus(ctx, userID, s, reason)
}

func (w timedAdmin) DeleteUser(ctx context.Context, userID string) error {
	defer w.t.since("delete_user", time.Now())
	return w.s.DeleteUser(ctx, userID)
}

func (w timedAdmin) SetStatusIf(ctx context.Context, userID string, s provisioner.Status, reason string, cond provisioner.UserCondition) error {
	defer w.t.since("set_status_if", time.Now())
	return w.s.SetStatusIf(ctx, userID, s, reason, cond)
}

func (w timedAdmin) DeleteUserIf(ctx context.Context, userID string, cond provisioner.UserCondition) error {
	defer w.t.since("delete_user_if", time.Now())
	return w.s.DeleteUserIf(ctx, userID, cond)
}

func (w timedAdmin) AddLoginEvent(ctx context.Context, userID string, e provisioner.LoginEvent) error {
	defer w.t.since("add_login_event", time.Now())
	return w.s.AddLoginEvent(ctx, userID, e)
}

func (w timedAdmin) LoginHistory(ctx context.Context, userID string) ([]provisioner.LoginEvent, error) {
	defer w.t.since("login_history", time.Now())
	return w.s.LoginHistory(ctx, userID)
}

func (w timedAdmin) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	defer w.t.since("acquire_lease", time.Now())
	return w.s.AcquireLease(ctx, name, holder, ttl)
}

// Interface guards
var (
	_ sessionStore                  = timedSessionStore{}
	_ provisioner.SecondFactorStore = timedFactors{}
	_ provisioner.AdminStore        = timedAdmin{}
	_ provisioner.SingleUseStore    = timedSingleUse{}
	_ provisioner.TOTPEnroller      = timedEnrollingFactors{}
	_ provisioner.UsernameRetirer   = timedSessionStore{}
)

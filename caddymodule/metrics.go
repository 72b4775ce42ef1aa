package caddymodule

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the jit_auth_* series on Caddy's metrics registry (its
// admin endpoint's /metrics, and the metrics handler). The collectors
// are made once per process and registered into the registry of every
// configuration that loads, so counters keep counting across
// `caddy reload` as the rest of the security state does. Labels are the
// connection (a name from the config), and outcomes, actions and reasons
// from fixed lists in this file: never a user name, an email or any
// other identifier a client can choose.
type metrics struct {
	logins        *prometheus.CounterVec
	provisionings *prometheus.CounterVec
	denials       *prometheus.CounterVec
	consents      *prometheus.CounterVec
	mfa           *prometheus.CounterVec
	logouts       *prometheus.CounterVec
	adminChanges  *prometheus.CounterVec
	deprovisioned *prometheus.CounterVec
	storeLatency  *prometheus.HistogramVec
	users         *prometheus.GaugeVec
}

var (
	sharedMetrics     *metrics
	sharedMetricsOnce sync.Once
)

// processMetrics returns the process's jit_auth metrics.
func processMetrics() *metrics {
	sharedMetricsOnce.Do(func() {
		counter := func(name, help string, labels ...string) *prometheus.CounterVec {
			return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "jit_auth", Name: name, Help: help}, labels)
		}
		sharedMetrics = &metrics{
			logins:        counter("logins_total", "Logins that reached the callback, by connection and outcome (succeeded, refused, denied, failed).", "connection", "outcome"),
			provisionings: counter("provisionings_total", "What JIT provisioning did to the store at a login, by connection and action (created, linked, updated).", "connection", "action"),
			denials:       counter("denials_total", "Logins that ended without a session, and bearer tokens refused (reason bearer_token), by reason.", "reason"),
			consents:      counter("consents_total", "Answers on the consent page, by connection and answer (given, declined).", "connection", "answer"),
			mfa:           counter("mfa_total", "Second-factor outcomes, by method (totp, recovery_code) and outcome (enrolled, accepted, refused, rate_limited).", "method", "outcome"),
			logouts:       counter("logouts_total", "Sessions ended by their user, by connection.", "connection"),
			adminChanges:  counter("admin_changes_total", "Changes made through the admin API, by change.", "change"),
			deprovisioned: counter("deprovisioned_total", "Inactive users disabled or deleted by a connection's deprovision rule, by connection and action (disable, delete).", "connection", "action"),
			storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "jit_auth", Name: "store_operation_seconds",
				Help:    "Time the user store took per call, by operation (record_login, create_user, search_users, revoke_session, …), failures included.",
				Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"operation"}),
			users: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "jit_auth", Name: "users",
				Help: "Users in the store by status (active, disabled), counted in the background."}, []string{"status"}),
		}
	})
	return sharedMetrics
}

// register adds the collectors to a configuration's registry; one that
// already holds them (the same configuration provisioned twice) is fine.
func (m *metrics) register(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.logins, m.provisionings, m.denials, m.consents, m.mfa, m.logouts, m.adminChanges, m.deprovisioned, m.storeLatency, m.users} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}

// record counts ev in the series its kind belongs to.
func (m *metrics) record(ev event) {
	switch ev.kind {
	case eventLoggedIn:
		m.logins.WithLabelValues(ev.connection, "succeeded").Inc()
	case eventLoginRefused, eventUserDisabled, eventNoLocalUserForMF:
		m.logins.WithLabelValues(ev.connection, "refused").Inc()
		m.denials.WithLabelValues(denialReason(ev)).Inc()
	case eventLoginDenied:
		m.logins.WithLabelValues(ev.connection, "denied").Inc()
		m.denials.WithLabelValues(denialReason(ev)).Inc()
	case eventLoginFailed:
		m.logins.WithLabelValues(ev.connection, "failed").Inc()
		m.denials.WithLabelValues(denialReason(ev)).Inc()
	case eventLoggedOut, eventBackchannelLogout:
		m.logouts.WithLabelValues(ev.connection).Inc()
	case eventBearerRefused:
		m.denials.WithLabelValues("bearer_token").Inc()
	case eventUserCreated:
		m.provisionings.WithLabelValues(ev.connection, "created").Inc()
	case eventIdentityLinked:
		m.provisionings.WithLabelValues(ev.connection, "linked").Inc()
	case eventUserUpdated:
		m.provisionings.WithLabelValues(ev.connection, "updated").Inc()
	case eventConsentGiven:
		m.consents.WithLabelValues(ev.connection, "given").Inc()
	case eventConsentDeclined:
		m.consents.WithLabelValues(ev.connection, "declined").Inc()
	case eventTOTPEnrolled:
		m.mfa.WithLabelValues("totp", "enrolled").Inc()
	case eventMFAAccepted:
		m.mfa.WithLabelValues(mfaMethod(ev.method), "accepted").Inc()
	case eventTOTPRefused:
		m.mfa.WithLabelValues("totp", "refused").Inc()
	case eventTOTPRateLimited:
		m.mfa.WithLabelValues("totp", "rate_limited").Inc()
	case eventDeprovisionDisabled:
		m.deprovisioned.WithLabelValues(ev.connection, "disable").Inc()
	case eventDeprovisionDeleted:
		m.deprovisioned.WithLabelValues(ev.connection, "delete").Inc()
	default:
		if change, ok := adminChanges[ev.kind]; ok {
			m.adminChanges.WithLabelValues(change).Inc()
		}
	}
}

// adminChanges names each administrator's change for its metric label.
var adminChanges = map[eventKind]string{
	eventAdminUpdated:      "attributes",
	eventAdminRolesGranted: "roles_granted",
	eventAdminRolesRevoked: "roles_revoked",
	eventAdminTOTPReset:    "totp_reset",
	eventAdminDisabled:     "disabled",
	eventAdminEnabled:      "enabled",
	eventAdminDeleted:      "deleted",
	eventAdminSignedOut:    "signed_out",
}

// mfaMethod keeps the method label to the methods there are.
func mfaMethod(m string) string {
	if m == "recovery_code" {
		return m
	}
	return "totp"
}

// denialReasons are the reasons a login ends without a session, as
// metric labels, by the event's reason text (which the code writes).
var denialReasons = map[string]string{
	"invalid or expired login state":               "invalid_state",
	"login state replayed":                         "state_replayed",
	"provider returned an error":                   "provider_error",
	"not allowed by the application's allow rules": "allow_rules",
	reasonStoreUnavailable:                         "store_unavailable",
	reasonProvisioningError:                        "provisioning_error",
	reasonClientGone:                               "client_gone",
}

// The reasons of logins the site could not finish, through no fault of
// the user or their provider.
const (
	reasonStoreUnavailable  = "the user store is unavailable"
	reasonProvisioningError = "provisioning failed"
	// reasonClientGone: the browser went away (its request's context
	// ended) while the login was being finished; no fault of the site.
	reasonClientGone = "the browser went away"
)

// denialReason is ev's reason as a label from a fixed list.
func denialReason(ev event) string {
	if r, ok := denialReasons[ev.reason]; ok {
		return r
	}
	switch ev.kind {
	case eventUserDisabled:
		return "user_disabled"
	case eventNoLocalUserForMF:
		return "no_local_user_for_mfa"
	case eventLoginFailed:
		return "provider_answer"
	}
	return "provisioning"
}

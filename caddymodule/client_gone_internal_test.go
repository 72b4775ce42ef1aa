package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A decision about the user (an email or username conflict, claims
// refused: a denial, the audit record of an attempt to take over an
// account) stays a denial when the browser happens to be gone by the
// time the answer is rendered.
func TestClientGoneDoesNotHideADenial(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("%w: alice@example.com", provisioner.ErrEmailConflict),
		fmt.Errorf("%w: alice", provisioner.ErrUsernameConflict),
		fmt.Errorf("%w: no email", provisioner.ErrInvalidClaims),
	} {
		want := provisioningEvent("corp", "sub", err, nil)
		got := provisioningEvent("corp", "sub", err, context.Canceled)
		if got.kind != want.kind || got.reason != want.reason {
			t.Errorf("denial %q with the browser gone: kind %v reason %q; the same denial with it there: kind %v reason %q",
				err, got.kind, got.reason, want.kind, want.reason)
		}
	}
}

// The store's own failure (not the request's context ending: a locked
// SQLite file answering "database is locked" after busy_timeout, a
// PostgreSQL statement timeout) is an outage even if the browser gave up
// waiting for it meanwhile; during an outage browsers do give up, so
// store_unavailable (ERROR, alerted on) disappears exactly when it
// matters.
func TestClientGoneDoesNotHideAStoreOutage(t *testing.T) {
	err := fmt.Errorf("%w: looking up identity: %v", provisioner.ErrStoreUnavailable, errors.New("database is locked (5) (SQLITE_BUSY)"))
	ev := provisioningEvent("corp", "sub", err, context.Canceled)
	if ev.reason != reasonStoreUnavailable {
		t.Errorf("a store that answered %q while the browser had gone is logged as %q (%v), not %q", err, ev.reason, ev.kind, reasonStoreUnavailable)
	}
}

package caddymodule_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// "Sign out everywhere" (admin API, `caddy jit-users signout`, a TOTP
// reset, a back-channel logout by subject) records a cutoff whose time is
// the clock of the instance that took it. With that instance's clock 30 s
// slow, the sessions another instance issued in the 30 s before the
// sign-out must end too: the cutoff counts from the store's record of it
// (PostgreSQL's clock) when that is later.
//
// Instance A (clock 30 s slow) is played by writing to the shared store
// exactly what its signOutEverywhere writes (RevokeSession of the
// cutoff ID, stamped there by PostgreSQL's clock); instance B is the
// in-process Caddy.
func TestSignOutEverywhereThroughAnInstanceWithASlowClock(t *testing.T) {
	_, connString := pgSchema(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	runCaddyfile(t, pgCaddyfile(t.TempDir(), fmt.Sprintf("store postgres %q\n\t\trevocation_poll 1s", connString), port,
		cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()))

	_, with := signInAndCopy(t, idp, base)
	if code := with(); code != http.StatusOK {
		t.Fatalf("live session refused: %d", code)
	}
	ids := allPGUsers(t, connString)
	if len(ids) != 1 {
		t.Fatalf("users: %v", ids)
	}
	time.Sleep(3 * time.Second) // the session is a few seconds old; B has polled

	// The operator signs alice out everywhere through A (clock 30 s slow).
	st := openPGStore(t, connString)
	aNow := time.Now().Add(-30 * time.Second)
	if err := st.RevokeSession(t.Context(), fmt.Sprintf("user:%d:%s", aNow.Unix(), ids[0]), aNow.Add(13*time.Hour)); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	deadline := start.Add(6 * time.Second)
	for with() == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("a session issued 3 s before alice was signed out everywhere still reaches the upstream %s later (revocation_poll 1s): the sign-out was taken by an instance whose clock is 30 s slow, and its cutoff is compared with B's clock", time.Since(start).Round(time.Second))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

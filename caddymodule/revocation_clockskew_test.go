package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/jackc/pgx/v5"
)

// Two instances share PostgreSQL; a logout through one must reach the
// other within revocation_poll (README "Several instances"; S7), also
// when the clock of the instance that took the logout is 30 s behind
// the reader's (NTP off on one VM, a container host that drifted): the
// reader reads the revocations by the database's clock, not by the
// times the writers' clocks put in the rows.
//
// Instance A (clock 30 s slow) is played by inserting into the shared
// store the row a writer that stamps revoked_at with its own clock
// writes; instance B is the in-process Caddy.
func TestLogoutThroughAnInstanceWithASlowClockReachesTheOthers(t *testing.T) {
	schema, connString := pgSchema(t)
	idp := startMockOIDC(t)
	up := newUpstream(t)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	runCaddyfile(t, pgCaddyfile(t.TempDir(), fmt.Sprintf("store postgres %q\n\t\trevocation_poll 1s", connString), port,
		cfg.Issuer, cfg.ClientID, cfg.ClientSecret, up.hostPort()))

	b, with := signInAndCopy(t, idp, base)
	c := b.cookie(base, "jitauth_session")
	sc := securecookie.New(mustDecodeB64(t, testHashKey), mustDecodeB64(t, testBlockKey))
	sc.SetSerializer(securecookie.JSONEncoder{})
	var s struct {
		ID  string `json:"sid"`
		Exp int64  `json:"exp"`
	}
	if err := sc.Decode("jitauth_session", c.Value, &s); err != nil || s.ID == "" {
		t.Fatalf("opening the session cookie: %v", err)
	}
	if code := with(); code != http.StatusOK {
		t.Fatalf("live session refused: %d", code)
	}
	time.Sleep(2 * time.Second) // B has read the revocations at least once

	// A, whose clock is 30 s behind B's, takes the logout of this session.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	slowNow := time.Now().Add(-30 * time.Second).UTC()
	if _, err := conn.Exec(ctx, `INSERT INTO `+schema+`.revoked_sessions (id, revoked_at, expires_at) VALUES ($1, $2, $3)`,
		s.ID, slowNow, time.Unix(s.Exp, 0).UTC()); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(8 * time.Second) // revocation_poll is 1 s
	for with() == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("a logout taken by an instance whose clock is 30 s slow never reaches this instance: the copied cookie still reaches the upstream 8 s later (revocation_poll 1s)")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// A reload provisions the new configuration while the old one has the
// database open: the new store joins that handle at once, so the new
// configuration can serve before its jit_auth app starts. A store whose
// file nobody has open still touches nothing when provisioned.
func TestSQLiteStoreJoinsAnOpenHandleWhenProvisioned(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.db")
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	fresh := &SQLiteStore{Path: filepath.Join(dir, "other.db")}
	if err := fresh.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if fresh.Store != nil {
		t.Fatal("a store nobody has open was opened when provisioned")
	}
	if _, err := os.Stat(fresh.Path); !os.IsNotExist(err) {
		t.Fatalf("provisioning created %s: %v", fresh.Path, err)
	}

	old := &SQLiteStore{Path: path}
	if err := old.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old.open(); err != nil {
		t.Fatal(err)
	}
	defer old.Cleanup()

	next := &SQLiteStore{Path: path}
	if err := next.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer next.Cleanup()
	if next.Store == nil || next.Store != old.Store {
		t.Fatal("the new configuration's store did not join the open handle when provisioned")
	}
	if n, _ := sqliteHandles.References(next.key); n != 2 {
		t.Fatalf("references = %d, want 2 (one per configuration)", n)
	}
}

// Until the app has started (the store opened), the endpoints that need
// the store wait for it: a request that arrives in the moment between
// the http app starting and the jit_auth app starting is answered once
// the app has started, and one that waits longer than startWait gets 503
// with Retry-After rather than reach a store that is not open.
func TestEndpointsWaitForTheStartedApp(t *testing.T) {
	defer func(d time.Duration) { startWait = d }(startWait)
	startWait = 50 * time.Millisecond
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs()}, ready: make(chan struct{})}, PathPrefix: defaultPathPrefix}
	for _, ep := range []string{"callback/c?state=x&code=y", "consent", "mfa", "logout"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://localhost/.jitauth/"+ep, nil)
		h.serveEndpoint(w, r, strings.TrimPrefix(r.URL.Path, defaultPathPrefix))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s never started: %d %v", ep, w.Code, w.Header())
		}
	}

	// A request that arrives before the start and is answered after it.
	startWait = 10 * time.Second
	done := make(chan int)
	go func() {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://localhost/.jitauth/logout", nil)
		h.serveEndpoint(w, r, "logout")
		done <- w.Code
	}()
	select {
	case code := <-done:
		t.Fatalf("logout before start answered %d without waiting for the start", code)
	case <-time.After(100 * time.Millisecond):
	}
	close(h.app.ready)
	select {
	case code := <-done:
		if code != http.StatusOK {
			t.Errorf("logout that waited for the start: %d, want 200", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("logout still waiting after the start")
	}
}

// A store without the users or the revocations role cannot serve, and
// the refusal names what it lacks; the second-factor and admin roles are
// optional (TestStoreWithoutOptionalRoles).
func TestMissingStoreRolesNamed(t *testing.T) {
	if got, want := missingStoreRoles(struct{ provisioner.SecondFactorStore }{}), []string{"UserStore", "RevocationStore"}; !slices.Equal(got, want) {
		t.Errorf("missing roles of a factors-only store = %v, want %v", got, want)
	}
	if got, want := missingStoreRoles(struct{ provisioner.UserStore }{}), []string{"RevocationStore"}; !slices.Equal(got, want) {
		t.Errorf("missing roles of a user-only store = %v, want %v", got, want)
	}
	if got := missingStoreRoles(struct {
		provisioner.UserStore
		provisioner.RevocationStore
	}{}); len(got) != 0 {
		t.Errorf("a store with users and revocations lacks %v", got)
	}
	if got := missingStoreRoles(&SQLiteStore{}); len(got) != 0 {
		t.Errorf("the SQLite store lacks %v", got)
	}
}

// The timing wrappers keep the optional roles of the store module: an
// enrolment through a wrapper that hid EnrolTOTP would fall back to
// checking and then saving, where two at once both save.
func TestTimedRolesKeepTheOptionalOnes(t *testing.T) {
	s, err := sqlitestore.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	timer := storeTimer{processMetrics().storeLatency}
	if _, ok := timedFactorRole(s, timer).(provisioner.TOTPEnroller); !ok {
		t.Error("the timed second-factor role of the SQLite store is not a TOTPEnroller")
	}
	if _, ok := timedFactorRole(struct{ provisioner.SecondFactorStore }{s}, timer).(provisioner.TOTPEnroller); ok {
		t.Error("a store without EnrolTOTP became a TOTPEnroller")
	}
	if timedFactorRole(struct{ provisioner.UserStore }{s}, timer) != nil {
		t.Error("a store without the second-factor role got one")
	}
}

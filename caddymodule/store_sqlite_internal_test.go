package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
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
// the store answer 503 with Retry-After rather than reach a store that
// is not open.
func TestEndpointsWaitForTheStartedApp(t *testing.T) {
	h := &Handler{app: &App{codecs: testCodecs(), ready: new(atomic.Bool)}, PathPrefix: defaultPathPrefix}
	for _, ep := range []string{"callback/c?state=x&code=y", "consent", "mfa", "logout"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "http://localhost/.jitauth/"+ep, nil)
		h.serveEndpoint(w, r, strings.TrimPrefix(r.URL.Path, defaultPathPrefix))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s before start: %d %v", ep, w.Code, w.Header())
		}
	}
	h.app.ready.Store(true)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "http://localhost/.jitauth/logout", nil)
	h.serveEndpoint(w, r, "logout")
	if w.Code != http.StatusOK {
		t.Errorf("logout after start: %d", w.Code)
	}
}

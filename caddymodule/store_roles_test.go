package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// narrowStore is a third party's store that plays only the two roles
// every configuration needs: users and revocations. It keeps them in a
// real SQLite file, but only those two interfaces are visible.
type narrowStore struct {
	Path string `json:"path,omitempty"`

	provisioner.UserStore       `json:"-"`
	provisioner.RevocationStore `json:"-"`
}

func init() { caddy.RegisterModule(narrowStore{}) }

func (narrowStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.stores.test_narrow", New: func() caddy.Module { return new(narrowStore) }}
}

func (n *narrowStore) Provision(caddy.Context) error {
	st, err := sqlitestore.Open(n.Path)
	if err != nil {
		return err
	}
	n.UserStore, n.RevocationStore = st, st
	return nil
}

func (n *narrowStore) Cleanup() error { return n.UserStore.Close() }

func (n *narrowStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.Args(&n.Path) {
		return d.ArgErr()
	}
	return nil
}

// A store with only the users and revocations roles serves a site
// without a second factor as any store does (JIT provisioning, the
// upstream's identity, logout), refuses a configuration that requires
// one with a message naming the missing role, and the admin API answers
// 501 for what needs a missing role.
func TestStoreWithoutOptionalRoles(t *testing.T) {
	admin := freePort(t)
	dir := t.TempDir()
	s := startSiteOpts(t, siteOptions{store: "store test_narrow " + dir + "/narrow.db", adminPort: admin})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/secret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login with the narrow store: %d", resp.StatusCode)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-User"); got != "alice@example.com" {
		t.Errorf("Remote-User = %q", got)
	}
	st, err := sqlitestore.Open(dir + "/narrow.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if users := allUsers(t, st); len(users) != 1 {
		t.Fatalf("users in the narrow store: %+v", users)
	}
	if resp, _ := b.logout(s.base, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	list, err := st.RevokedSessions(context.Background(), time.Now().Add(-time.Hour))
	logouts := 0
	for _, r := range list {
		if !strings.HasPrefix(r.ID, "spent:") { // the login's state, used once
			logouts++
		}
	}
	if err != nil || logouts != 1 {
		t.Errorf("revocations in the narrow store: %v, %v", list, err)
	}

	var view struct {
		TOTP *bool `json:"totp_enrolled"`
	}
	if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users/alice@example.com", "", &view); code != http.StatusOK || view.TOTP == nil || *view.TOTP {
		t.Errorf("admin GET: %d, totp %v", code, view.TOTP)
	}
	if code := adminCall(t, admin, http.MethodDelete, "/jit_auth/users/alice@example.com/totp", "", nil); code != http.StatusNotImplemented {
		t.Errorf("admin TOTP reset: %d, want 501", code)
	}

	err = validate(t, fmt.Sprintf(`{
	admin off
	storage file_system %[1]s/storage
	jit_auth {
		store test_narrow %[1]s/other.db
		connection corp {
			oidc https://idp.example a b
		}
	}
}
http://localhost:1 {
	jit_auth {
		mfa totp
	}
	respond ok
}
`, dir))
	if err == nil || !strings.Contains(err.Error(), "mfa needs a store that keeps second factors") || !strings.Contains(err.Error(), "SecondFactorStore") {
		t.Errorf("mfa on a store without second factors: %v", err)
	}
}

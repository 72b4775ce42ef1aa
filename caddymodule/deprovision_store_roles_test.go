package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// readmeStore is a third party's store written from the README's "Your
// own store": it implements provisioner.Store (the four roles) and the
// two optional interfaces the README recommends (SingleUseStore,
// TOTPEnroller), and nothing the README does not mention. It keeps its
// data in a real SQLite file.
type readmeStore struct {
	Path string `json:"path,omitempty"`

	provisioner.Store          `json:"-"`
	provisioner.SingleUseStore `json:"-"`
	provisioner.TOTPEnroller   `json:"-"`
}

func init() { caddy.RegisterModule(readmeStore{}) }

func (readmeStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.stores.test_without_login_recorder", New: func() caddy.Module { return new(readmeStore) }}
}

func (s *readmeStore) Provision(caddy.Context) error {
	st, err := sqlitestore.Open(s.Path)
	if err != nil {
		return err
	}
	s.Store, s.SingleUseStore, s.TOTPEnroller = st, st, st
	return nil
}

func (s *readmeStore) Cleanup() error { return s.Store.Close() }

func (s *readmeStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.Args(&s.Path) {
		return d.ArgErr()
	}
	return nil
}

// A store built as the README's "Your own store" describes, without
// provisioner.LoginRecorder, cannot run deprovisioning: a user who signs
// in only through a JIT-off connection (under their verified email) is
// active, but without the recorder those logins are not counted, and the
// rule would disable or delete them while they use the site. The
// configuration is refused at load, naming the interface; a fix that
// recorded the logins another way would pass the test's second half.
func TestDeprovisionWithoutALoginRecorderIsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "third-party.db")
	// A fix that refuses this combination at load, naming what the store
	// lacks, is as good as one that records the logins.
	err := validate(t, fmt.Sprintf(`{
	admin off
	storage file_system %[1]s/storage
	jit_auth {
		store test_without_login_recorder %[1]s/validate.db
		connection corp {
			oidc https://idp.example a b
			jit
			deprovision {
				after 90d
			}
		}
		connection partner {
			oidc https://idp.example a b
		}
	}
}
http://localhost:1 {
	jit_auth
	respond ok
}
`, dir))
	if err != nil {
		if !strings.Contains(err.Error(), "LoginRecorder") {
			t.Fatalf("refused, but without naming what the store lacks (provisioner.LoginRecorder): %v", err)
		}
		return
	}
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin,
		store:     "store test_without_login_recorder " + path,
		corpExtra: "deprovision {\n\t\t\t\tafter 3s\n\t\t\t\tevery 1s\n\t\t\t}"})
	s.queue(oidcUserNamed("ann"))
	if resp, _ := s.login(newBrowser(t), "corp", "/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("ann's first login (corp, JIT on): %d", resp.StatusCode)
	}
	st, err := sqlitestore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// Ann now signs in through partner (JIT off) every 500 ms for 7 s,
	// more than twice `after`: she is never 3 s without a login.
	end := time.Now().Add(7 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		s.queue(oidcUserNamed("ann"))
		resp, _ := s.login(newBrowser(t), "partner", "/x")
		if resp.StatusCode != http.StatusOK {
			u, _ := st.UserByUsername(context.Background(), "ann@example.com")
			var status provisioner.Status = "deleted"
			reason := ""
			if u != nil {
				status, reason = u.Status, u.StatusReason
			}
			t.Fatalf("ann's JIT-off login #%d, 0.5 s after her previous one, refused: %d; her user is %s (%q): a store written from the README lets the deprovision rule disable an active user",
				i+1, resp.StatusCode, status, reason)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

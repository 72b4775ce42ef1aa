package caddymodule_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// sweepHookStore is the real SQLite store, with a hook the test sets that
// runs after a deprovisioning sweep has read a page of inactive users
// (a search with SeenBefore) and before the sweep acts on them: the
// moment a user may sign in, as one would during a real sweep of a
// large directory (each page's users are disabled or deleted one after
// another, with a sign-out each).
type sweepHookStore struct {
	Path string `json:"path,omitempty"`
	*sqlitestore.Store
}

var afterSweepRead atomic.Pointer[func([]provisioner.User)]

func init() { caddy.RegisterModule(sweepHookStore{}) }

func (sweepHookStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.stores.test_sweephook", New: func() caddy.Module { return new(sweepHookStore) }}
}

func (f *sweepHookStore) Provision(caddy.Context) (err error) {
	f.Store, err = sqlitestore.Open(f.Path)
	return err
}

func (f *sweepHookStore) Cleanup() error { return f.Store.Close() }

func (f *sweepHookStore) SearchUsers(ctx context.Context, q provisioner.UserQuery) ([]provisioner.User, error) {
	users, err := f.Store.SearchUsers(ctx, q)
	if err == nil && !q.SeenBefore.IsZero() && len(users) > 0 {
		if h := afterSweepRead.Swap(nil); h != nil {
			(*h)(users)
		}
	}
	return users, err
}

// A sweep acts on a page of users that were inactive when it read the
// page; a user who signs in after that and before their turn is not
// inactive any more and must be spared: not deleted (with their
// identities, roles, factor and history), and the session they were just
// given goes on. The store deletes (or disables) only while the user is
// still inactive, in one transaction.
func TestDeprovisionSparesAUserWhoJustSignedIn(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin,
		jsonReplace: []string{`"backend":"sqlite"`, `"backend":"test_sweephook"`},
		corpExtra:   "deprovision {\n\t\t\t\tafter 3s\n\t\t\t\taction delete\n\t\t\t\tevery 1s\n\t\t\t}"})
	defer afterSweepRead.Store(nil)
	st := openStore(t, s.dir)

	s.queue(oidcUserNamed("ann"))
	if resp, _ := s.login(newBrowser(t), "corp", "/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("ann's first login: %d", resp.StatusCode)
	}
	// ann signs in again just as the sweep that found her inactive has
	// read its page.
	back := newBrowser(t)
	signedIn := make(chan int, 1)
	hook := func(page []provisioner.User) {
		for _, u := range page {
			if u.Username == "ann@example.com" {
				s.queue(oidcUserNamed("ann"))
				resp, _ := s.login(back, "corp", "/x")
				signedIn <- resp.StatusCode
				return
			}
		}
	}
	time.Sleep(2 * time.Second) // ann is not inactive yet: no sweep may find her before the hook is set
	afterSweepRead.Store(&hook)
	select {
	case code := <-signedIn:
		if code != http.StatusOK {
			t.Fatalf("ann's login during the sweep: %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no sweep found ann inactive within 15 s")
	}
	time.Sleep(500 * time.Millisecond) // the sweep acts on its page
	u, err := st.UserByUsername(context.Background(), "ann@example.com")
	if err != nil {
		t.Fatalf("ann, who signed in a moment ago, was deleted for inactivity: %v", err)
	}
	if time.Since(u.LastLoginAt) > 3*time.Second {
		t.Errorf("ann's last login %v", u.LastLoginAt)
	}
	if resp, _ := back.get(s.base + "/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("the session ann was just given: %d, want 200", resp.StatusCode)
	}
}

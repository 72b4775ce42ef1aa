package caddymodule_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// r5LookupHookStore is the real SQLite store with a hook the test sets,
// run once right after a lookup by username has read the user: the
// moment between an admin request finding its user and changing it, when
// another administrator's request may change the same user.
type r5LookupHookStore struct {
	Path string `json:"path,omitempty"`
	*sqlitestore.Store
}

var r5AfterLookup atomic.Pointer[func()]

func init() { caddy.RegisterModule(r5LookupHookStore{}) }

func (r5LookupHookStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.stores.test_r5lookuphook", New: func() caddy.Module { return new(r5LookupHookStore) }}
}

func (f *r5LookupHookStore) Provision(caddy.Context) (err error) {
	f.Store, err = sqlitestore.Open(f.Path)
	return err
}

func (f *r5LookupHookStore) Cleanup() error { return f.Store.Close() }

func (f *r5LookupHookStore) UserByUsername(ctx context.Context, name string) (*provisioner.User, error) {
	u, err := f.Store.UserByUsername(ctx, name)
	if err == nil {
		if h := r5AfterLookup.Swap(nil); h != nil {
			(*h)()
		}
	}
	return u, err
}

// A grant of a role that a concurrent revoke removes just before the
// grant's store update really grants it again, so the audit log says so:
// the grants are compared as the update found them, not as the request
// read the user before it (alice holds ops, a revoke and a grant of ops
// race; the wrapped store runs the revoke inside the grant's read).
func TestRoleGrantRacingARevokeIsAudited(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, auditLog: true,
		jsonReplace: []string{`"backend":"sqlite"`, `"backend":"test_r5lookuphook"`}})
	defer r5AfterLookup.Store(nil)
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice's login: %d", resp.StatusCode)
	}
	const user = "/jit_auth/users/alice@example.com"
	if code, body := adminRaw(t, admin, http.MethodPatch, user, `{"grant_roles":["ops"]}`); code != http.StatusOK {
		t.Fatalf("grant ops: %d %s", code, body)
	}

	revoked := make(chan int, 1)
	hook := func() {
		code, _ := adminRaw(t, admin, http.MethodPatch, user, `{"revoke_roles":["ops"]}`)
		revoked <- code
	}
	r5AfterLookup.Store(&hook)
	code, body := adminRaw(t, admin, http.MethodPatch, user, `{"grant_roles":["ops"]}`)
	if code != http.StatusOK {
		t.Fatalf("the racing grant: %d %s", code, body)
	}
	select {
	case c := <-revoked:
		if c != http.StatusOK {
			t.Fatalf("the racing revoke: %d", c)
		}
	default:
		t.Fatal("the hook did not run: the grant's lookup did not go through UserByUsername")
	}
	var view struct {
		Roles []string `json:"roles"`
	}
	if code := adminCall(t, admin, http.MethodGet, user, "", &view); code != http.StatusOK || !slices.Contains(view.Roles, "ops") {
		t.Fatalf("GET alice after the race: %d %v; want ops held (the grant came last)", code, view.Roles)
	}

	// The audit trail's last word on ops.
	last := ""
	for _, line := range strings.Split(mustReadFile(t, s.logFile()), "\n") {
		if !strings.Contains(line, `"ops"`) {
			continue
		}
		switch {
		case strings.Contains(line, `"msg":"roles granted by an administrator"`):
			last = "granted"
		case strings.Contains(line, `"msg":"local roles revoked by an administrator"`):
			last = "revoked"
		}
	}
	for _, line := range strings.Split(mustReadFile(t, s.logFile()), "\n") {
		if strings.Contains(line, "by an administrator") {
			t.Log(line)
		}
	}
	if last != "granted" {
		t.Errorf("alice holds ops after a revoke and a grant that raced it, but the audit log's last event for ops is %q: the grant that gave it back was not logged", last)
	}
}

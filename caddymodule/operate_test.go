package caddymodule_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/internal/tcpproxy"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// recordedEvents collects the Caddy events the test_record handler sees.
var recordedEvents struct {
	sync.Mutex
	list []caddy.Event
}

// recordEvents is a Caddy events handler, as an operator's `events`
// block would subscribe one, that remembers what it is given.
type recordEvents struct{}

func init() { caddy.RegisterModule(recordEvents{}) }

func (recordEvents) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "events.handlers.test_record", New: func() caddy.Module { return new(recordEvents) }}
}

func (recordEvents) Handle(_ context.Context, e caddy.Event) error {
	recordedEvents.Lock()
	recordedEvents.list = append(recordedEvents.list, e)
	recordedEvents.Unlock()
	return nil
}

// takeEvents returns the events recorded since the last call, as
// "name username [reason]".
func takeEvents() []string {
	recordedEvents.Lock()
	defer recordedEvents.Unlock()
	var out []string
	for _, e := range recordedEvents.list {
		s := e.Name() + " " + fmt.Sprint(e.Data["username"])
		if r, ok := e.Data["reason"]; ok {
			s += " " + fmt.Sprint(r)
		}
		out = append(out, s)
	}
	recordedEvents.list = nil
	return out
}

// subscribeAll is the events app's JSON, subscribing test_record to
// every event jit_auth emits.
const subscribeAll = `"apps":{"events":{"subscriptions":[{"events":["user_created","user_linked","user_updated","user_disabled","user_enabled","user_deleted","login_succeeded","login_failed"],"handlers":[{"handler":"test_record"}]}]},`

// An operator disables, enables and deletes a user through the admin
// API: each change reaches the user's live session at once, is an audit
// event and a Caddy event, and counts in the jit_auth_* metrics on
// Caddy's /metrics, which name no user.
func TestOperateUsersThroughTheAdminAPI(t *testing.T) {
	admin := freePort(t)
	takeEvents()
	s := startSiteOpts(t, siteOptions{adminPort: admin, auditLog: true, jsonReplace: []string{`"apps":{`, subscribeAll}})
	st := openStore(t, s.dir)
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/secret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if got, want := takeEvents(), []string{"user_created alice@example.com", "login_succeeded alice@example.com"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Caddy events of a first login: %q, want %q", got, want)
	}
	reachesUpstream := func(b *browser) bool {
		resp, _ := b.get(s.base + "/secret")
		return resp.StatusCode == http.StatusOK
	}
	user := "/jit_auth/users/alice@example.com"

	var view struct {
		Status string `json:"status"`
	}
	if code := adminCall(t, admin, http.MethodPost, user+"/disable", `{"reason": "left the company"}`, &view); code != http.StatusOK || view.Status != "disabled" {
		t.Fatalf("disable: %d, status %q", code, view.Status)
	}
	if reachesUpstream(b) {
		t.Error("the disabled user's live session still reaches the upstream")
	}
	if u := allUsers(t, st)[0]; u.Status != provisioner.StatusDisabled {
		t.Errorf("stored status %q", u.Status)
	}
	if code := adminCall(t, admin, http.MethodPost, user+"/disable", "", nil); code != http.StatusConflict {
		t.Errorf("disabling again: %d, want 409", code)
	}
	for _, bad := range []string{`{"reason": 1}`, `{"why": "x"}`, `{"reason": "a"}{"reason": "b"}`, `[]`} {
		if code := adminCall(t, admin, http.MethodPost, user+"/enable", bad, nil); code != http.StatusBadRequest {
			t.Errorf("enable with %s: %d, want 400", bad, code)
		}
	}
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/secret"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("login of a disabled user: %d, want 403", resp.StatusCode)
	}
	if code := adminCall(t, admin, http.MethodPost, user+"/enable", "", &view); code != http.StatusOK || view.Status != "active" {
		t.Fatalf("enable: %d, status %q", code, view.Status)
	}
	if !reachesUpstream(b) {
		t.Error("after enabling, the user's session does not reach the upstream")
	}
	if got, want := takeEvents(), []string{"user_disabled alice@example.com left the company", "login_failed <nil>", "user_enabled alice@example.com"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Caddy events: %q, want %q", got, want)
	}

	if code := adminCall(t, admin, http.MethodDelete, user, "", nil); code != http.StatusOK {
		t.Fatalf("delete: %d", code)
	}
	if reachesUpstream(b) {
		t.Error("the deleted user's live session still reaches the upstream")
	}
	if n := len(allUsers(t, st)); n != 0 {
		t.Errorf("%d users after the delete", n)
	}
	if code := adminCall(t, admin, http.MethodDelete, user, "", nil); code != http.StatusNotFound {
		t.Errorf("deleting again: %d, want 404", code)
	}
	if got := takeEvents(); len(got) != 1 || got[0] != "user_deleted alice@example.com" {
		t.Errorf("Caddy events of the delete: %q", got)
	}

	logs := mustReadFile(t, s.logFile())
	for _, msg := range []string{"user disabled by an administrator", "user enabled by an administrator", "user deleted by an administrator"} {
		if !strings.Contains(logs, `"msg":"`+msg+`"`) {
			t.Errorf("no %q audit event", msg)
		}
	}
	if !strings.Contains(logs, `"reason":"left the company"`) {
		t.Error("the audit event does not carry the reason")
	}

	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", admin))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(body)
	for _, want := range []string{
		`jit_auth_logins_total{connection="corp",outcome="succeeded"} 1`,
		`jit_auth_logins_total{connection="corp",outcome="refused"} 1`,
		`jit_auth_denials_total{reason="user_disabled"} 1`,
		`jit_auth_provisionings_total{action="created",connection="corp"} 1`,
		`jit_auth_admin_changes_total{change="disabled"} 1`,
		`jit_auth_admin_changes_total{change="deleted"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "alice") {
		t.Error("/metrics names a user")
	}
}

// /.jitauth/ready is 503 while the store does not answer and 200 again
// when it does, without a restart; /.jitauth/health stays 200 (liveness)
// throughout; the answer never shows the store's error (which names the
// database host).
func TestReadinessFollowsTheStore(t *testing.T) {
	_, connString := pgSchema(t)
	u, _ := url.Parse(connString)
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	s := startSiteOpts(t, siteOptions{store: fmt.Sprintf("store postgres %q", u.String())})
	ready := func() (int, string) {
		t.Helper()
		resp, body := newBrowser(t).get(s.base + "/.jitauth/ready")
		return resp.StatusCode, body
	}
	waitFor := func(want int) string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := ready()
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/.jitauth/ready: %d %s, want %d", code, body, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if body := waitFor(http.StatusOK); !strings.Contains(body, `"status":"ready"`) {
		t.Errorf("ready: %s", body)
	}
	proxy.Down()
	body := waitFor(http.StatusServiceUnavailable)
	var answer struct{ Status, Reason string }
	if err := json.Unmarshal([]byte(body), &answer); err != nil || answer.Status != "unavailable" || answer.Reason == "" {
		t.Errorf("not ready: %s (%v)", body, err)
	}
	if strings.Contains(body, proxy.Addr()) || strings.Contains(body, "127.0.0.1") {
		t.Errorf("the readiness answer shows the database's address: %s", body)
	}
	if resp, _ := newBrowser(t).get(s.base + "/.jitauth/health"); resp.StatusCode != http.StatusOK {
		t.Errorf("health during the outage: %d, want 200", resp.StatusCode)
	}
	proxy.Up()
	waitFor(http.StatusOK)
}

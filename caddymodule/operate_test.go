package caddymodule_test

import (
	"context"
	"encoding/csv"
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
const subscribeAll = `"apps":{"events":{"subscriptions":[{"events":["user_created","user_linked","user_updated","user_disabled","user_enabled","user_deleted","user_signed_out","login_succeeded","login_failed"],"handlers":[{"handler":"test_record"}]}]},`

// An operator disables, enables, signs out everywhere and deletes a user
// through the admin API: each change reaches the user's live sessions at
// once (a disable for good: enabling again brings no old session back),
// is an audit event and a Caddy event, and counts in the jit_auth_*
// metrics on Caddy's /metrics, which name no user.
func TestOperateUsersThroughTheAdminAPI(t *testing.T) {
	admin := freePort(t)
	takeEvents()
	s := startSiteOpts(t, siteOptions{adminPort: admin, auditLog: true, jsonReplace: []string{`"apps":{`, subscribeAll}})
	st := openStore(t, s.dir)
	// The counters are the process's, shared with the other tests' sites:
	// compare against what they said before.
	before := scrapeMetrics(t, admin)
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
		Status          string                   `json:"status"`
		StatusReason    string                   `json:"status_reason"`
		StatusChangedAt time.Time                `json:"status_changed_at"`
		LoginHistory    []provisioner.LoginEvent `json:"login_history"`
	}
	if code := adminCall(t, admin, http.MethodPost, user+"/disable", `{"reason": "left the company"}`, &view); code != http.StatusOK || view.Status != "disabled" {
		t.Fatalf("disable: %d, status %q", code, view.Status)
	}
	if view.StatusReason != "left the company" || time.Since(view.StatusChangedAt) > time.Minute {
		t.Errorf("disable answered status_reason %q, status_changed_at %v; want the reason, now", view.StatusReason, view.StatusChangedAt)
	}
	if reachesUpstream(b) {
		t.Error("the disabled user's live session still reaches the upstream")
	}
	if u := allUsers(t, st)[0]; u.Status != provisioner.StatusDisabled || u.StatusReason != "left the company" {
		t.Errorf("stored status %q, reason %q", u.Status, u.StatusReason)
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
	// Both login attempts are in the user's history, newest first.
	if code := adminCall(t, admin, http.MethodGet, user, "", &view); code != http.StatusOK {
		t.Fatalf("show: %d", code)
	}
	var outcomes []string
	for _, e := range view.LoginHistory {
		outcomes = append(outcomes, e.Connection+" "+e.Outcome)
	}
	if want := []string{"corp refused: user disabled", "corp succeeded"}; strings.Join(outcomes, "|") != strings.Join(want, "|") {
		t.Errorf("login history %q, want %q", outcomes, want)
	}
	if code := adminCall(t, admin, http.MethodPost, user+"/enable", "", &view); code != http.StatusOK || view.Status != "active" {
		t.Fatalf("enable: %d, status %q", code, view.Status)
	}
	if reachesUpstream(b) {
		t.Error("enabling the user brought back the session from before the disable")
	}
	// A new login works (from the second after the disable: sessions
	// carry whole seconds, and one of the disable's second is refused,
	// so none from before it slips through), until an administrator
	// signs the user out everywhere; then a login works again.
	time.Sleep(1100 * time.Millisecond)
	b = newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/secret"); resp.StatusCode != http.StatusOK || !reachesUpstream(b) {
		t.Fatalf("login after enabling: %d", resp.StatusCode)
	}
	time.Sleep(1100 * time.Millisecond) // a session of a later second than the disable's cutoff
	b2 := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b2, "corp", "/secret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("second browser's login: %d", resp.StatusCode)
	}
	if code := adminCall(t, admin, http.MethodPost, user+"/signout", "", nil); code != http.StatusOK {
		t.Fatalf("sign out everywhere: %d", code)
	}
	if reachesUpstream(b) || reachesUpstream(b2) {
		t.Error("a session survived signing out everywhere")
	}
	time.Sleep(1100 * time.Millisecond)
	b = newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/secret"); resp.StatusCode != http.StatusOK || !reachesUpstream(b) {
		t.Fatalf("login after signing out everywhere: %d", resp.StatusCode)
	}
	if got, want := takeEvents(), []string{"user_disabled alice@example.com left the company", "login_failed alice@example.com", "user_enabled alice@example.com",
		"login_succeeded alice@example.com", "login_succeeded alice@example.com", "user_signed_out alice@example.com", "login_succeeded alice@example.com"}; strings.Join(got, "|") != strings.Join(want, "|") {
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
	for _, msg := range []string{"user disabled by an administrator", "user enabled by an administrator", "user deleted by an administrator", "user signed out everywhere by an administrator"} {
		if !strings.Contains(logs, `"msg":"`+msg+`"`) {
			t.Errorf("no %q audit event", msg)
		}
	}
	if !strings.Contains(logs, `"reason":"left the company"`) {
		t.Error("the audit event does not carry the reason")
	}

	after := scrapeMetrics(t, admin)
	for series, want := range map[string]float64{
		`jit_auth_logins_total{connection="corp",outcome="succeeded"}`:     4,
		`jit_auth_logins_total{connection="corp",outcome="refused"}`:       1,
		`jit_auth_denials_total{reason="user_disabled"}`:                   1,
		`jit_auth_provisionings_total{action="created",connection="corp"}`: 1,
		`jit_auth_admin_changes_total{change="disabled"}`:                  1,
		`jit_auth_admin_changes_total{change="enabled"}`:                   1,
		`jit_auth_admin_changes_total{change="deleted"}`:                   1,
		// Every store call is timed, by operation.
		`jit_auth_store_operation_seconds_count{operation="create_user"}`: 1,
		`jit_auth_store_operation_seconds_count{operation="set_status"}`:  2,
		`jit_auth_store_operation_seconds_count{operation="delete_user"}`: 1,
		// Each login's state, the refused login's included; the
		// disable, the sign-out and the delete each end the sessions,
		// under the user's ID, under the user's name (an email, so
		// also a JIT-off name: nameCutoffKey) and under the subject of
		// the user's one identity (a session issued through it while
		// its connection had JIT off: identityCutoffKeys).
		`jit_auth_store_operation_seconds_count{operation="use_once"}`:       5,
		`jit_auth_store_operation_seconds_count{operation="revoke_session"}`: 9,
	} {
		if got := after[series] - before[series]; got != want {
			t.Errorf("%s went up by %v, want %v", series, got, want)
		}
	}
	metrics := scrapeRaw(t, admin)
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

// scrapeRaw fetches Caddy's /metrics from the admin endpoint.
func scrapeRaw(t *testing.T, admin int) string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", admin))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	return string(body)
}

// scrapeMetrics returns the jit_auth_* series of /metrics by their name
// and labels, as Prometheus's text format writes them.
func scrapeMetrics(t *testing.T, admin int) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(scrapeRaw(t, admin), "\n") {
		if !strings.HasPrefix(line, "jit_auth_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// The directory lists, searches, pages and exports through the admin
// API: pages follow the cursor to every user once, in order; filters
// combine; every bad parameter is a 400 naming it; the JSON Lines and
// CSV exports hold every matching user.
func TestListAndExportTheDirectory(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	st := openStore(t, s.dir)
	ctx := context.Background()
	var want []string
	for i := range 12 {
		name := fmt.Sprintf("user%02d", i)
		conn := "corp"
		if i%3 == 0 {
			conn = "partner"
		}
		u, err := st.CreateUser(ctx, &provisioner.User{Username: name, Email: name + "@example.com", Name: "User " + name, LastLoginAt: time.Now().Add(-time.Duration(i) * 24 * time.Hour)},
			provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: conn, Issuer: "https://idp", Subject: name}, CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if i == 4 {
			if err := st.SetStatus(ctx, u.ID, provisioner.StatusDisabled, ""); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, name)
	}
	type page struct {
		Users []struct {
			Username string   `json:"username"`
			Status   string   `json:"status"`
			Roles    []string `json:"roles"`
		} `json:"users"`
		NextCursor string `json:"next_cursor"`
	}
	list := func(query string) []string {
		t.Helper()
		var p page
		if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users?"+query, "", &p); code != http.StatusOK {
			t.Fatalf("list %s: %d", query, code)
		}
		var names []string
		for _, u := range p.Users {
			names = append(names, u.Username)
		}
		return names
	}

	var got []string
	cursor := ""
	for pages := 0; pages < 10; pages++ {
		var p page
		if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users?limit=5&cursor="+cursor, "", &p); code != http.StatusOK {
			t.Fatalf("page %d: %d", pages, code)
		}
		for _, u := range p.Users {
			got = append(got, u.Username)
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("paging by 5: %v, want %v", got, want)
	}
	for query, want := range map[string]string{
		"q=USER1":                "user10,user11",
		"status=disabled":        "user04",
		"connection=partner":     "user00,user03,user06,user09",
		"connection=partner&q=9": "user09",
		"seen_after=60h":         "user00,user01,user02",
		"seen_before=" + url.QueryEscape(time.Now().Add(-250*time.Hour).Format(time.RFC3339)): "user11",
		"role=nobody": "",
	} {
		if got := strings.Join(list(query), ","); got != want {
			t.Errorf("list %s: %q, want %q", query, got, want)
		}
	}
	for _, bad := range []string{"colour=blue", "limit=0", "limit=5000", "cursor=%21%21", "status=gone", "seen_before=yesterday", "format=xml", "q=a&q=b"} {
		code, body := adminRaw(t, admin, http.MethodGet, "/jit_auth/users?"+bad, "")
		if code != http.StatusBadRequest {
			t.Errorf("list %s: %d %s, want 400", bad, code, body)
		}
	}
	if code, _ := adminRaw(t, admin, http.MethodPost, "/jit_auth/users", ""); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /jit_auth/users: %d, want 405", code)
	}

	code, body := adminRaw(t, admin, http.MethodGet, "/jit_auth/users?format=jsonl", "")
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if code != http.StatusOK || len(lines) != len(want) {
		t.Fatalf("JSON Lines export: %d, %d lines, want %d", code, len(lines), len(want))
	}
	for i, l := range lines {
		var u struct{ Username string }
		if err := json.Unmarshal([]byte(l), &u); err != nil || u.Username != want[i] {
			t.Errorf("JSON Lines line %d: %s (%v)", i, l, err)
		}
	}
	code, body = adminRaw(t, admin, http.MethodGet, "/jit_auth/users?format=csv&status=active", "")
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if code != http.StatusOK || err != nil || len(records) != len(want) || records[0][1] != "username" || records[1][1] != "user00" {
		t.Errorf("CSV export of the active users: %d, %v, %d records (header and %d users wanted)\n%s", code, err, len(records), len(want)-1, body)
	}
}

// An administrator's change to a user reaches the user's live sessions
// within user_status_refresh, with no new login and no store read on the
// request path: new roles and a new name show in the identity headers,
// and a revoked role that the allow rules require ends the admission.
func TestAdminChangesReachLiveSessions(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, globalExtra: "\t\tuser_status_refresh 1s", handlerBlock: "\t\tallow role auditor"})
	user := "/jit_auth/users/alice@example.com"
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/secret"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("first login without the role: %d, want 403", resp.StatusCode)
	}
	if code := adminCall(t, admin, http.MethodPatch, user, `{"grant_roles": ["auditor"]}`, nil); code != http.StatusOK {
		t.Fatalf("grant: %d", code)
	}
	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/secret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login with the role: %d", resp.StatusCode)
	}
	if code := adminCall(t, admin, http.MethodPatch, user, `{"set": {"name": "Alice L."}, "grant_roles": ["ops"]}`, nil); code != http.StatusOK {
		t.Fatalf("change: %d", code)
	}
	eventually(t, "the new name and role in the headers", 6*time.Second, func() bool {
		resp, _ := b.get(s.base + "/secret")
		h := s.upstream.lastHeaders(t)
		return resp.StatusCode == http.StatusOK && h.Get("Remote-Name") == "Alice L." && strings.Contains(h.Get("X-Auth-Roles"), "ops")
	})
	if code := adminCall(t, admin, http.MethodPatch, user, `{"revoke_roles": ["auditor"]}`, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d", code)
	}
	eventually(t, "the revoked role ends the admission", 6*time.Second, func() bool {
		resp, _ := b.get(s.base + "/secret")
		return resp.StatusCode == http.StatusForbidden
	})

	// The users-by-status gauge follows the store, counted in the
	// background (at most every 10 s).
	if code := adminCall(t, admin, http.MethodPost, user+"/disable", "", nil); code != http.StatusOK {
		t.Fatalf("disable: %d", code)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := scrapeMetrics(t, admin)
		if m[`jit_auth_users{status="disabled"}`] == 1 && m[`jit_auth_users{status="active"}`] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jit_auth_users: active %v, disabled %v; want 0 and 1", m[`jit_auth_users{status="active"}`], m[`jit_auth_users{status="disabled"}`])
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// A directory of 10,000 users, through the running Caddy's admin API:
// pages of 1,000 follow the cursor to every user once, in order; a
// search and the filters find the few that match; both exports hold one
// record per user.
func TestDirectoryOfTenThousandUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a store with 10,000 users")
	}
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	st := openStore(t, s.dir)
	ctx := context.Background()
	const n = 10000
	for i := range n {
		name := fmt.Sprintf("user%05d", i)
		conn := "corp"
		if i%100 == 7 {
			conn = "partner"
		}
		if _, err := st.CreateUser(ctx, &provisioner.User{Username: name, Email: name + "@example.com"},
			provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: conn, Issuer: "https://idp", Subject: name}}); err != nil {
			t.Fatal(err)
		}
	}
	var page struct {
		Users []struct {
			Username string `json:"username"`
		} `json:"users"`
		NextCursor string `json:"next_cursor"`
	}
	seen, cursor, pages := 0, "", 0
	for {
		page.NextCursor = ""
		if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users?limit=1000&cursor="+cursor, "", &page); code != http.StatusOK {
			t.Fatalf("page %d: %d", pages, code)
		}
		pages++
		for _, u := range page.Users {
			if want := fmt.Sprintf("user%05d", seen); u.Username != want {
				t.Fatalf("user %d of the listing is %s, want %s", seen, u.Username, want)
			}
			seen++
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if seen != n || pages != n/1000 {
		t.Errorf("the listing gave %d users in %d pages, want %d in %d", seen, pages, n, n/1000)
	}
	page.Users = nil
	if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users?q=USER0424", "", &page); code != http.StatusOK || len(page.Users) != 10 {
		t.Errorf("search USER0424: %d, %d users, want 10", code, len(page.Users))
	}
	page.Users = nil
	if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users?connection=partner&limit=1000", "", &page); code != http.StatusOK || len(page.Users) != n/100 {
		t.Errorf("connection=partner: %d, %d users, want %d", code, len(page.Users), n/100)
	}
	for format, want := range map[string]int{"jsonl": n, "csv": n + 1} {
		code, body := adminRaw(t, admin, http.MethodGet, "/jit_auth/users?format="+format, "")
		if lines := strings.Count(body, "\n"); code != http.StatusOK || lines != want || strings.Contains(body, "export incomplete") {
			t.Errorf("%s export: %d, %d lines, want %d", format, code, lines, want)
		}
	}
}

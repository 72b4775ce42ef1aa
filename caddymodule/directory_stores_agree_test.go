package caddymodule_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// directorySiteOn starts the usual site with the admin API on, on SQLite or
// on a PostgreSQL schema of its own, with alice signed in once (so her
// last login is now).
func directorySiteOn(t *testing.T, store string, o siteOptions) (*site, int) {
	t.Helper()
	o.adminPort = freePort(t)
	if store == "postgres" {
		_, conn := pgSchema(t)
		o.store = fmt.Sprintf("store postgres %q", conn)
	}
	s := startSiteOpts(t, o)
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return s, o.adminPort
}

// seen_before / seen_after bounds outside 1678-2262 (`--seen-before
// 9999-12-31T23:59:59Z`, "everyone") give the right list on SQLite as on
// PostgreSQL: SQLite's nanosecond times used to wrap, and the operator
// got a silently wrong list to act on.
func TestSeenFiltersBeyondNanosecondTimesAgreeOnEveryStore(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			_, admin := directorySiteOn(t, store, siteOptions{})
			for _, c := range []struct {
				query     string
				wantAlice bool
			}{
				{"seen_before=9999-12-31T23:59:59Z", true},
				{"seen_before=2300-01-01T00:00:00Z", true},
				{"seen_after=1600-01-01T00:00:00Z", true},
				{"seen_before=1600-01-01T00:00:00Z", false},
			} {
				code, body := adminRaw(t, admin, http.MethodGet, "/jit_auth/users?"+c.query, "")
				if code == http.StatusBadRequest {
					continue // refused, saying so: acceptable
				}
				if code != http.StatusOK {
					t.Errorf("GET ?%s: %d %s", c.query, code, body)
					continue
				}
				var page struct {
					Users []struct{ Username string } `json:"users"`
				}
				if err := json.Unmarshal([]byte(body), &page); err != nil {
					t.Fatalf("GET ?%s: %v %s", c.query, err, body)
				}
				got := len(page.Users) == 1 && page.Users[0].Username == "alice@example.com"
				if got != c.wantAlice {
					t.Errorf("GET ?%s on %s: users %+v; want alice listed: %v (she logged in just now)", c.query, store, page.Users, c.wantAlice)
				}
			}
		})
	}
}

// An administrator's email longer than an address can be (a paste gone
// wrong) is a 400 naming the email on every store: PostgreSQL's index
// refused it with a 503 that read as an outage, where SQLite kept it.
func TestAdminOverlongEmailIsA400OnEveryStore(t *testing.T) {
	b := make([]byte, 2000)
	_, _ = rand.Read(b)
	long := hex.EncodeToString(b) + "@example.com" // random: PostgreSQL cannot compress it below the limit
	codes := map[string]int{}
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			_, admin := directorySiteOn(t, store, siteOptions{})
			code, body := adminRaw(t, admin, http.MethodPatch, "/jit_auth/users/alice@example.com", `{"set":{"email":"`+long+`"}}`)
			codes[store] = code
			if code >= 500 {
				t.Errorf("PATCH a %d-byte email on %s: %d %.300s; want a 4xx naming the email (or the value kept), not a store outage", len(long), store, code, body)
			}
			if code == http.StatusBadRequest && !strings.Contains(body, "email") {
				t.Errorf("PATCH a %d-byte email on %s: 400 %.300s; want the message to name the email", len(long), store, body)
			}
		})
	}
	if codes["sqlite"] != 0 && codes["postgres"] != 0 && codes["sqlite"] != codes["postgres"] {
		t.Errorf("the same PATCH answered %d on SQLite and %d on PostgreSQL; want one answer on every store", codes["sqlite"], codes["postgres"])
	}
}

// Revoking a role that only a connection grants changes nothing (the
// README: revoke_roles removes local grants), so the audit log must not
// say it was revoked: an auditor reading it later would believe alice
// lost it.
func TestAuditNamesOnlyTheRoleGrantsThatChanged(t *testing.T) {
	s, admin := directorySiteOn(t, "sqlite", siteOptions{corpJIT: "role member", auditLog: true})
	const user = "/jit_auth/users/alice@example.com"
	code, body := adminRaw(t, admin, http.MethodPatch, user, `{"revoke_roles":["member"]}`)
	if code != http.StatusOK || !strings.Contains(body, `"roles":["member"]`) {
		t.Fatalf("PATCH revoke member: %d %s; want 200, member still held (a connection's grant)", code, body)
	}
	for _, line := range strings.Split(mustReadFile(t, s.logFile()), "\n") {
		if strings.Contains(line, `"msg":"local roles revoked by an administrator"`) && strings.Contains(line, `"member"`) {
			t.Errorf("the audit log says member was revoked, but alice still holds it:\n%s", line)
		}
	}
}

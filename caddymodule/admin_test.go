package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// adminCall sends one request to Caddy's admin API and decodes the JSON
// answer into out (when non-nil).
func adminCall(t *testing.T, port int, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://localhost:%d%s", port, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

// An administrator's changes through the admin API are local: sync
// preserve_local keeps a locally changed attribute, and locally granted
// roles survive the provider's logins until the administrator revokes
// them.
func TestAdminAPIUserChanges(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, corpJIT: "sync preserve_local\n\t\t\t\trole member"})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}

	var view struct {
		ID              string   `json:"id"`
		Name            string   `json:"name"`
		Roles           []string `json:"roles"`
		LocalAttributes []string `json:"local_attributes"`
		TOTP            bool     `json:"totp_enrolled"`
		Identities      []struct {
			Connection string          `json:"connection"`
			RawClaims  json.RawMessage `json:"raw_claims"`
		} `json:"identities"`
	}
	if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users/alice@example.com", "", &view); code != http.StatusOK {
		t.Fatalf("GET user: %d", code)
	}
	if view.Name != "Alice Liddell" || !slices.Equal(view.Roles, []string{"member"}) || view.TOTP ||
		len(view.Identities) != 1 || view.Identities[0].Connection != "corp" || view.Identities[0].RawClaims != nil {
		t.Fatalf("GET user: %+v", view)
	}
	if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users/"+view.ID, "", nil); code != http.StatusOK {
		t.Errorf("GET by local ID: %d", code)
	}

	change := `{"set": {"name": "Alice (set by admin)"}, "grant_roles": ["auditor"]}`
	if code := adminCall(t, admin, http.MethodPatch, "/jit_auth/users/alice@example.com", change, &view); code != http.StatusOK {
		t.Fatalf("PATCH: %d", code)
	}
	if view.Name != "Alice (set by admin)" || !slices.Equal(view.LocalAttributes, []string{"name"}) || !slices.Equal(view.Roles, []string{"auditor", "member"}) {
		t.Fatalf("after PATCH: %+v", view)
	}

	// The provider renames her: preserve_local keeps the local name, and
	// the local role stays.
	renamed := alice()
	renamed.claims["name"] = "Alice Renamed"
	s.queue(renamed)
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("second login: %d", resp.StatusCode)
	}
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-Name") != "Alice (set by admin)" || !strings.Contains(h.Get("Remote-Groups"), "auditor") {
		t.Errorf("second login: Remote-Name %q, Remote-Groups %q", h.Get("Remote-Name"), h.Get("Remote-Groups"))
	}

	if code := adminCall(t, admin, http.MethodPatch, "/jit_auth/users/alice@example.com", `{"revoke_roles": ["auditor", "member"]}`, &view); code != http.StatusOK {
		t.Fatalf("PATCH revoke: %d", code)
	}
	if !slices.Equal(view.Roles, []string{"member"}) {
		t.Errorf("after revoking: roles %v, want member (the connection's grant is not the administrator's to revoke)", view.Roles)
	}

	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPatch, "/jit_auth/users/alice@example.com", `{"set": {"Bad-Name": "x"}}`, http.StatusBadRequest},
		{http.MethodPatch, "/jit_auth/users/alice@example.com", `{"grant_roles": ["a,b"]}`, http.StatusBadRequest},
		{http.MethodPatch, "/jit_auth/users/alice@example.com", `{"sett": {}}`, http.StatusBadRequest},
		{http.MethodPatch, "/jit_auth/users/alice@example.com", `not json`, http.StatusBadRequest},
		{http.MethodGet, "/jit_auth/users/nobody", "", http.StatusNotFound},
		{http.MethodPut, "/jit_auth/users/alice@example.com", "", http.StatusMethodNotAllowed},
		{http.MethodGet, "/jit_auth/users/alice@example.com/other", "", http.StatusNotFound},
	} {
		if code := adminCall(t, admin, c.method, c.path, c.body, nil); code != c.want {
			t.Errorf("%s %s %s: %d, want %d", c.method, c.path, c.body, code, c.want)
		}
	}
}

// adminRaw is adminCall returning the raw answer.
func adminRaw(t *testing.T, port int, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://localhost:%d%s", port, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The admin API takes exactly one JSON object per change (nothing after
// it, no unknown fields), shows an empty role list as [], and does not
// claim to reset a TOTP factor that does not exist.
func TestAdminAPIStrictBodiesAndHonestAnswers(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, auditLog: true})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	const user = "/jit_auth/users/alice@example.com"
	code, body := adminRaw(t, admin, http.MethodGet, user, "")
	if code != http.StatusOK || !strings.Contains(body, `"roles":[]`) {
		t.Errorf("GET a user without roles: %d %s, want \"roles\":[]", code, body)
	}

	for _, bad := range []string{
		`{}{"grant_roles":["x"]}`,
		`{"set":{}} {"grant_roles":["x"]}`,
		`{"grant_roles":["x"]}]`,
		`{"grant_roles":["x"]} trailing`,
		`{"grant_roles":["x"],"unknown":1}`,
		`{"grant_roles":["x"],"set":{},"Grant_Roles2":[]}`,
		`null`,
		`[{"grant_roles":["x"]}]`,
		``,
	} {
		code, body := adminRaw(t, admin, http.MethodPatch, user, bad)
		if code != http.StatusBadRequest || !strings.Contains(body, "reading the change") {
			t.Errorf("PATCH %q: %d %s, want 400 naming the problem", bad, code, body)
		}
	}
	// set takes strings; email_verified only "true" or "false", never a
	// "yes" or "True" read as false. The README shows the string form.
	for _, bad := range []string{
		`{"set":{"email_verified":true}}`,
		`{"set":{"email_verified":"yes"}}`,
		`{"set":{"email_verified":"True","name":"x"}}`,
	} {
		code, body := adminRaw(t, admin, http.MethodPatch, user, bad)
		if code != http.StatusBadRequest || !strings.Contains(body, `\"true\"`) {
			t.Errorf("PATCH %s: %d %s, want 400 showing \"true\"", bad, code, body)
		}
	}
	// A field of the change put inside set is refused, not stored as an
	// attribute of that name.
	for _, bad := range []string{`{"set":{"keep":"true"}}`, `{"set":{"grant_roles":"x","name":"y"}}`} {
		if code, body := adminRaw(t, admin, http.MethodPatch, user, bad); code != http.StatusBadRequest || !strings.Contains(body, "is a field of the change") {
			t.Errorf("PATCH %s: %d %s, want 400 saying it is a field of the change", bad, code, body)
		}
	}
	// A change is applied whole or not at all: a valid set beside a role
	// that cannot be granted writes nothing.
	for _, partial := range []string{
		`{"set":{"name":"Partial"},"grant_roles":["bad role"]}`,
		`{"set":{"name":"Partial","email_verified":"yes"},"grant_roles":["x"]}`,
	} {
		if code, body := adminRaw(t, admin, http.MethodPatch, user, partial); code != http.StatusBadRequest {
			t.Errorf("PATCH %s: %d %s, want 400", partial, code, body)
		}
	}
	if code, body := adminRaw(t, admin, http.MethodGet, user, ""); code != http.StatusOK || strings.Contains(body, "Partial") {
		t.Errorf("a change refused in part was applied in part: %d %s", code, body)
	}
	if !strings.Contains(mustReadFile(t, "../README.md"), `"email_verified": "true"`) {
		t.Error(`README.md does not show "email_verified": "true"`)
	}
	if code, body := adminRaw(t, admin, http.MethodGet, user, ""); code != http.StatusOK || strings.Contains(body, `"x"`) || !strings.Contains(body, `"email_verified":true`) {
		t.Fatalf("a refused change was applied: %d %s", code, body)
	}
	if code, body := adminRaw(t, admin, http.MethodPatch, user, "{\"grant_roles\":[\"x\"]}\n \n"); code != http.StatusOK || !strings.Contains(body, `"roles":["x"]`) {
		t.Errorf("PATCH with trailing whitespace: %d %s", code, body)
	}

	code, body = adminRaw(t, admin, http.MethodDelete, user+"/totp", "")
	if code != http.StatusNotFound || !strings.Contains(body, "no TOTP factor to reset") {
		t.Errorf("TOTP reset of a user who never enrolled: %d %s, want 404", code, body)
	}
	if strings.Contains(mustReadFile(t, s.logFile()), "totp reset by an administrator") {
		t.Error("a reset of nothing was logged as done")
	}
	// An administrator's change is an event that names whose user it
	// changed, in the same fields a login's events use.
	granted := false
	for _, line := range strings.Split(mustReadFile(t, s.logFile()), "\n") {
		if strings.Contains(line, `"msg":"roles granted by an administrator"`) {
			granted = true
			if !strings.Contains(line, `"username":"alice@example.com"`) || !strings.Contains(line, `"local_id":"`) || !strings.Contains(line, `"roles":["x"]`) {
				t.Errorf("the role grant's event does not name the user and roles: %s", line)
			}
		}
	}
	if !granted {
		t.Error("the role grant was not recorded as an event")
	}
}

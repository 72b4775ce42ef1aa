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
		{http.MethodDelete, "/jit_auth/users/alice@example.com", "", http.StatusMethodNotAllowed},
		{http.MethodGet, "/jit_auth/users/alice@example.com/other", "", http.StatusNotFound},
	} {
		if code := adminCall(t, admin, c.method, c.path, c.body, nil); code != c.want {
			t.Errorf("%s %s %s: %d, want %d", c.method, c.path, c.body, code, c.want)
		}
	}
}

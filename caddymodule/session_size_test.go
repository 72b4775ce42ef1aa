package caddymodule_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// A user in hundreds of groups signs in: the session is sealed
// compressed when its JSON would not fit in a cookie, and the upstream
// gets every group. Opaque IDs compress far less; a provider sending
// hundreds of them gets a page that says what is wrong, and no session.
func TestUserInManyGroupsSignsIn(t *testing.T) {
	s := startSite(t)
	depts := []string{"engineering", "sales", "finance", "support", "research", "legal"}
	teams := []string{"platform", "mobile", "web", "data", "infra", "security", "growth", "billing", "identity", "search"}
	var groups []string
	for i := range 300 {
		groups = append(groups, fmt.Sprintf("/acme/%s/%s-team-%03d", depts[i%6], teams[(i/6)%10], i))
	}
	s.queue(&oidcUser{sub: "many-groups", claims: map[string]any{
		"email": "grace@example.com", "email_verified": true, "name": "Grace Hopper",
		"preferred_username": "grace", "groups": groups,
	}})
	b := newBrowser(t)
	resp, _ := s.login(b, "corp", "/inbox")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login of a user in %d groups: %d, want 200", len(groups), resp.StatusCode)
	}
	sorted := slices.Sorted(slices.Values(groups))
	if got := s.upstream.lastHeaders(t).Get("Remote-Groups"); got != strings.Join(sorted, ",") {
		t.Errorf("Remote-Groups has %d groups, want all %d: %.300s", strings.Count(got, ",")+1, len(groups), got)
	}
	for _, c := range b.setCookies {
		if strings.HasSuffix(c.Name, "jitauth_session") && len(c.Value) > 4000 {
			t.Errorf("session cookie of %d bytes", len(c.Value))
		}
	}
	if resp, _ := b.get(s.base + "/next"); resp.StatusCode != http.StatusOK {
		t.Errorf("next request with the session: %d", resp.StatusCode)
	}

	// Entra ID sends up to 200 group object IDs (random, so they hardly
	// compress): the session then takes more than one cookie, bounded.
	b = newBrowser(t)
	ids := randomGroupIDs(200)
	s.queue(&oidcUser{sub: "entra-groups", claims: map[string]any{
		"email": "ada@example.com", "email_verified": true, "preferred_username": "ada", "groups": ids,
	}})
	resp, _ = s.login(b, "corp", "/reports")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login of a user in %d opaque groups: %d, want 200", len(ids), resp.StatusCode)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-Groups"); got != strings.Join(slices.Sorted(slices.Values(ids)), ",") {
		t.Errorf("Remote-Groups has %d groups, want all %d", strings.Count(got, ",")+1, len(ids))
	}
	parts := map[string]int{}
	for _, c := range b.setCookies {
		if strings.HasPrefix(c.Name, "jitauth_session") && c.Value != "" {
			parts[c.Name] = len(c.Value)
			if len(c.Value) > 4000 {
				t.Errorf("cookie %s of %d bytes", c.Name, len(c.Value))
			}
		}
	}
	t.Logf("session cookies of a user in %d group IDs: %v", len(ids), parts)
	if len(parts) < 2 || len(parts) > 3 {
		t.Errorf("session cookies %v, want 2 or 3 parts", parts)
	}
	if up := s.upstream.lastHeaders(t).Get("Cookie"); strings.Contains(up, "jitauth_") {
		t.Errorf("the upstream got the module's cookies: %.100s", up)
	}
	if resp, _ := b.get(s.base + "/next"); resp.StatusCode != http.StatusOK || s.upstream.lastHeaders(t).Get("Remote-User") != "ada@example.com" {
		t.Errorf("next request with the split session: %d", resp.StatusCode)
	}

	// Signing out ends it, and deletes every part.
	b.setCookies = nil
	if out, _ := b.logout(s.base, ""); out.StatusCode != http.StatusOK {
		t.Errorf("signing out: %d", out.StatusCode)
	}
	deleted := map[string]bool{}
	for _, c := range b.setCookies {
		if c.MaxAge < 0 {
			deleted[c.Name] = true
		}
	}
	for name := range parts {
		if !deleted[name] {
			t.Errorf("signing out did not delete %s (deleted %v)", name, deleted)
		}
	}
	if resp := b.do(http.MethodGet, s.base+"/next", http.Header{"Accept": {"application/json"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after signing out: %d, want 401", resp.StatusCode)
	}

	// Beyond what three cookies hold, a page says what is wrong, and no
	// cookie is set.
	ids = randomGroupIDs(1000)
	s.queue(&oidcUser{sub: "too-many-groups", claims: map[string]any{
		"email": "bea@example.com", "email_verified": true, "preferred_username": "bea", "groups": ids,
	}})
	b = newBrowser(t)
	resp, body := s.login(b, "corp", "/")
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "more groups than this site can hold") {
		t.Errorf("login of a user in %d opaque groups: %d, want 500 saying why:\n%s", len(ids), resp.StatusCode, body)
	}
	for _, c := range b.setCookies {
		if strings.HasPrefix(c.Name, "jitauth_session") && c.Value != "" {
			t.Errorf("a session cookie was set: %s, %d bytes", c.Name, len(c.Value))
		}
	}
}

// randomGroupIDs are n group object IDs as Entra ID sends them.
func randomGroupIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	return ids
}

package caddymodule_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
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

	var ids []string
	for i := range 400 {
		ids = append(ids, fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", i*2654435761, i*40503, i*7, i*13, uint64(i)*0x9E3779B97F4A7C15>>16))
	}
	s.queue(&oidcUser{sub: "guid-groups", claims: map[string]any{
		"email": "ada@example.com", "email_verified": true, "preferred_username": "ada", "groups": ids,
	}})
	b = newBrowser(t)
	resp, body := s.login(b, "corp", "/")
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "more groups than this site can hold") {
		t.Errorf("login of a user in %d opaque groups: %d, want 500 saying why:\n%s", len(ids), resp.StatusCode, body)
	}
	for _, c := range b.setCookies {
		if strings.HasSuffix(c.Name, "jitauth_session") && c.Value != "" {
			t.Errorf("a session cookie was set: %d bytes", len(c.Value))
		}
	}
}

package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// `header -<Name>` drops a default identity header, and `header <Name>
// …` replaces it, however the name is spelled: header names are
// case-insensitive (RFC 9110), and CGI-style upstreams read '_' as '-',
// as the module does when it strips client copies.
func TestHeaderOverridesMatchDefaultsInAnySpelling(t *testing.T) {
	base, up, login := partialSite(t, `
	jit_auth {
		header -remote-email
		header -Remote_Name
		header remote_user "u-{http.auth.user.id}"
	}
	reverse_proxy {UPSTREAM}`)
	session := login()
	req, _ := http.NewRequest(http.MethodGet, base+"/page", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cookie", "jitauth_session="+session)
	resp, err := protocolClients()["HTTP/1.1"].Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	seen, ok := up.take("/page")
	if !ok || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, reached %v", resp.StatusCode, ok)
	}
	if got := seen.header.Values("Remote-Email"); len(got) != 0 {
		t.Errorf("`header -remote-email` was configured, yet the upstream got Remote-Email: %q", got)
	}
	if got := seen.header.Values("Remote-Name"); len(got) != 0 {
		t.Errorf("`header -Remote_Name` was configured, yet the upstream got Remote-Name: %q", got)
	}
	var userFields []string
	for name, v := range seen.header {
		if headerKeyOf(name) == "remote-user" {
			userFields = append(userFields, name+": "+strings.Join(v, ","))
		}
	}
	if len(userFields) != 1 || !strings.HasPrefix(userFields[0], "Remote-User: u-") {
		t.Errorf("`header remote_user …` was configured; the upstream got %q, want only Remote-User: u-<name>", userFields)
	}
}

// Two overrides of one field in different spellings are refused at
// load: which one wins would otherwise depend on the map's order.
func TestHeaderOverridesOfOneFieldAreRefused(t *testing.T) {
	dir := t.TempDir()
	err := loadErr(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth {
		header X-User "{http.auth.user.id}"
		header x_user "{http.auth.user.email}"
	}
	reverse_proxy 127.0.0.1:9
}`, globalOptions(dir, `
		connection corp {
			oidc https://idp.example.com id secret
		}`), freePort(t)))
	if err == nil || !strings.Contains(err.Error(), "name one field") {
		t.Fatalf("load: %v, want an error saying the two headers name one field", err)
	}
}

func headerKeyOf(name string) string {
	return strings.ToLower(strings.ReplaceAll(name, "_", "-"))
}

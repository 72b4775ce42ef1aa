package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// goth's auth0 provider puts "https://" before base_url itself, so a
// base_url written as a URL, as okta's and nextcloud's are
// (https://tenant.eu.auth0.com), loaded and made every sign-in go to
// https://https://tenant.eu.auth0.com/authorize, which no browser can
// reach: the tenant's https URL is its domain. Any other URL (another
// scheme, a path) is refused at load.
func TestAuth0BaseURLWrittenAsURL(t *testing.T) {
	for _, baseURL := range []string{"tenant.eu.auth0.com", "https://tenant.eu.auth0.com", "https://tenant.eu.auth0.com/"} {
		t.Run(baseURL, func(t *testing.T) {
			base, _, _ := startGothConnectionSite(t, fmt.Sprintf(`
		connection a0 {
			goth auth0 a0-key a0-secret {
				base_url %s
			}
		}`, baseURL))
			resp, body := newBrowser(t).get(base + "/.jitauth/start/a0")
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://tenant.eu.auth0.com/authorize?") {
				t.Fatalf("start: %d, Location %q (%.200s); want https://tenant.eu.auth0.com/authorize?…", resp.StatusCode, loc, body)
			}
		})
	}
	dir := t.TempDir()
	for _, bad := range []string{"http://tenant.eu.auth0.com", "https://tenant.eu.auth0.com/tenant", "https://tenant.eu.auth0.com?x=1"} {
		conn := fmt.Sprintf("\t\tconnection a0 {\n\t\t\tgoth auth0 k s {\n\t\t\t\tbase_url %s\n\t\t\t}\n\t\t}", bad)
		err := loadErr(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n\tjit_auth\n\trespond ok\n}\n", globalOptions(dir, conn), freePort(t)))
		if err == nil || !strings.Contains(err.Error(), "base_url") {
			t.Errorf("auth0 base_url %s: loaded (%v); want an error naming base_url", bad, err)
		}
	}
}

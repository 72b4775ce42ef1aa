package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Only the providers whose goth code formats a numeric id (GitHub,
// GitLab, Gitea: a missing one gives "0") refuse the subject "0".
// Nextcloud's user ID is a string, the login name the administrator
// chose (letters, digits, _.@-'), and "0" is a valid one: that user signs
// in.
func TestNextcloudUserNamedZeroSignsIn(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/apps/oauth2/authorize", func(w http.ResponseWriter, r *http.Request) {
		back, _ := url.Parse(r.URL.Query().Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {"code-0"}, "state": {r.URL.Query().Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("/apps/oauth2/api/v1/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"token-0","token_type":"bearer","expires_in":3600}`)
	})
	mux.HandleFunc("/ocs/v2.php/cloud/user", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer token-0" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ocs": map[string]any{"data": map[string]any{
			"id": "0", "display-name": "Zero", "email": "zero@cloud.example"}}})
	})
	nc := httptest.NewServer(mux)
	t.Cleanup(nc.Close)

	base, _, _ := startGothConnectionSite(t, fmt.Sprintf(`
		connection cloud {
			goth nextcloud nc-key nc-secret {
				base_url %s
			}
			jit
		}`, nc.URL))

	b := newBrowser(t)
	resp, body, visited := b.follow(base+"/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the Nextcloud user whose login name is \"0\" cannot sign in: %d %.300s (%v)", resp.StatusCode, strings.TrimSpace(body), visited)
	}
}

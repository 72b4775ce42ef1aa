package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// fakeOkta is an Okta org whose default authorization server signs in
// one user, described by userinfo.
func fakeOkta(t *testing.T, userinfo map[string]any) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/default/v1/authorize", func(w http.ResponseWriter, r *http.Request) {
		back, _ := url.Parse(r.URL.Query().Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {"okta-code"}, "state": {r.URL.Query().Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("/oauth2/default/v1/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"okta-token","token_type":"Bearer","expires_in":3600}`)
	})
	mux.HandleFunc("/oauth2/default/v1/userinfo", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer okta-token" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(userinfo)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// Okta's userinfo says whether the email is verified, but goth's okta
// provider keeps four fields of it as the raw data (ProfileURL, Locale,
// Username, Zoneinfo) and drops email_verified. The connector read no
// flag there, so trust_email, meant for providers that do not say,
// overruled Okta's "not verified" (README: it never does): a user whose
// Okta email is another person's, unconfirmed, was stored as its
// verified owner (admitted by allow email rules, linked by it). Okta's
// own answer is what counts, either way.
func TestOktaEmailVerifiedIsOktas(t *testing.T) {
	for _, tc := range []struct {
		name     string
		verified any
		want     bool
	}{
		{"okta says not verified", false, false},
		{"okta says verified", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			okta := fakeOkta(t, map[string]any{
				"sub": "00u1okta", "email": "victim@example.com", "email_verified": tc.verified,
				"name": "Some One", "preferred_username": "someone@example.com",
			})
			base, dir, _ := startGothConnectionSite(t, fmt.Sprintf(`
		connection okta {
			goth okta okta-key okta-secret {
				base_url %s
			}
			trust_email
			jit
		}`, okta.URL))
			if resp, body, visited := newBrowser(t).follow(base+"/", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("login: %d %.300s (%v)", resp.StatusCode, body, visited)
			}
			users := allUsers(t, openStore(t, dir))
			if len(users) != 1 || users[0].Email != "victim@example.com" || users[0].EmailVerified != tc.want {
				t.Fatalf("store: %+v; want victim@example.com with email_verified %v, as Okta said", users, tc.want)
			}
		})
	}
}

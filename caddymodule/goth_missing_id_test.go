package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// goth's gitlab and gitea providers format the profile's numeric "id"
// with strconv.Itoa, so a profile without one (or "id": null) gives the
// subject "0", as goth's github provider does. Through a self-hosted
// GitLab or Gitea whose profile endpoint answers without an id (a proxy
// in front of it, a profile_url pointing at the wrong endpoint, a
// compatible server that names it otherwise), every user would be the
// identity (gitlab, gitlab, "0"), and the second person to sign in the
// first one's local user (S15): such a profile signs nobody in.

// fakeForge is a GitLab- or Gitea-like OAuth server whose profile
// endpoint answers each token with its own user, without an "id".
func fakeForge(t *testing.T, users []map[string]any) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	next := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := next
		next++
		mu.Unlock()
		back, _ := url.Parse(r.URL.Query().Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {fmt.Sprintf("code-%d", n)}, "state": {r.URL.Query().Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("/oauth/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		n := strings.TrimPrefix(r.Form.Get("code"), "code-")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"token-%s","token_type":"bearer","expires_in":3600}`, n)
	})
	mux.HandleFunc("/api/user", func(w http.ResponseWriter, r *http.Request) {
		var n int
		if _, err := fmt.Sscanf(r.URL.Query().Get("access_token")+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), "token-%d", &n); err != nil || n >= len(users) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(users[n])
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestGothProfileWithoutAnIDSignsNobodyIn(t *testing.T) {
	for _, provider := range []string{"gitlab", "gitea"} {
		t.Run(provider, func(t *testing.T) {
			users := []map[string]any{
				{"username": "alice", "login": "alice", "name": "Alice", "full_name": "Alice", "email": "alice@example.com"},
				{"username": "mallory", "login": "mallory", "name": "Mallory", "full_name": "Mallory", "email": "mallory@example.com", "id": nil},
			}
			forge := fakeForge(t, users)
			base, dir, up := startGothConnectionSite(t, fmt.Sprintf(`
		connection forge {
			goth %[2]s forge-key forge-secret {
				auth_url %[1]s/oauth/authorize
				token_url %[1]s/oauth/token
				profile_url %[1]s/api/user
			}
			jit
		}`, forge.URL, provider))

			var problems []string
			for i, who := range []string{"alice", "mallory"} {
				b := newBrowser(t)
				resp, body, visited := b.follow(base+"/", nil)
				if resp.StatusCode == http.StatusOK {
					problems = append(problems, fmt.Sprintf("%s (profile without an id) signed in as Remote-User %q, subject %q",
						who, up.lastHeaders(t).Get("Remote-User"), "0"))
				} else if resp.StatusCode >= 500 {
					t.Fatalf("login %d: %d %s (%v)", i, resp.StatusCode, body, visited)
				}
			}
			if users := allUsers(t, openStore(t, dir)); len(users) != 0 {
				problems = append(problems, fmt.Sprintf("store holds %d user(s) for two people: %+v", len(users), users[0].Username))
			}
			if len(problems) > 0 {
				t.Errorf("a %s profile without an id must be refused (as GitHub's is), not become subject \"0\":\n  %s", provider, strings.Join(problems, "\n  "))
			}
		})
	}
}

// startGothConnectionSite starts a site with jit_auth, behind which a new
// upstream, and the connection block conn in the global options; it
// returns the site's base URL, its directory (the store's) and the
// upstream.
func startGothConnectionSite(t *testing.T, conn string) (base, dir string, up *upstream) {
	t.Helper()
	dir, up = t.TempDir(), newUpstream(t)
	port := freePort(t)
	runCaddyfile(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n\tjit_auth\n\treverse_proxy %s\n}\n", globalOptions(dir, conn), port, up.hostPort()))
	return fmt.Sprintf("http://localhost:%d", port), dir, up
}

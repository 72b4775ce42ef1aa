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

// fakeGitHub speaks the parts of GitHub's OAuth and REST API that goth's
// github provider uses, so a `provider github` connection can be tested
// offline against its custom-URL settings (as for GitHub Enterprise).
func fakeGitHub(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "gh-key" {
			http.Error(w, "bad client", http.StatusBadRequest)
			return
		}
		back, _ := url.Parse(q.Get("redirect_uri"))
		v := url.Values{"code": {"gh-code"}, "state": {q.Get("state")}}
		back.RawQuery = v.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("/login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		user, pass, _ := r.BasicAuth()
		if r.Form.Get("code") != "gh-code" || ((user != "gh-key" || pass != "gh-secret") && r.Form.Get("client_secret") != "gh-secret") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"bad_verification_code"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"gh-token","token_type":"bearer","scope":"read:user,user:email"}`))
	})
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer gh-token" {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("/api/v3/user", authed(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"id": 4242, "login": "octocat", "name": "The Octocat", "email": "", "avatar_url": "https://avatars.example/octocat"})
	}))
	mux.HandleFunc("/api/v3/user/emails", authed(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]map[string]any{{"email": "octocat@example.com", "primary": true, "verified": true}})
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestGothProviderLoginWithJIT(t *testing.T) {
	dir := t.TempDir()
	gh := fakeGitHub(t)
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, globalOptions(dir, fmt.Sprintf(`
		connection github {
			provider github gh-key gh-secret
			auth_url %[1]s/login/oauth/authorize
			token_url %[1]s/login/oauth/access_token
			profile_url %[1]s/api/v3/user
			email_url %[1]s/api/v3/user/emails
			jit
		}`, gh.URL)), port, up.hostPort()))

	b := newBrowser(t)
	resp, body, visited := b.follow(base+"/repos", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/repos" {
		t.Fatalf("login through github: %d %s (%v)", resp.StatusCode, body, visited)
	}
	h := up.lastHeaders(t)
	// goth's GitHub user carries no verified flag of its own, so the
	// username falls back from the email to the login name.
	if h.Get("Remote-User") != "octocat" || h.Get("Remote-Email") != "octocat@example.com" || h.Get("Remote-Name") != "The Octocat" {
		t.Fatalf("identity headers: %v", h)
	}
	users := allUsers(t, openStore(t, dir))
	if len(users) != 1 || users[0].Username != "octocat" || users[0].EmailVerified {
		t.Fatalf("store: %+v", users)
	}
	// Two connections of one provider type, or a reload, must not share
	// goth's process-wide registry: nothing was registered there.
	for _, v := range visited {
		if strings.Contains(v, "github.com") {
			t.Fatalf("went to the real GitHub: %s", v)
		}
	}
}

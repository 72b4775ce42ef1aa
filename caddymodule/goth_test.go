package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeGitHubUser is what the fake GitHub says about its one user,
// octocat (ID 4242).
type fakeGitHubUser struct {
	// email is the public email on /user ("" when the user hides it).
	email string
	// emails serves /user/emails once the token checked out; nil lists
	// octocat@example.com as the primary verified address.
	emails http.HandlerFunc
	// id and login replace octocat's 4242 and "octocat" when set.
	id    int
	login string
}

// fakeGitHubServer is a fake GitHub that remembers the Accept header of
// every /user/emails request.
type fakeGitHubServer struct {
	*httptest.Server
	mu           sync.Mutex
	emailAccepts []string
}

func (g *fakeGitHubServer) acceptsSeen() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.emailAccepts...)
}

// fakeGitHub speaks the parts of GitHub's OAuth and REST API that goth's
// github provider and the connector use, so a `provider github`
// connection can be tested offline against its custom-URL settings (as
// for GitHub Enterprise).
func fakeGitHub(t *testing.T, user fakeGitHubUser) *fakeGitHubServer {
	t.Helper()
	g := &fakeGitHubServer{}
	if user.emails == nil {
		user.emails = githubEmails(githubAddr{"octocat@example.com", true, true})
	}
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
		// GitHub answers refusals with 200 and an error code.
		w.Header().Set("Content-Type", "application/json")
		if (user != "gh-key" || pass != "gh-secret") && (r.Form.Get("client_id") != "gh-key" || r.Form.Get("client_secret") != "gh-secret") {
			_, _ = w.Write([]byte(`{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect."}`))
			return
		}
		if r.Form.Get("code") != "gh-code" {
			_, _ = w.Write([]byte(`{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}`))
			return
		}
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
	if user.id == 0 {
		user.id = 4242
	}
	if user.login == "" {
		user.login = "octocat"
	}
	mux.HandleFunc("/api/v3/user", authed(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"id": user.id, "login": user.login, "name": "The Octocat", "email": user.email, "avatar_url": "https://avatars.example/octocat"})
	}))
	mux.HandleFunc("/api/v3/user/emails", authed(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.emailAccepts = append(g.emailAccepts, r.Header.Get("Accept"))
		g.mu.Unlock()
		user.emails(w, r)
	}))
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

// githubAddr is one entry of GitHub's /user/emails list.
type githubAddr struct {
	email             string
	primary, verified bool
}

// githubEmails serves a /user/emails list.
func githubEmails(addrs ...githubAddr) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		list := []map[string]any{}
		for _, a := range addrs {
			list = append(list, map[string]any{"email": a.email, "primary": a.primary, "verified": a.verified, "visibility": nil})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	}
}

// githubEmailsBody serves /user/emails with this status and body.
func githubEmailsBody(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// startGitHubSite runs Caddy with one `provider github` connection,
// "github", against gh; connExtra adds lines to the connection block,
// siteExtra to the site's jit_auth block.
func startGitHubSite(t *testing.T, gh *fakeGitHubServer, connExtra, siteExtra string) (base, dir string, up *upstream) {
	t.Helper()
	dir = t.TempDir()
	up = newUpstream(t)
	port := freePort(t)
	base = fmt.Sprintf("http://localhost:%d", port)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth {
%s
	}
	reverse_proxy %s
}
`, globalOptions(dir, fmt.Sprintf(`
		connection github {
			provider github gh-key gh-secret
			auth_url %[1]s/login/oauth/authorize
			token_url %[1]s/login/oauth/access_token
			profile_url %[1]s/api/v3/user
			email_url %[1]s/api/v3/user/emails
%[2]s
		}`, gh.URL, connExtra)), port, siteExtra, up.hostPort()))
	return base, dir, up
}

func TestGothProviderLoginWithJIT(t *testing.T) {
	gh := fakeGitHub(t, fakeGitHubUser{})
	base, dir, up := startGitHubSite(t, gh, "\t\t\tjit", "")

	b := newBrowser(t)
	resp, body, visited := b.follow(base+"/repos", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/repos" {
		t.Fatalf("login through github: %d %s (%v)", resp.StatusCode, body, visited)
	}
	h := up.lastHeaders(t)
	// GitHub's email list says the primary address is verified, so it
	// makes the username.
	if h.Get("Remote-User") != "octocat@example.com" || h.Get("Remote-Email") != "octocat@example.com" || h.Get("Remote-Name") != "The Octocat" {
		t.Fatalf("identity headers: %v", h)
	}
	users := allUsers(t, openStore(t, dir))
	if len(users) != 1 || users[0].Username != "octocat@example.com" || !users[0].EmailVerified {
		t.Fatalf("store: %+v", users)
	}
	// Two connections of one provider type, or a reload, must not share
	// goth's process-wide registry: nothing was registered there.
	for _, v := range visited {
		if strings.Contains(v, "github.com") {
			t.Fatalf("went to the real GitHub: %s", v)
		}
	}
	// The connector asked the email list itself, the way GitHub's REST
	// API wants to be asked.
	if accepts := gh.acceptsSeen(); !slices.Contains(accepts, "application/vnd.github+json") {
		t.Fatalf("no /user/emails request with the GitHub media type: %q", accepts)
	}
}

// S8 for GitHub: goth's GitHub user has no verified flag, so the email
// and whether it is verified come from GitHub's email list: the primary
// verified address, else the profile's email unverified; if the list
// cannot be had, whether the email is verified is unknown (trust_email
// may then apply). Each case is checked three ways: the JIT user in the
// store, the same with trust_email, and an `allow email_domain` rule of
// a JIT-off connection (which admits verified addresses only).
func TestGitHubEmailVerification(t *testing.T) {
	primaryVerified := githubAddr{"octocat@example.com", true, true}
	cases := []struct {
		name string
		user fakeGitHubUser
		// wantEmail and wantVerified are what the login yields;
		// wantKnown is whether GitHub said either way.
		wantEmail    string
		wantVerified bool
		wantKnown    bool
	}{
		{
			name: "primary verified differs from the public email",
			user: fakeGitHubUser{email: "octo@public.example", emails: githubEmails(
				githubAddr{"octo@public.example", false, true},
				githubAddr{"octocat@example.com", true, true},
				githubAddr{"stray@example.com", false, false},
			)},
			wantEmail: "octocat@example.com", wantVerified: true, wantKnown: true,
		},
		{
			name:      "primary verified, no public email",
			user:      fakeGitHubUser{emails: githubEmails(githubAddr{"other@example.com", false, true}, primaryVerified)},
			wantEmail: "octocat@example.com", wantVerified: true, wantKnown: true,
		},
		{
			name: "primary not verified",
			user: fakeGitHubUser{email: "octocat@example.com", emails: githubEmails(
				githubAddr{"octocat@example.com", true, false},
				githubAddr{"other@example.com", false, true},
			)},
			wantEmail: "octocat@example.com", wantVerified: false, wantKnown: true,
		},
		{
			name:      "verified but not primary, no public email",
			user:      fakeGitHubUser{emails: githubEmails(githubAddr{"other@example.com", false, true})},
			wantEmail: "", wantVerified: false, wantKnown: true,
		},
		{
			name:      "emails endpoint refuses (no user:email scope)",
			user:      fakeGitHubUser{email: "octocat@example.com", emails: githubEmailsBody(http.StatusForbidden, `{"message":"Resource not accessible by integration"}`)},
			wantEmail: "octocat@example.com", wantVerified: false, wantKnown: false,
		},
		{
			name:      "emails endpoint fails, no public email",
			user:      fakeGitHubUser{emails: githubEmailsBody(http.StatusInternalServerError, `oops`)},
			wantEmail: "", wantVerified: false, wantKnown: false,
		},
		{
			name:      "emails endpoint sends an object",
			user:      fakeGitHubUser{email: "octocat@example.com", emails: githubEmailsBody(http.StatusOK, `{"email":"octocat@example.com","primary":true,"verified":true}`)},
			wantEmail: "octocat@example.com", wantVerified: false, wantKnown: false,
		},
		{
			name:      "emails endpoint sends odd types",
			user:      fakeGitHubUser{email: "octocat@example.com", emails: githubEmailsBody(http.StatusOK, `[{"email":"octocat@example.com","primary":"true","verified":"true"}]`)},
			wantEmail: "octocat@example.com", wantVerified: false, wantKnown: false,
		},
		{
			name:      "emails endpoint sends null",
			user:      fakeGitHubUser{email: "octocat@example.com", emails: githubEmailsBody(http.StatusOK, `null`)},
			wantEmail: "octocat@example.com", wantVerified: false, wantKnown: false,
		},
		{
			name: "emails endpoint sends more than 1 MiB",
			user: fakeGitHubUser{email: "octocat@example.com", emails: githubEmailsBody(http.StatusOK,
				`[{"email":"octocat@example.com","primary":true,"verified":true,"pad":"`+strings.Repeat("x", 1<<20)+`"}]`)},
			wantEmail: "octocat@example.com", wantVerified: false, wantKnown: false,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gh := fakeGitHub(t, tc.user)
			wantUser := "octocat"
			if tc.wantVerified {
				wantUser = tc.wantEmail
			}

			t.Run("jit", func(t *testing.T) {
				base, dir, up := startGitHubSite(t, gh, "\t\t\tjit", "")
				resp, body, visited := newBrowser(t).follow(base+"/", nil)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("login: %d %s (%v)", resp.StatusCode, body, visited)
				}
				if h := up.lastHeaders(t); h.Get("Remote-Email") != tc.wantEmail || h.Get("Remote-User") != wantUser {
					t.Errorf("Remote-Email %q, Remote-User %q; want %q, %q", h.Get("Remote-Email"), h.Get("Remote-User"), tc.wantEmail, wantUser)
				}
				users := allUsers(t, openStore(t, dir))
				if len(users) != 1 || users[0].Email != tc.wantEmail || users[0].EmailVerified != tc.wantVerified {
					t.Fatalf("store: %+v; want email %q verified %v", users, tc.wantEmail, tc.wantVerified)
				}
			})

			t.Run("jit trust_email", func(t *testing.T) {
				// trust_email applies only where GitHub did not say.
				want := tc.wantVerified || (!tc.wantKnown && tc.wantEmail != "")
				base, dir, _ := startGitHubSite(t, gh, "\t\t\ttrust_email\n\t\t\tjit", "")
				if resp, body, visited := newBrowser(t).follow(base+"/", nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("login: %d %s (%v)", resp.StatusCode, body, visited)
				}
				users := allUsers(t, openStore(t, dir))
				if len(users) != 1 || users[0].EmailVerified != want {
					t.Fatalf("store: %+v; want verified %v", users, want)
				}
			})

			t.Run("allow email_domain", func(t *testing.T) {
				base, _, up := startGitHubSite(t, gh, "", "\t\tallow email_domain example.com")
				b := newBrowser(t)
				resp, body, visited := b.follow(base+"/", nil)
				if tc.wantVerified {
					if resp.StatusCode != http.StatusOK || up.lastHeaders(t).Get("Remote-Email") != tc.wantEmail {
						t.Fatalf("verified %s refused: %d %s (%v)", tc.wantEmail, resp.StatusCode, body, visited)
					}
					return
				}
				if resp.StatusCode != http.StatusForbidden || b.cookie(base, "jitauth_session") != nil {
					t.Fatalf("unverified email admitted: %d %s (%v)", resp.StatusCode, body, visited)
				}
			})
		})
	}
}

package goth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/connector"
)

// goth's gitlab provider reads the profile at gitlab.com's /api/v3/user,
// an API GitLab removed in 11.0 (it answers 410 Gone, "API V3 is no
// longer supported"): a `goth gitlab <key> <secret>` connection without
// custom URLs signed nobody in. Its profile comes from /api/v4/user.
// gitlab.com is played by a local server the client's transport sends
// every request to.
func TestGitLabOnGitLabComReadsTheV4Profile(t *testing.T) {
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/oauth/token":
			fmt.Fprint(w, `{"access_token":"gl-token","token_type":"bearer","expires_in":7200}`)
		case "/api/v3/user":
			w.WriteHeader(http.StatusGone)
			fmt.Fprint(w, `{"error":"API V3 is no longer supported. Use API V4 instead."}`)
		case "/api/v4/user":
			if r.URL.Query().Get("access_token") != "gl-token" && r.Header.Get("Authorization") != "Bearer gl-token" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, `{"id":42,"username":"alice","name":"Alice","email":"alice@example.com"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	local, _ := url.Parse(srv.URL)

	g := &Goth{Provider: "gitlab", Key: "k", Secret: "s"}
	g.client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host != "gitlab.com" {
			return nil, fmt.Errorf("asked %s, not gitlab.com", r.URL.Host)
		}
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = local.Scheme, local.Host
		return http.DefaultTransport.RoundTrip(r)
	})}
	g.factory = gothFactories["gitlab"]
	cfg := *g
	g.cfg = &cfg
	g.issuer = instanceIssuer(*g)

	login := connector.Login{Connection: "gl", State: "st", RedirectURI: "https://app.example/.jitauth/callback/gl"}
	target, state, err := g.Begin(httptest.NewRequest(http.MethodGet, "https://app.example/.jitauth/start/gl", nil), login)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(target, "https://gitlab.com/oauth/authorize?") {
		t.Fatalf("authorization URL %s", target)
	}
	r := httptest.NewRequest(http.MethodGet, "https://app.example/.jitauth/callback/gl?code=c&state=st", nil)
	claims, err := g.Finish(r, login, state)
	if err != nil {
		t.Fatalf("sign-in through gitlab.com: %v (asked %v)", err, asked)
	}
	if claims.Issuer != "gitlab" || claims.Subject != "42" || claims.PreferredUsername != "alice" {
		t.Fatalf("claims %+v", claims)
	}
}

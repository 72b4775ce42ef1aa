package oidc

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jitauth/caddy-jitauth/connector"
)

// A token endpoint that answers with a redirect (307 and 308 repeat the
// POST, body and all; 302 turns it into a GET that keeps the
// Authorization header on the same host) is not followed: the client
// secret, the code and the PKCE verifier go only to the token endpoint
// discovery named, never to wherever its answer points. The login fails
// with an error that says the endpoint redirected.
func TestTokenEndpointRedirectIsNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var reached atomic.Int32
			elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Add(1)
				http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			}))
			defer elsewhere.Close()
			lp := newLoginProvider(t)
			lp.meta["token_endpoint"] = lp.ti.srv.URL + "/moved"
			served := lp.ti.srv.Config.Handler
			lp.ti.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/moved" {
					http.Redirect(w, r, elsewhere.URL+"/token", status)
					return
				}
				served.ServeHTTP(w, r)
			})
			o := lp.connector()
			o.client = connector.NewProviderClient(providerTimeout)
			_, err := lp.login(t, o, nil)
			if n := reached.Load(); n != 0 {
				t.Fatalf("the token request followed the redirect %d times: the client secret and code went elsewhere", n)
			}
			if err == nil || !strings.Contains(err.Error(), "redirect") {
				t.Fatalf("login through a redirecting token endpoint: %v; want an error naming the redirect", err)
			}
		})
	}
}

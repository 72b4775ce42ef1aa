package goth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/connector"
)

// Review r9, finding 2 (severity: low: needs a provider, or whatever
// answers at its address, that stops answering; each such sign-in then
// holds a request, a goroutine and a connection in Caddy for good).
//
// The README (today) says of connector.NewProviderClient: "the HTTP
// client with a timeout ... the shipped connectors call their providers
// through it", and goth.go says providerTimeout "bounds every call to the
// provider". goth's auth0 and discord providers redeem the code with
// oauth2.NoContext (providers/auth0/session.go, providers/discord/
// session.go), so the HTTPClient field the connector sets by reflection
// is never used for the token request: it goes through
// http.DefaultClient, which has no timeout. A token endpoint that accepts
// the request and never answers keeps Finish (the callback request)
// waiting forever. Expected: Finish gives up with connector.ErrUnavailable
// after providerTimeout (10 s), as for every other provider call.
func TestReviewR9Auth0TokenRequestHasTheProviderTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			select { // a token endpoint that never answers
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	defer close(release)
	// The provider's certificate is trusted as a real one would be (by
	// every client using the default transport, the connector's too).
	dt := http.DefaultTransport.(*http.Transport)
	saved := dt.TLSClientConfig
	dt.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	defer func() { dt.TLSClientConfig = saved }()

	domain := strings.TrimPrefix(srv.URL, "https://")
	g := &Goth{Provider: "auth0", Key: "k", Secret: "s", BaseURL: domain}
	g.client = connector.NewProviderClient(providerTimeout)
	g.factory = gothFactories["auth0"]
	g.scopes = defaultProviderScopes["auth0"]
	cfg := *g
	g.cfg = &cfg

	login := connector.Login{Connection: "a0", State: "st", RedirectURI: "https://app.example/.jitauth/callback/a0"}
	_, state, err := g.Begin(httptest.NewRequest(http.MethodGet, "https://app.example/.jitauth/start/a0", nil), login)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://app.example/.jitauth/callback/a0?code=c&state=st", nil)
	done := make(chan error, 1)
	go func() {
		_, err := g.Finish(r, login, state)
		done <- err
	}()
	limit := providerTimeout + 5*time.Second
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Finish succeeded against a token endpoint that never answered")
		}
	case <-time.After(limit):
		t.Fatalf("Finish still waiting after %v on a token endpoint that never answers; want it to give up (connector.ErrUnavailable) after providerTimeout (%v)", limit, providerTimeout)
	}
}

package goth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/connector"
)

// goth's auth0 (and discord) redeem the code with oauth2's context-free
// Exchange, so Go's default client without a timeout, not the connector's
// client: a token endpoint that never answers ends the sign-in with
// connector.ErrUnavailable after the provider timeout, not never.
func TestTokenRequestOfAProviderWithoutOurClientTimesOut(t *testing.T) {
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
	saved := tokenTimeout
	tokenTimeout = 300 * time.Millisecond
	defer func() { tokenTimeout = saved }()
	// The provider's certificate is trusted as a real one would be (by
	// every client using the default transport, the connector's too).
	dt := http.DefaultTransport.(*http.Transport)
	savedTLS := dt.TLSClientConfig
	dt.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	defer func() { dt.TLSClientConfig = savedTLS }()

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
	limit := tokenTimeout + 5*time.Second
	select {
	case err := <-done:
		if !errors.Is(err, connector.ErrUnavailable) {
			t.Fatalf("Finish against a token endpoint that never answered: %v, want connector.ErrUnavailable", err)
		}
	case <-time.After(limit):
		t.Fatalf("Finish still waiting after %v on a token endpoint that never answers; want it to give up (connector.ErrUnavailable) after %v", limit, tokenTimeout)
	}
}

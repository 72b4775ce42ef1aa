package goth

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/connector"
)

// goth's auth0 (and discord) redeem the code with oauth2's context-free
// Exchange, so Go's default client without a timeout, not the connector's
// client: a token endpoint that never answers ends the sign-in with
// connector.ErrUnavailable after the provider timeout, not never.
func TestTokenRequestOfAProviderWithoutOurClientTimesOut(t *testing.T) {
	addr, _ := hangingEndpoint(t)
	saved := tokenTimeout
	tokenTimeout = 300 * time.Millisecond
	defer func() { tokenTimeout = saved }()

	g := auth0At(addr)

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

// Callbacks against a token endpoint that never answers (anyone can make
// them, with flow cookies of their own) leave a bounded number of
// requests behind: past pendingExchanges' slots a sign-in gives up at
// once, without a new connection.
func TestTokenRequestsLeftBehindAreBounded(t *testing.T) {
	addr, held := hangingEndpoint(t)
	savedTimeout, savedSlots := tokenTimeout, pendingExchanges
	tokenTimeout, pendingExchanges = 50*time.Millisecond, make(chan struct{}, 3)
	defer func() { tokenTimeout, pendingExchanges = savedTimeout, savedSlots }()

	g := auth0At(addr)
	login := connector.Login{Connection: "a0", State: "st", RedirectURI: "https://app.example/.jitauth/callback/a0"}
	for range 10 {
		_, state, err := g.Begin(httptest.NewRequest(http.MethodGet, "https://app.example/.jitauth/start/a0", nil), login)
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodGet, "https://app.example/.jitauth/callback/a0?code=c&state=st", nil)
		if _, err := g.Finish(r, login, state); !errors.Is(err, connector.ErrUnavailable) {
			t.Fatalf("Finish against a token endpoint that never answers: %v, want connector.ErrUnavailable", err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the requests' dials reach the listener
	if n := held(); n > 3 {
		t.Fatalf("%d connections held by token requests left behind; want at most the 3 slots", n)
	}
}

// hangingEndpoint is an address that takes connections and never
// answers, not even the TLS handshake, and held counts the connections
// it took. Both close with the test.
func hangingEndpoint(t *testing.T) (addr string, held func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// auth0At is a provisioned auth0 goth connector whose instance is addr.
func auth0At(addr string) *Goth {
	g := &Goth{Provider: "auth0", Key: "k", Secret: "s", BaseURL: addr}
	g.client = connector.NewProviderClient(providerTimeout)
	g.factory = gothFactories["auth0"]
	g.scopes = defaultProviderScopes["auth0"]
	cfg := *g
	g.cfg = &cfg
	return g
}

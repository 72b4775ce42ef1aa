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
	// A token endpoint that takes the connection and never answers, not
	// even the TLS handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	saved := tokenTimeout
	tokenTimeout = 300 * time.Millisecond
	defer func() { tokenTimeout = saved }()

	domain := ln.Addr().String()
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

// Callbacks against a token endpoint that never answers (anyone can make
// them, with flow cookies of their own) leave a bounded number of
// requests behind: past pendingExchanges' slots a sign-in gives up at
// once, without a new connection.
func TestTokenRequestsLeftBehindAreBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	savedTimeout, savedSlots := tokenTimeout, pendingExchanges
	tokenTimeout, pendingExchanges = 50*time.Millisecond, make(chan struct{}, 3)
	defer func() { tokenTimeout, pendingExchanges = savedTimeout, savedSlots }()

	g := &Goth{Provider: "auth0", Key: "k", Secret: "s", BaseURL: ln.Addr().String()}
	g.client = connector.NewProviderClient(providerTimeout)
	g.factory = gothFactories["auth0"]
	g.scopes = defaultProviderScopes["auth0"]
	cfg := *g
	g.cfg = &cfg
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
	mu.Lock()
	n := len(held)
	mu.Unlock()
	if n > 3 {
		t.Fatalf("%d connections held by token requests left behind; want at most the 3 slots", n)
	}
}

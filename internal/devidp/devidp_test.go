package devidp_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/jitauth/caddy-jitauth/internal/devidp"
)

const redirectURI = "http://localhost:8080/.jitauth/callback/test"

var alice = devidp.User{
	ID:            "u-alice",
	Username:      "alice",
	Password:      "wonderland",
	GivenName:     "Alice",
	FamilyName:    "Liddell",
	Email:         "alice@example.com",
	EmailVerified: true,
	Groups:        []string{"staff", "admins"},
}

var bob = devidp.User{
	Username: "bob",
	Password: "builder",
	Email:    "bob@example.com",
}

// start runs a provider with alice, bob and the clients "rp" (full ID
// token) and "minimal" (MinimalIDToken).
func start(t *testing.T) *devidp.Server {
	t.Helper()
	s, err := devidp.Start("127.0.0.1:0", []devidp.User{alice, bob}, []devidp.Client{
		{ID: "rp", Secret: "rp-secret", RedirectURIs: []string{redirectURI},
			PostLogoutRedirectURIs: []string{"http://localhost:8080/bye"}},
		{ID: "minimal", Secret: "minimal-secret", RedirectURIs: []string{redirectURI}, MinimalIDToken: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func random(t *testing.T) string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

type rp struct {
	provider *oidc.Provider
	config   oauth2.Config
}

func newRP(t *testing.T, ctx context.Context, s *devidp.Server, clientID, secret string) *rp {
	t.Helper()
	p, err := oidc.NewProvider(ctx, s.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	return &rp{p, oauth2.Config{
		ClientID: clientID, ClientSecret: secret,
		Endpoint:    p.Endpoint(),
		RedirectURL: redirectURI,
		Scopes:      []string{oidc.ScopeOpenID, "email", "profile"},
	}}
}

// authorize sends the browser to the authorization endpoint the way a
// relying party would (302), then logs in; it returns the callback URL the
// provider redirected to.
func authorize(t *testing.T, c *http.Client, authURL, username, password string) *url.URL {
	t.Helper()
	noFollow := *c
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noFollow.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorization endpoint: %s, want 302 to the login page", resp.Status)
	}
	loginPage, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	resp, err = devidp.Login(c, loginPage.String(), username, password)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("after login: %s, want 302", resp.Status)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %s, want the redirect URI %s", loc, redirectURI)
	}
	return loc
}

func TestIssuerMatchesDiscovery(t *testing.T) {
	s := start(t)
	if strings.HasSuffix(s.Issuer(), "/") || !strings.HasPrefix(s.Issuer(), "http://127.0.0.1:") {
		t.Errorf("Issuer() = %q, want http://127.0.0.1:<port> without trailing slash", s.Issuer())
	}
	resp, err := http.Get(s.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var disc struct {
		Issuer                string   `json:"issuer"`
		AuthorizationEndpoint string   `json:"authorization_endpoint"`
		CodeChallengeMethods  []string `json:"code_challenge_methods_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&disc); err != nil {
		t.Fatal(err)
	}
	if disc.Issuer != s.Issuer() {
		t.Errorf("discovery issuer %q != Issuer() %q", disc.Issuer, s.Issuer())
	}
	if disc.AuthorizationEndpoint != s.Issuer()+"/auth" {
		t.Errorf("authorization_endpoint = %q", disc.AuthorizationEndpoint)
	}
	if !strings.Contains(strings.Join(disc.CodeChallengeMethods, " "), "S256") {
		t.Errorf("code_challenge_methods_supported = %v, want S256", disc.CodeChallengeMethods)
	}
}

func TestAuthorizationCodeFlowWithPKCE(t *testing.T) {
	ctx := context.Background()
	s := start(t)
	r := newRP(t, ctx, s, "rp", "rp-secret")

	state, nonce, verifier := random(t), random(t), oauth2.GenerateVerifier()
	authURL := r.config.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	cb := authorize(t, browser(t), authURL, "alice", "wonderland")
	if got := cb.Query().Get("state"); got != state {
		t.Fatalf("state = %q, want %q", got, state)
	}
	code := cb.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", cb)
	}

	tok, err := r.config.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		t.Fatal("no id_token in token response")
	}
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: "rp"}).Verify(ctx, rawID)
	if err != nil {
		t.Fatal(err)
	}
	if idt.Nonce != nonce {
		t.Errorf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	if idt.Issuer != s.Issuer() || idt.Subject != "u-alice" {
		t.Errorf("iss, sub = %q, %q", idt.Issuer, idt.Subject)
	}
	var claims struct {
		Email             string   `json:"email"`
		EmailVerified     *bool    `json:"email_verified"`
		Name              string   `json:"name"`
		GivenName         string   `json:"given_name"`
		FamilyName        string   `json:"family_name"`
		PreferredUsername string   `json:"preferred_username"`
		Groups            []string `json:"groups"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Email != "alice@example.com" || claims.EmailVerified == nil || !*claims.EmailVerified {
		t.Errorf("email, email_verified = %q, %v", claims.Email, claims.EmailVerified)
	}
	if claims.Name != "Alice Liddell" || claims.GivenName != "Alice" || claims.FamilyName != "Liddell" {
		t.Errorf("name, given_name, family_name = %q, %q, %q", claims.Name, claims.GivenName, claims.FamilyName)
	}
	if claims.PreferredUsername != "alice" {
		t.Errorf("preferred_username = %q", claims.PreferredUsername)
	}
	if strings.Join(claims.Groups, ",") != "staff,admins" {
		t.Errorf("groups = %v", claims.Groups)
	}

	// The userinfo endpoint agrees.
	ui, err := r.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	if ui.Subject != "u-alice" || ui.Email != "alice@example.com" || !ui.EmailVerified {
		t.Errorf("userinfo: %+v", ui)
	}

	// A code is good once.
	if _, err := r.config.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err == nil {
		t.Error("second exchange of the same code succeeded")
	}
}

func TestPKCEIsEnforced(t *testing.T) {
	ctx := context.Background()
	s := start(t)
	r := newRP(t, ctx, s, "rp", "rp-secret")
	verifier := oauth2.GenerateVerifier()

	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"wrong verifier":   {oauth2.VerifierOption(oauth2.GenerateVerifier())},
		"missing verifier": nil,
	} {
		t.Run(name, func(t *testing.T) {
			authURL := r.config.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))
			cb := authorize(t, browser(t), authURL, "alice", "wonderland")
			if _, err := r.config.Exchange(ctx, cb.Query().Get("code"), opts...); err == nil {
				t.Error("exchange succeeded")
			}
		})
	}
}

func TestMinimalIDTokenNeedsUserinfo(t *testing.T) {
	ctx := context.Background()
	s := start(t)
	r := newRP(t, ctx, s, "minimal", "minimal-secret")
	nonce := random(t)
	cb := authorize(t, browser(t), r.config.AuthCodeURL("st", oidc.Nonce(nonce)), "bob", "builder")
	tok, err := r.config.Exchange(ctx, cb.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	idt, err := r.provider.Verifier(&oidc.Config{ClientID: "minimal"}).Verify(ctx, tok.Extra("id_token").(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	idt.Claims(&claims)
	if idt.Subject != "bob" || idt.Nonce != nonce {
		t.Errorf("sub, nonce = %q, %q", idt.Subject, idt.Nonce)
	}
	if _, ok := claims["email"]; ok {
		t.Errorf("minimal ID token has email: %v", claims)
	}
	ui, err := r.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatal(err)
	}
	if ui.Email != "bob@example.com" || ui.EmailVerified {
		t.Errorf("userinfo email, verified = %q, %v", ui.Email, ui.EmailVerified)
	}
	var uiClaims map[string]any
	ui.Claims(&uiClaims)
	if name, ok := uiClaims["name"]; ok && name != "" {
		t.Errorf("bob has no name, userinfo says %q", name)
	}
}

func TestLoginRejectsWrongPassword(t *testing.T) {
	ctx := context.Background()
	s := start(t)
	r := newRP(t, ctx, s, "rp", "rp-secret")
	// Login accepts the authorization URL too and follows to the form.
	_, err := devidp.Login(browser(t), r.config.AuthCodeURL("st"), "alice", "queen-of-hearts")
	if err == nil || !strings.Contains(err.Error(), "rejected") {
		t.Fatalf("err = %v, want credentials rejected", err)
	}
	_, err = devidp.Login(browser(t), r.config.AuthCodeURL("st"), "nobody", "x")
	if err == nil {
		t.Fatal("unknown user logged in")
	}
}

func TestUnregisteredRedirectURIIsRefused(t *testing.T) {
	ctx := context.Background()
	s := start(t)
	r := newRP(t, ctx, s, "rp", "rp-secret")
	r.config.RedirectURL = "http://evil.example/callback"
	resp, err := browser(t).Get(r.config.AuthCodeURL("st"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.Host != strings.TrimPrefix(s.Issuer(), "http://") || strings.Contains(string(body), `type="password"`) {
		t.Fatalf("unregistered redirect_uri: ended at %s (%s)", resp.Request.URL, resp.Status)
	}
}

func TestEndSession(t *testing.T) {
	ctx := context.Background()
	s := start(t)
	r := newRP(t, ctx, s, "rp", "rp-secret")
	cb := authorize(t, browser(t), r.config.AuthCodeURL("st"), "alice", "wonderland")
	tok, err := r.config.Exchange(ctx, cb.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := r.provider.Claims(&meta); err != nil || meta.EndSession == "" {
		t.Fatalf("end_session_endpoint: %q, %v", meta.EndSession, err)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for post, want := range map[string]string{
		"http://localhost:8080/bye":   "http://localhost:8080/bye?state=xyz",
		"http://localhost:8080/other": "", // unregistered: refused
	} {
		q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {post}, "state": {"xyz"}}
		resp, err := noFollow.Get(meta.EndSession + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("end_session to %s: %s, Location %q, want %q", post, resp.Status, got, want)
		}
	}
}

func TestStartValidates(t *testing.T) {
	for name, tc := range map[string]struct {
		users   []devidp.User
		clients []devidp.Client
	}{
		"duplicate user":      {users: []devidp.User{alice, alice}},
		"client without URIs": {clients: []devidp.Client{{ID: "x", Secret: "y"}}},
		"client without ID":   {clients: []devidp.Client{{Secret: "y", RedirectURIs: []string{redirectURI}}}},
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := devidp.Start("127.0.0.1:0", tc.users, tc.clients); err == nil {
				s.Close()
				t.Fatal("Start succeeded")
			}
		})
	}
}

// The login form is styled by its own style sheet, which the page's
// Content-Security-Policy allows by hash and nothing else: no scripts, no
// 'unsafe-inline'.
func TestLoginPageStyleIsAllowedByItsCSP(t *testing.T) {
	ctx := context.Background()
	s := start(t)
	r := newRP(t, ctx, s, "rp", "rp-secret")
	resp, err := browser(t).Get(r.config.AuthCodeURL("st"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	csp := resp.Header.Get("Content-Security-Policy")
	i, j := strings.Index(page, "<style>"), strings.Index(page, "</style>")
	if resp.StatusCode != http.StatusOK || i < 0 || j < i || !strings.Contains(page, `id="password"`) {
		t.Fatalf("login page: %d\n%s", resp.StatusCode, page)
	}
	css := page[i+len("<style>") : j]
	sum := sha256.Sum256([]byte(css))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if !strings.Contains(csp, "style-src "+hash) || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q does not allow exactly the page's style sheet %s", csp, hash)
	}
	if !strings.Contains(css, "button{") || strings.Contains(page, " style=") || strings.Contains(page, "<script") {
		t.Errorf("the page is not styled by its one style sheet:\n%s", page)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
}

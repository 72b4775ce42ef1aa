package caddymodule_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// bearerClaims is a token the provider would issue for alice to an API
// (aud api://wiki), valid for five minutes.
func bearerClaims(issuer, sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": issuer, "sub": sub, "aud": []string{"api://wiki"}, "iat": now.Unix(),
		"exp": now.Add(5 * time.Minute).Unix(), "email": "alice@example.com", "email_verified": true, "groups": []string{"staff"}}
}

// callAPI sends a request with only an Authorization header, as an API
// client does, and returns the status, the body and WWW-Authenticate.
func callAPI(t *testing.T, base, token string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/items", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Get("WWW-Authenticate")
}

func signWith(t *testing.T, kp *mockoidc.Keypair, c jwt.MapClaims) string {
	t.Helper()
	tok, err := kp.SignJWT(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// unsignedToken is c with alg none and no signature.
func unsignedToken(c jwt.MapClaims) string {
	head, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	body, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(head) + "." + base64.RawURLEncoding.EncodeToString(body) + "."
}

func TestBearerTokensAcceptedAndRefused(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		globalExtra:  "\t\tuser_status_refresh 1s\n",
		handlerBlock: "\t\tbearer corp {\n\t\t\taudience api://wiki api://other\n\t\t}\n\t\tbearer partner {\n\t\t\taudience api://wiki\n\t\t\tpass_through\n\t\t}\n\t\tassertion\n",
	})
	iss := s.idp.Config().Issuer
	// alice has signed in once in a browser, so she has a local user.
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	st := openStore(t, s.dir)
	users := allUsers(t, st)
	if len(users) != 1 {
		t.Fatalf("%d users", len(users))
	}

	// A valid token: the upstream gets alice's identity, the same as her
	// browser session's, the signed assertion too, and not the token.
	code, body, _ := callAPI(t, s.base, signWith(t, s.idp.Keypair, bearerClaims(iss, "alice-sub")))
	if code != http.StatusOK {
		t.Fatalf("valid bearer token: %d %s", code, body)
	}
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-User") != users[0].Username || h.Get("X-Auth-Local-Id") != users[0].ID || h.Get("Authorization") != "" ||
		h.Get("Jit-Assertion") == "" || h.Get("X-Auth-Connection") != "corp" {
		t.Fatalf("upstream headers for a bearer request: %v", h)
	}
	if _, err := assertionVerifier(s.base, s.base, nil).Verify(context.Background(), h.Get("Jit-Assertion")); err != nil {
		t.Fatalf("assertion for a bearer request: %v", err)
	}

	// The RSA public key, as an attacker would fetch it from the JWKS.
	pubDER, _ := x509.MarshalPKIXPublicKey(&s.idp.Keypair.PrivateKey.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs256 := func(key []byte) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, bearerClaims(iss, "alice-sub"))
		kid, _ := s.idp.Keypair.KeyID()
		tok.Header["kid"] = kid
		v, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	other, err := mockoidc.RandomKeypair(1024)
	if err != nil {
		t.Fatal(err)
	}
	otherKid, _ := s.idp.Keypair.KeyID()
	other.Kid = otherKid
	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := bearerClaims(iss, "alice-sub")
		edit(c)
		return c
	}
	// A back-channel logout token: signed by the provider's key, with a
	// subject, an expiry and an audience the bearer accepts.
	logoutToken := signWith(t, s.idp.Keypair, with(func(c jwt.MapClaims) {
		c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
	}))
	for name, c := range map[string]struct {
		token  string
		status int
		says   string
	}{
		"wrong aud":          {signWith(t, s.idp.Keypair, with(func(c jwt.MapClaims) { c["aud"] = "api://elsewhere" })), 401, "audience"},
		"alg none":           {unsignedToken(bearerClaims(iss, "alice-sub")), 401, "invalid_token"},
		"HS256, public PEM":  {hs256(pubPEM), 401, "invalid_token"},
		"HS256, public DER":  {hs256(pubDER), 401, "invalid_token"},
		"expired":            {signWith(t, s.idp.Keypair, with(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), 401, "expired"},
		"no exp":             {signWith(t, s.idp.Keypair, with(func(c jwt.MapClaims) { delete(c, "exp") })), 401, "invalid_token"},
		"not yet valid":      {signWith(t, s.idp.Keypair, with(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), 401, "nbf"},
		"other issuer":       {signWith(t, s.idp.Keypair, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), 401, "invalid_token"},
		"another key":        {signWith(t, other, bearerClaims(iss, "alice-sub")), 401, "invalid_token"},
		"opaque":             {"2YotnFZFEjr1zCsicMWpAA", 401, "opaque tokens are not accepted"},
		"garbage JWT":        {"a.b.c", 401, "invalid_token"},
		"no local user":      {signWith(t, s.idp.Keypair, bearerClaims(iss, "mallory-sub")), 401, "sign in once in a browser"},
		"signature stripped": {strings.Join(strings.Split(signWith(t, s.idp.Keypair, bearerClaims(iss, "alice-sub")), ".")[:2], ".") + ".", 401, "invalid_token"},
		"logout token":       {logoutToken, 401, "logout token"},
	} {
		code, body, wa := callAPI(t, s.base, c.token)
		if code != c.status || !strings.Contains(body+wa, c.says) || !strings.HasPrefix(wa, "Bearer error=") {
			t.Errorf("%s: %d %q (WWW-Authenticate %q), want %d saying %q", name, code, body, wa, c.status, c.says)
		}
		if strings.Contains(body+wa, c.token) {
			t.Errorf("%s: the refusal echoes the token", name)
		}
	}
	// A token never creates a user.
	if n := len(allUsers(t, st)); n != 1 {
		t.Fatalf("bearer requests changed the directory: %d users", n)
	}

	// JIT off (partner): the name comes from the claims as at a login,
	// and pass_through keeps the token for the upstream.
	partnerTok := signWith(t, s.idp.Keypair, bearerClaims(iss, "alice-sub"))
	code, body, _ = callAPI(t, s.base, partnerTok)
	if code != http.StatusOK {
		t.Fatalf("partner token: %d %s", code, body)
	}

	// A disabled user's token stops working within user_status_refresh.
	if err := st.SetStatus(context.Background(), users[0].ID, provisioner.StatusDisabled, "left"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a disabled user's bearer token is refused", 5*time.Second, func() bool {
		code, _, _ := callAPI(t, s.base, signWith(t, s.idp.Keypair, bearerClaims(iss, "alice-sub")))
		return code == http.StatusForbidden
	})
}

// A token for a connection whose JIT is off names its user the way a
// browser login through it would, and pass_through forwards the token.
func TestBearerJITOffAndPassThrough(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		handlerBlock: "\t\tconnections partner\n\t\tbearer partner {\n\t\t\taudience api://wiki\n\t\t\tpass_through\n\t\t}\n",
	})
	tok := signWith(t, s.idp.Keypair, bearerClaims(s.idp.Config().Issuer, "alice-sub"))
	code, body, _ := callAPI(t, s.base, tok)
	if code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-User") != "alice@example.com" || h.Get("Authorization") != "Bearer "+tok || h.Get("X-Auth-Provisioned") != "false" {
		t.Fatalf("upstream headers: %v", h)
	}
	// No bearer block for corp: a token is not a session there, and an
	// API client gets the usual 401 for a request without a session.
	if n := len(allUsers(t, openStore(t, s.dir))); n != 0 {
		t.Fatalf("%d users", n)
	}
}

// An application that requires a second factor refuses a token whose
// amr does not show one, unless told otherwise.
func TestBearerAndMFA(t *testing.T) {
	s := startSiteOpts(t, siteOptions{application: "app", globalExtra: `
		application app {
			mfa totp {
				skip_for partner
			}
			bearer corp {
				audience api://wiki
			}
		}`})
	iss := s.idp.Config().Issuer
	s.queue(alice())
	s.login(newBrowser(t), "corp", "/") // creates the local user; stops at the MFA page
	code, body, wa := callAPI(t, s.base, signWith(t, s.idp.Keypair, bearerClaims(iss, "alice-sub")))
	if code != http.StatusUnauthorized || !strings.Contains(wa, "insufficient_user_authentication") {
		t.Fatalf("a token without amr mfa: %d %s %s", code, body, wa)
	}
	c := bearerClaims(iss, "alice-sub")
	c["amr"] = []string{"pwd", "mfa"}
	if code, body, _ := callAPI(t, s.base, signWith(t, s.idp.Keypair, c)); code != http.StatusOK {
		t.Fatalf("a token with amr mfa: %d %s", code, body)
	}
}

func TestBearerMisconfigurationsSayWhatToFix(t *testing.T) {
	for name, c := range map[string]struct{ block, want string }{
		"no audience":    {"bearer corp", "needs at least one audience"},
		"empty audience": {"bearer corp {\n audience \"\"\n }", "an empty audience"},
		"blank audience": {"bearer corp {\n audience x \" \"\n }", "an empty audience"},
		"hmac":           {"bearer corp {\n audience x\n algorithms HS256\n }", `algorithm "HS256" is not accepted`},
		"none":           {"bearer corp {\n audience x\n algorithms none\n }", `algorithm "none" is not accepted`},
		"unknown conn":   {"bearer nope {\n audience x\n }", `bearer "nope" is not one of this application's connections`},
		"goth":           {"bearer gh {\n audience x\n }", "cannot verify bearer tokens"},
		"twice":          {"bearer corp {\n audience x\n }\n bearer corp {\n audience y\n }", "given twice"},
		"unknown field":  {"bearer corp {\n audience x\n scopes y\n }", `unknown bearer option "scopes"`},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			err := validate(t, "{\n\tadmin off\n\tstorage file_system "+dir+"/storage\n\tjit_auth {\n\t\tstore sqlite "+dir+"/users.db\n\t\tconnection corp {\n oidc https://idp.example a b\n }\n\t\tconnection gh {\n goth github k s\n }\n\t}\n}\nhttp://localhost:1 {\n\tjit_auth {\n"+c.block+"\n\t}\n\trespond ok\n}\n")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// Tokens anyone can forge (a made-up key ID, or a known one with a
// signature that does not verify) must not each make the provider's keys
// be fetched again: go-oidc's key set re-reads the JWKS for every token
// that fails, which turned each request to an API route or to the
// back-channel logout endpoint into a request to the provider. Keys are
// re-read for an unknown key at most once per interval (30 s).
func TestForgedTokensDoNotRefetchTheProvidersKeys(t *testing.T) {
	var fetches atomic.Int64
	countJWKS := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "jwks.json") {
				fetches.Add(1)
			}
			next.ServeHTTP(w, r)
		})
	}
	s := startSiteOpts(t, siteOptions{
		idpMiddleware: []func(http.Handler) http.Handler{countJWKS},
		corpExtra:     "backchannel_logout",
		handlerBlock:  "\t\tbearer corp {\n\t\t\taudience api://wiki\n\t\t}\n",
	})
	iss := s.idp.Config().Issuer
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if code, body, _ := callAPI(t, s.base, signWith(t, s.idp.Keypair, bearerClaims(iss, "alice-sub"))); code != http.StatusOK {
		t.Fatalf("valid token: %d %s", code, body)
	}
	before := fetches.Load()
	if before == 0 {
		t.Fatal("the provider's keys were never fetched: the counter does not see them")
	}
	realKid, _ := s.idp.Keypair.KeyID()
	for i := range 20 {
		forger, err := mockoidc.RandomKeypair(1024)
		if err != nil {
			t.Fatal(err)
		}
		forger.Kid = fmt.Sprintf("made-up-%d", i)
		if i%2 == 1 {
			forger.Kid = realKid
		}
		if code, _, _ := callAPI(t, s.base, signWith(t, forger, bearerClaims(iss, "alice-sub"))); code != http.StatusUnauthorized {
			t.Fatalf("forged bearer token %d: %d", i, code)
		}
		lt := jwt.MapClaims{"iss": iss, "aud": s.idp.ClientID, "iat": time.Now().Unix(), "jti": fmt.Sprint("forged-", i), "sub": "alice-sub",
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
		if code, _ := postLogoutToken(t, s.base, "corp", signWith(t, forger, lt)); code != http.StatusBadRequest {
			t.Fatalf("forged logout token %d: %d", i, code)
		}
	}
	if n := fetches.Load() - before; n > 1 {
		t.Errorf("40 forged tokens made %d fetches of the provider's keys, want at most 1", n)
	}
	if code, body, _ := callAPI(t, s.base, signWith(t, s.idp.Keypair, bearerClaims(iss, "alice-sub"))); code != http.StatusOK {
		t.Fatalf("valid token after the forged ones: %d %s", code, body)
	}
}

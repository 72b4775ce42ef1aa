// Package devidp is a local OpenID Connect provider for the offline demo and
// for end-to-end tests. It runs the real OP of github.com/zitadel/oidc/v3
// (package op) over the module's in-memory example storage, with our own
// users and clients and a minimal HTML login form.
//
// It is a development tool: passwords are compared in plain text, nothing
// is persisted, and every Start generates fresh signing and encryption keys.
//
// Behaviour worth knowing for relying parties:
//
//   - The issuer is "http://<listen address>" with no trailing slash, e.g.
//     "http://127.0.0.1:9998"; discovery reports exactly that string.
//   - The authorization endpoint is <issuer>/auth (not /authorize).
//   - Authorization code flow with or without PKCE (plain and S256); client
//     authentication by client_secret_basic or client_secret_post.
//   - The nonce of the authorization request is put into the ID token.
//   - By default the ID token carries the user's claims for the requested
//     scopes (see [Client.MinimalIDToken]): sub (= User.ID), for "email"
//     email and email_verified, for "profile" name, given_name,
//     family_name, preferred_username (= User.Username), locale ("en") and,
//     if the user has any, groups. The userinfo endpoint returns the same.
//   - There is no single sign-on session at the provider: every
//     authorization request shows the login form (prompt=none fails with
//     login_required).
//   - http:// redirect URIs are accepted (the clients are in dev mode) but
//     must match a registered URI exactly.
package devidp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is an account at the provider.
type User struct {
	// ID is the subject (sub claim); empty means Username.
	ID string
	// Username is what the login form asks for and what the
	// preferred_username claim carries.
	Username      string
	Password      string
	GivenName     string
	FamilyName    string
	Email         string
	EmailVerified bool
	// Groups, if any, are sent as the "groups" claim with the profile scope.
	Groups []string
}

// Client is a registered confidential web client (relying party).
type Client struct {
	ID, Secret string
	// RedirectURIs are matched exactly; http:// is allowed.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the URIs the end_session endpoint may
	// redirect to (post_logout_redirect_uri). Without a match, or without
	// one given, it redirects to <issuer>/logged-out.
	PostLogoutRedirectURIs []string
	// MinimalIDToken makes the provider behave like ZITADEL's default and
	// the OIDC Core rule for code flow: the ID token then has no user
	// claims beyond sub, and a relying party must call the userinfo
	// endpoint for email and profile. False (the default) asserts them in
	// the ID token, like most hosted providers do.
	MinimalIDToken bool
}

// Server is a running provider. Close stops it.
type Server struct {
	issuer string
	ln     net.Listener
	srv    *http.Server
	done   chan struct{}
}

// loggedOutPath is where end_session redirects when the relying party gave
// no (registered) post_logout_redirect_uri.
const loggedOutPath = "/logged-out"

// Start listens on addr ("127.0.0.1:0" for a free port) and serves the
// provider in the background. The issuer is derived from the listener's
// address, see [Server.Issuer].
func Start(addr string, users []User, clients []Client) (*Server, error) {
	us, err := newUserStore(users)
	if err != nil {
		return nil, err
	}
	clientCfg := make(map[string]Client, len(clients))
	exampleClients := make(map[string]*storage.Client, len(clients))
	for _, c := range clients {
		if c.ID == "" {
			return nil, errors.New("devidp: client without ID")
		}
		if _, dup := clientCfg[c.ID]; dup {
			return nil, fmt.Errorf("devidp: duplicate client %q", c.ID)
		}
		if len(c.RedirectURIs) == 0 {
			// storage.WebClient would substitute its own example URI.
			return nil, fmt.Errorf("devidp: client %q has no redirect URIs", c.ID)
		}
		clientCfg[c.ID] = c
		exampleClients[c.ID] = storage.WebClient(c.ID, c.Secret, c.RedirectURIs...)
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	issuer := "http://" + ln.Addr().String()

	st := &opStorage{
		Storage: storage.NewStorageWithClients(us, exampleClients),
		clients: clientCfg,
		users:   us,
	}
	handler, err := newHandler(issuer, st)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if os.Getenv("DEVIDP_LOG") != "" {
		handler = logRequests(handler)
	}

	s := &Server{
		issuer: issuer,
		ln:     ln,
		srv: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: 10 * time.Second,
			// The OP logs its errors through slog; http.Server's own
			// messages (bad TLS handshakes and the like) are noise here.
			ErrorLog: log.New(discard{}, "", 0),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return s, nil
}

// Issuer is the exact issuer string, as it appears in discovery and in the
// iss claim: "http://host:port", without a trailing slash.
func (s *Server) Issuer() string { return s.issuer }

// Close stops the server, waiting briefly for requests in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = s.srv.Close()
	}
	<-s.done
	return err
}

func newHandler(issuer string, st *opStorage) (http.Handler, error) {
	var key [32]byte // encrypts opaque access tokens
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:                key,
		CryptoKeyId:              "devidp",
		DefaultLogoutRedirectURI: loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English},
	}, st, op.StaticIssuer(issuer),
		op.WithAllowInsecure(), // http:// issuer
		// As in the module's example OP; spelled out so it is visible
		// here that the endpoint is /auth and not /authorize.
		op.WithCustomAuthEndpoint(op.NewEndpoint("auth")),
	)
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}

	callback := op.AuthCallbackURL(provider)
	interceptor := op.NewIssuerInterceptor(provider.IssuerFromRequest)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/username", func(w http.ResponseWriter, r *http.Request) {
		renderLogin(w, http.StatusOK, r.FormValue("authRequestID"), "", "")
	})
	mux.Handle("POST /login/username", interceptor.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, username := r.PostFormValue("id"), r.PostFormValue("username")
		if err := st.CheckUsernamePassword(username, r.PostFormValue("password"), id); err != nil {
			renderLogin(w, http.StatusUnauthorized, id, username, err.Error())
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	}))
	mux.HandleFunc("GET "+loggedOutPath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "Signed out of the development identity provider.")
	})
	mux.Handle("/", provider)
	return mux, nil
}

// loginCSS styles the login form like jit_auth's own pages: this is the
// first page a newcomer to the demo sees.
const loginCSS = `body{font:16px/1.5 system-ui,sans-serif;background:#f5f6f8;color:#1d2330;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem 2.5rem;max-width:24rem;width:100%;margin:2rem 1rem;box-sizing:border-box}
h1{font-size:1.35rem;margin:0 0 .5rem}
p{margin:.25rem 0 1rem;color:#3b4252}
p.note{color:#5b6475;font-size:.85rem}
label{display:block;font-weight:600;margin:.75rem 0 .25rem}
input{display:block;width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #c5cad6;border-radius:6px;font:inherit}
input:focus{outline:2px solid #2f5bea;outline-offset:1px;border-color:#2f5bea}
.error{color:#b3261e;font-weight:600}
button{display:block;width:100%;border:0;padding:.7rem 1rem;border-radius:8px;margin:1.25rem 0 .25rem;font:inherit;font-weight:600;cursor:pointer;background:#2f5bea;color:#fff}
button:hover{background:#2347c4}`

// loginCSP allows exactly the page's own style sheet, by its hash: no
// scripts, no other inline styles, no external resources, no framing.
// It sets no form-action: the form's answer redirects to the relying
// party, which browsers check against form-action too.
var loginCSP = func() string {
	sum := sha256.Sum256([]byte(loginCSS))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; frame-ancestors 'none'; base-uri 'none'"
}()

var loginPage = template.Must(template.New("login").Parse(`<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in – development identity provider</title>
<style>{{.CSS}}</style></head>
<body><main>
<form method="POST" action="/login/username">
<h1>Sign in</h1>
<p class="note">Development identity provider – not for real accounts.</p>
<input type="hidden" name="id" value="{{.ID}}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" value="{{.Username}}" autofocus>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
{{with .Error}}<p class="error" role="alert">{{.}}</p>{{end}}
<button type="submit">Sign in</button>
</form>
</main></body>
</html>
`))

func renderLogin(w http.ResponseWriter, status int, id, username, errMsg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", loginCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	loginPage.Execute(w, struct {
		CSS                 template.CSS
		ID, Username, Error string
	}{template.CSS(loginCSS), id, username, errMsg})
}

func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		log.Printf("devidp: %s %s (%s)", r.Method, r.URL.Path, time.Since(start).Round(time.Microsecond))
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// userStore implements storage.UserStore with our users.
type userStore struct {
	byID       map[string]*storage.User
	byUsername map[string]*storage.User
	groups     map[string][]string // by ID
}

func newUserStore(users []User) (*userStore, error) {
	us := &userStore{
		byID:       make(map[string]*storage.User, len(users)),
		byUsername: make(map[string]*storage.User, len(users)),
		groups:     make(map[string][]string),
	}
	for _, u := range users {
		if u.Username == "" {
			return nil, errors.New("devidp: user without username")
		}
		id := u.ID
		if id == "" {
			id = u.Username
		}
		if _, dup := us.byID[id]; dup {
			return nil, fmt.Errorf("devidp: duplicate user ID %q", id)
		}
		if _, dup := us.byUsername[u.Username]; dup {
			return nil, fmt.Errorf("devidp: duplicate username %q", u.Username)
		}
		su := &storage.User{
			ID:                id,
			Username:          u.Username,
			Password:          u.Password,
			FirstName:         u.GivenName,
			LastName:          u.FamilyName,
			Email:             u.Email,
			EmailVerified:     u.EmailVerified,
			PreferredLanguage: language.English,
		}
		us.byID[id] = su
		us.byUsername[u.Username] = su
		if len(u.Groups) > 0 {
			us.groups[id] = append([]string(nil), u.Groups...)
		}
	}
	return us, nil
}

func (u *userStore) GetUserByID(id string) *storage.User { return u.byID[id] }

func (u *userStore) GetUserByUsername(username string) *storage.User {
	return u.byUsername[username]
}

// ExampleClientID names the example storage's built-in JWT-profile service
// account; opStorage disables that grant, so nothing can use this.
func (u *userStore) ExampleClientID() string { return "devidp-no-service-account" }

// opStorage is the example storage with our client settings applied and
// the example's built-in service accounts switched off.
type opStorage struct {
	*storage.Storage
	clients map[string]Client
	users   *userStore
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	return &opClient{Client: c, cfg: s.clients[id]}, nil
}

// SetUserinfoFromRequest fills the ID token's user claims.
func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, userinfo *oidc.UserInfo, token op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, userinfo, token, scopes); err != nil {
		return err
	}
	s.fixUserinfo(userinfo, token.GetSubject(), scopes)
	return nil
}

// SetUserinfoFromToken fills the userinfo endpoint's response.
func (s *opStorage) SetUserinfoFromToken(ctx context.Context, userinfo *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, userinfo, tokenID, subject, origin); err != nil {
		return err
	}
	// The token's scopes are not visible from here; profile claims being
	// present means the profile scope was granted.
	var scopes []string
	if userinfo.PreferredUsername != "" {
		scopes = []string{oidc.ScopeProfile}
	}
	s.fixUserinfo(userinfo, userinfo.Subject, scopes)
	return nil
}

func (s *opStorage) fixUserinfo(userinfo *oidc.UserInfo, subject string, scopes []string) {
	// The example storage sets name to given + " " + family.
	userinfo.Name = strings.TrimSpace(userinfo.Name)
	for _, sc := range scopes {
		if sc == oidc.ScopeProfile {
			if g := s.users.groups[subject]; len(g) > 0 {
				userinfo.AppendClaims("groups", g)
			}
		}
	}
}

// ClientCredentials disables the example storage's hard-coded service user.
func (s *opStorage) ClientCredentials(context.Context, string, string) (op.Client, error) {
	return nil, errors.New("client credentials grant not supported")
}

// GetKeyByIDAndClientID disables the example storage's hard-coded
// JWT-profile key (whose private half is published with the example).
func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile grant not supported")
}

// opClient adjusts the example's web client.
type opClient struct {
	op.Client
	cfg Client
}

func (c *opClient) PostLogoutRedirectURIs() []string { return c.cfg.PostLogoutRedirectURIs }

func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return !c.cfg.MinimalIDToken }

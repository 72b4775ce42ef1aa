package caddymodule_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// site is a running Caddy with jit_auth in front of a recording upstream,
// logging in through a mockoidc provider on two connections: corp (JIT
// on) and partner (JIT off).
type site struct {
	t        *testing.T
	dir      string
	base     string
	idp      *mockoidc.MockOIDC
	upstream *upstream
	// caddyfile is the Caddyfile the site runs (before jsonReplace), for
	// a test that reloads it changed.
	caddyfile string
}

func startSite(t *testing.T, idpMiddleware ...func(http.Handler) http.Handler) *site {
	t.Helper()
	return startSiteWith(t, "", idpMiddleware...)
}

// startSiteWith is startSite with extra lines in the jit_auth block.
func startSiteWith(t *testing.T, handlerBlock string, idpMiddleware ...func(http.Handler) http.Handler) *site {
	t.Helper()
	return startSiteOpts(t, siteOptions{handlerBlock: handlerBlock, idpMiddleware: idpMiddleware})
}

type siteOptions struct {
	// handlerBlock is extra lines for the site's jit_auth block.
	handlerBlock string
	// idpMiddleware wraps the provider's endpoints.
	idpMiddleware []func(http.Handler) http.Handler
	// globalExtra is extra lines for the global jit_auth block.
	globalExtra string
	// faultyStore swaps the SQLite store module for test_failing: the
	// same SQLite file, with switchable faults (see failingStore).
	faultyStore bool
	// corpJIT is the body of corp's jit block; corpExtra is extra lines
	// for the corp connection.
	corpJIT, corpExtra string
	// auditLog sends Caddy's own log, at INFO, to s.logFile().
	auditLog bool
	// application attaches this named application (declare it in
	// globalExtra) instead of the inline handlerBlock.
	application string
	// adminPort, if set, serves Caddy's admin API on localhost:adminPort.
	adminPort int
	// store, if set, replaces the SQLite store line (for example
	// `store postgres "<url>"`).
	store string
	// jsonReplace are old, new pairs replaced in the adapted JSON config
	// (for what the Caddyfile cannot say, such as an events handler).
	jsonReplace []string
}

// logFile is where a site started with auditLog writes Caddy's log.
func (s *site) logFile() string { return s.dir + "/caddy.log" }

func startSiteOpts(t *testing.T, o siteOptions) *site {
	t.Helper()
	handlerBlock, idpMiddleware := o.handlerBlock, o.idpMiddleware
	s := &site{t: t, dir: t.TempDir(), idp: startMockOIDC(t, idpMiddleware...), upstream: newUpstream(t)}
	port := freePort(t)
	s.base = fmt.Sprintf("http://localhost:%d", port)
	cfg := s.idp.Config()
	conns := o.globalExtra + fmt.Sprintf(`
		connection corp {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
			display_name "Corp SSO"
			%[4]s
			jit {
				%[5]s
			}
		}
		connection partner {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, o.corpExtra, o.corpJIT)
	caddyfile := fmt.Sprintf(`{%s
}
http://localhost:%d {
	log {
		output file %s/access.log
	}
	jit_auth %s{
%s
	}
	reverse_proxy %s {
		header_up X-Auth-Id {http.auth.user.id}
		header_up X-Auth-Local-Id {http.auth.user.local_id}
		header_up X-Auth-Provisioned {http.auth.user.provisioned}
		header_up X-Auth-Connection {http.auth.user.connection}
		header_up X-Auth-Groups {http.auth.user.groups}
		header_up X-Auth-Roles {http.auth.user.roles}
	}
}
`, globalOptions(s.dir, conns), port, s.dir, o.application+" ", handlerBlock, s.upstream.hostPort())
	if o.adminPort != 0 {
		caddyfile = strings.Replace(caddyfile, "admin off", fmt.Sprintf("admin localhost:%d", o.adminPort), 1)
	}
	if o.store != "" {
		caddyfile = strings.Replace(caddyfile, "store sqlite "+s.dir+"/users.db", o.store, 1)
	}
	if o.auditLog {
		caddyfile = strings.Replace(caddyfile, "level ERROR", "output file "+s.logFile()+"\n\t\tlevel INFO", 1)
	}
	s.caddyfile = caddyfile
	if o.faultyStore || len(o.jsonReplace) > 0 {
		reps := o.jsonReplace
		if o.faultyStore {
			reps = append(reps, `"backend":"sqlite"`, `"backend":"test_failing"`)
		}
		runCaddyJSON(t, adaptCaddyfile(t, caddyfile, reps...))
	} else {
		runCaddyfile(t, caddyfile)
	}
	return s
}

// queue makes the provider log in this user next.
func (s *site) queue(u *oidcUser) { s.idp.QueueUser(u) }

// login runs a full browser login through conn, landing on path.
func (s *site) login(b *browser, conn, path string) (*http.Response, string) {
	s.t.Helper()
	resp, body, visited := b.follow(s.base+"/.jitauth/start/"+conn+"?rd="+url.QueryEscape(path), nil)
	s.t.Logf("visited %v", visited)
	return resp, body
}

func alice() *oidcUser {
	return &oidcUser{sub: "alice-sub", claims: map[string]any{
		"email": "alice@example.com", "email_verified": true,
		"name": "Alice Liddell", "preferred_username": "alice",
		"groups": []string{"staff", "wonderland"},
	}}
}

func TestBrowserLoginReachesUpstreamWithIdentity(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)

	// A browser navigation without a session goes to the login page,
	// which offers both connections.
	resp, body, _ := b.follow(s.base+"/reports/q3?year=2026", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Sign in with Corp SSO") || !strings.Contains(body, "Sign in with partner") {
		t.Fatalf("expected the login page, got %d: %s", resp.StatusCode, body)
	}
	if s.upstream.hits != 0 {
		t.Fatal("the upstream was reached without a session")
	}

	s.queue(alice())
	resp, _ = s.login(b, "corp", "/reports/q3?year=2026")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("final status %d", resp.StatusCode)
	}
	if got := resp.Request.URL.RequestURI(); got != "/reports/q3?year=2026" {
		t.Fatalf("landed on %q, want the original URL", got)
	}
	h := s.upstream.lastHeaders(t)
	want := map[string]string{
		"Remote-User":        "alice@example.com",
		"Remote-Email":       "alice@example.com",
		"Remote-Name":        "Alice Liddell",
		"Remote-Groups":      "staff,wonderland",
		"X-Auth-Id":          "alice@example.com",
		"X-Auth-Provisioned": "true",
		"X-Auth-Connection":  "corp",
		"X-Auth-Groups":      "staff,wonderland",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("upstream header %s = %q, want %q", k, got, v)
		}
	}
	if h.Get("X-Auth-Local-Id") == "" {
		t.Error("{http.auth.user.local_id} is empty for a provisioned user")
	}
	// The session cookie is HttpOnly and SameSite=Lax.
	if c := b.lastSetCookie("jitauth_session"); c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
		t.Errorf("session cookie attributes: %+v", c)
	}

	// The access log carries user_id.
	var found bool
	for _, line := range strings.Split(mustReadFile(t, s.dir+"/access.log"), "\n") {
		if strings.Contains(line, `"uri":"/reports/q3?year=2026"`) && strings.Contains(line, `"user_id":"alice@example.com"`) {
			found = true
		}
	}
	if !found {
		t.Errorf("access log has no entry with user_id for the request:\n%s", mustReadFile(t, s.dir+"/access.log"))
	}
}

func TestJITOnProvisionsOneUserAcrossLogins(t *testing.T) {
	s := startSite(t)
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first login: %d", resp.StatusCode)
	}
	// The provider now says something different about her.
	changed := alice()
	changed.claims["name"] = "Alice Kingsleigh"
	changed.claims["groups"] = []string{"staff"}
	s.queue(changed)
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("second login: %d", resp.StatusCode)
	}

	st := openStore(t, s.dir)
	users := allUsers(t, st)
	if len(users) != 1 {
		t.Fatalf("%d users after two logins, want 1: %+v", len(users), users)
	}
	u := users[0]
	if u.Name != "Alice Kingsleigh" || strings.Join(u.Groups, ",") != "staff" || u.Username != "alice@example.com" || !u.EmailVerified {
		t.Errorf("user not updated from the second login: %+v", u)
	}
	if u.LastLoginAt.IsZero() || !u.LastLoginAt.After(u.CreatedAt) {
		t.Errorf("last login %v not after creation %v", u.LastLoginAt, u.CreatedAt)
	}
	ids, err := st.Identities(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0].Connection != "corp" || ids[0].Subject != "alice-sub" || ids[0].Issuer != s.idp.Issuer() {
		t.Fatalf("identities: %+v", ids)
	}
	if !strings.Contains(string(ids[0].RawClaims), "Kingsleigh") {
		t.Errorf("identity raw claims not refreshed: %s", ids[0].RawClaims)
	}
	if h := s.upstream.lastHeaders(t); h.Get("Remote-Name") != "Alice Kingsleigh" || h.Get("Remote-Groups") != "staff" {
		t.Errorf("headers after second login: %v", h)
	}
}

func TestJITOffStoresNothing(t *testing.T) {
	s := startSite(t)
	s.queue(alice())
	resp, _ := s.login(newBrowser(t), "partner", "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login through a JIT-off connection: %d", resp.StatusCode)
	}
	h := s.upstream.lastHeaders(t)
	if h.Get("Remote-User") != "alice@example.com" || h.Get("X-Auth-Provisioned") != "false" || h.Get("X-Auth-Local-Id") != "" {
		t.Errorf("headers for a JIT-off login: %v", h)
	}
	st := openStore(t, s.dir)
	if users := allUsers(t, st); len(users) != 0 {
		t.Fatalf("JIT off, yet the store holds users: %+v", users)
	}
	if _, err := st.UserByIdentity(context.Background(), provisioner.IdentityKey{Connection: "partner", Issuer: s.idp.Issuer(), Subject: "alice-sub"}); !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("identity lookup: %v, want ErrNotFound", err)
	}
}

func TestDisabledUserIsRefused(t *testing.T) {
	s := startSite(t)
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("first login: %d", resp.StatusCode)
	}
	st := openStore(t, s.dir)
	u := allUsers(t, st)[0]
	if err := st.SetStatus(context.Background(), u.ID, provisioner.StatusDisabled, ""); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	s.queue(alice())
	resp, body := s.login(b, "corp", "/")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "disabled") {
		t.Fatalf("disabled user: %d %s", resp.StatusCode, body)
	}
	if b.cookie(s.base, "jitauth_session") != nil {
		t.Fatal("a disabled user got a session cookie")
	}
}

func TestIDTokenDefectsAreRefused(t *testing.T) {
	s := startSite(t)
	cases := map[string]func(jwt.MapClaims){
		"wrong audience": func(m jwt.MapClaims) { m["aud"] = []string{"someone-else"} },
		"wrong nonce":    func(m jwt.MapClaims) { m["nonce"] = "not-the-nonce" },
		"missing nonce":  func(m jwt.MapClaims) { delete(m, "nonce") },
		"no exp":         func(m jwt.MapClaims) { delete(m, "exp") },
		"expired":        func(m jwt.MapClaims) { m["exp"] = 1000 },
		"wrong issuer":   func(m jwt.MapClaims) { m["iss"] = "https://evil.example" },
		"iat in future":  func(m jwt.MapClaims) { m["iat"] = 9999999999 },
		"no iat":         func(m jwt.MapClaims) { delete(m, "iat") },
		"no subject":     func(m jwt.MapClaims) { m["sub"] = "" },
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			u := alice()
			u.tamper = tamper
			s.queue(u)
			b := newBrowser(t)
			resp, body := s.login(b, "corp", "/")
			want := http.StatusUnauthorized
			if name == "wrong audience" || name == "wrong issuer" {
				// Signed by the provider as it is: the administrator's
				// to fix (TestIDTokenForAnotherAudienceOrIssuer).
				want = http.StatusInternalServerError
			}
			if resp.StatusCode != want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, body)
			}
			if b.cookie(s.base, "jitauth_session") != nil {
				t.Fatal("a session was issued for a defective ID token")
			}
		})
	}
	if users := allUsers(t, openStore(t, s.dir)); len(users) != 0 {
		t.Fatalf("defective tokens provisioned users: %+v", users)
	}
}

func TestIDTokenWithBadSignatureIsRefused(t *testing.T) {
	// Flip a byte of the signature in the token response.
	s := startSite(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/token") {
				next.ServeHTTP(w, r)
				return
			}
			rec := &captureWriter{header: http.Header{}}
			next.ServeHTTP(rec, r)
			var tr map[string]any
			if err := json.Unmarshal(rec.body, &tr); err == nil {
				if id, ok := tr["id_token"].(string); ok {
					sig := []byte(id[strings.LastIndex(id, ".")+1:])
					sig[5] ^= 0x01
					tr["id_token"] = id[:strings.LastIndex(id, ".")+1] + string(sig)
				}
				rec.body, _ = json.Marshal(tr)
			}
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.status)
			_, _ = w.Write(rec.body)
		})
	})
	s.queue(alice())
	b := newBrowser(t)
	resp, body := s.login(b, "corp", "/")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
	}
	if b.cookie(s.base, "jitauth_session") != nil {
		t.Fatal("a session was issued for a forged ID token")
	}
}

type captureWriter struct {
	header http.Header
	status int
	body   []byte
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) WriteHeader(s int)   { c.status = s }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.body = append(c.body, b...)
	return len(b), nil
}

// A JIT-off login whose provider says nothing a username can be made of
// ends on a clear page instead of a session that never works.
//
// That includes a provider whose subjects are email addresses, for a user
// without a verified email: "partner:bob@example.com" would be an
// email-shaped name that is not a verified email, so the README says such
// a login is refused. The page speaks of signing in, not of an account,
// since a JIT-off login creates none.
func TestLoginWithoutUsableUsername(t *testing.T) {
	s := startSite(t)
	for name, u := range map[string]*oidcUser{
		"subject too long": {sub: strings.Repeat("x", 300), claims: map[string]any{}},
		"subject with @, email unverified": {sub: "bob@example.com", claims: map[string]any{
			"email": "bob@example.com", "email_verified": false, "preferred_username": "bob@example.com"}},
	} {
		s.queue(u)
		b := newBrowser(t)
		resp, body := s.login(b, "partner", "/")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "did not say enough about you to sign you in") ||
			strings.Contains(body, "account") {
			t.Fatalf("%s: status %d: %s", name, resp.StatusCode, body)
		}
		if b.cookie(s.base, "jitauth_session") != nil {
			t.Fatalf("%s: a session without a username was issued", name)
		}
	}
}

// S7: a live session of a user disabled or deleted in the store stops
// working within user_status_refresh, and works again once re-enabled;
// the request path itself never waits for the store.
func TestDisabledOrDeletedUserLosesLiveSession(t *testing.T) {
	s := startSiteOpts(t, siteOptions{globalExtra: "\t\tuser_status_refresh 1s\n"})
	st := openStore(t, s.dir)
	ctx := context.Background()

	waitFor := func(b *browser, want int, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second) // the bound (1s) plus slack for a loaded machine
		for {
			resp, _ := b.get(s.base + "/live")
			if resp.StatusCode == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %d after the bound, want %d", what, resp.StatusCode, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	b := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	u := allUsers(t, st)[0]
	if err := st.SetStatus(ctx, u.ID, provisioner.StatusDisabled, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(b, http.StatusFound, "disabled user")
	if err := st.SetStatus(ctx, u.ID, provisioner.StatusActive, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(b, http.StatusOK, "re-enabled user")
	if err := st.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(b, http.StatusFound, "deleted user")

	// JIT-off sessions have no local user and are not affected.
	off := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(off, "partner", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("JIT-off login: %d", resp.StatusCode)
	}
}

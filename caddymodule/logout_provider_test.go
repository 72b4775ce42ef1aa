package caddymodule_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/internal/devidp"
)

// devidpSite runs Caddy with one connection, corp, at a devidp provider
// that registers this site's callback and logged-out URIs, with the given
// extra lines in the connection.
func devidpSite(t *testing.T, connExtra string, registerLoggedOut bool) (base string, idp *devidp.Server, up *upstream) {
	t.Helper()
	return devidpSiteJIT(t, connExtra, "jit", registerLoggedOut)
}

// devidpSiteJIT is devidpSite with the connection's jit line or block.
func devidpSiteJIT(t *testing.T, connExtra, jit string, registerLoggedOut bool) (base string, idp *devidp.Server, up *upstream) {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	base = fmt.Sprintf("http://localhost:%d", port)
	client := devidp.Client{ID: "app", Secret: "app-secret", RedirectURIs: []string{base + "/.jitauth/callback/corp"}}
	if registerLoggedOut {
		client.PostLogoutRedirectURIs = []string{base + "/.jitauth/logged-out"}
	}
	idp, err := devidp.Start("127.0.0.1:0",
		[]devidp.User{{ID: "u-bob", Username: "bob", Password: "builder", GivenName: "Bob", FamilyName: "Builder", Email: "bob@example.com", EmailVerified: true}},
		[]devidp.Client{client})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	up = newUpstream(t)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s
}
`, globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %s app app-secret
			%s
			%s
		}`, idp.Issuer(), connExtra, jit)), port, up.hostPort()))
	return base, idp, up
}

// RP-initiated logout: signing out here continues at the provider's
// end_session_endpoint with the login's ID token as id_token_hint, and
// the provider (which checks the hint and the registered URI) sends the
// browser back to the logged-out page, then on to rd.
func TestLogoutAtProviderReachesTheProviderAndReturns(t *testing.T) {
	base, idp, _ := devidpSite(t, "logout_at_provider", true)
	b := newBrowser(t)
	if resp, body := devidpLogin(t, b, idp, base, "corp"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	hint := b.lastSetCookie("jitauth_logout_hint")
	if hint == nil || hint.Path != "/.jitauth/logout" || !hint.HttpOnly {
		t.Fatalf("the ID token for the logout is not kept in a cookie for the logout path alone: %+v", hint)
	}
	resp, _ := b.logout(base, "/goodbye")
	end, err := resp.Location()
	if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(end.String(), idp.Issuer()) {
		t.Fatalf("logout: %d to %v, want the provider's end_session_endpoint", resp.StatusCode, end)
	}
	q := end.Query()
	if q.Get("id_token_hint") == "" || q.Get("client_id") != "app" || q.Get("post_logout_redirect_uri") != base+"/.jitauth/logged-out" || q.Get("state") != "/goodbye" {
		t.Fatalf("end_session parameters: %v", q)
	}
	// The session ended here before the browser left.
	if r, _ := newBrowser(t).get(base + "/wiki"); r.StatusCode != http.StatusFound {
		t.Fatal("unexpected")
	}
	if c := b.lastSetCookie("jitauth_logout_hint"); c == nil || c.MaxAge >= 0 {
		t.Fatal("the kept ID token was not cleared at logout")
	}
	last, _, visited := b.follow(end.String(), func(u *url.URL) bool { return u.String() == base+"/goodbye" })
	if loc, _ := last.Location(); visited[len(visited)-1] != base+"/.jitauth/logged-out?state=%2Fgoodbye" || loc == nil || loc.String() != base+"/goodbye" {
		t.Fatalf("the provider did not send the browser back through logged-out to rd: %v, then %v", visited, loc)
	}
	// Signed out here: the next visit goes to log in.
	if r, _ := b.get(base + "/wiki"); r.StatusCode != http.StatusFound {
		t.Fatalf("still signed in after the logout: %d", r.StatusCode)
	}
}

// A login that pauses to ask the user (consent, a username) keeps its
// ID token across the pause: once the user has answered, the session's
// logout still reaches the provider with the hint.
func TestLogoutAtProviderAfterAConsentPage(t *testing.T) {
	for _, mode := range []string{"consent", "username"} {
		t.Run(mode, func(t *testing.T) {
			base, idp, _ := devidpSiteJIT(t, "logout_at_provider", "jit {\n\t\t\t\tmode "+mode+"\n\t\t\t}", true)
			b := newBrowser(t)
			s := &site{t: t, base: base}
			resp, page := devidpLogin(t, b, idp, base, "corp")
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/.jitauth/consent" {
				t.Fatalf("first login ended at %s with %d, want the %s page", resp.Request.URL, resp.StatusCode, mode)
			}
			if b.lastSetCookie("jitauth_logout_hint") != nil {
				t.Fatal("the ID token was kept before the user answered")
			}
			username := ""
			if mode == "username" {
				username = "bobby"
			}
			if resp, body := s.answer(b, page, "allow", username); resp.StatusCode != http.StatusOK {
				t.Fatalf("answering the %s page: %d %s", mode, resp.StatusCode, body)
			}
			if hint := b.lastSetCookie("jitauth_logout_hint"); hint == nil || hint.Path != "/.jitauth/logout" {
				t.Fatalf("after the %s page the ID token for the logout is not kept: %+v", mode, hint)
			}
			resp, _ = b.logout(base, "")
			end, err := resp.Location()
			if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(end.String(), idp.Issuer()) || end.Query().Get("id_token_hint") == "" {
				t.Fatalf("logout: %d to %v, want the provider's end_session_endpoint with id_token_hint", resp.StatusCode, end)
			}
		})
	}
}

// A post-logout URI the provider does not know is refused there; and a
// connection without logout_at_provider signs out here only.
func TestLogoutAtProviderOptional(t *testing.T) {
	base, idp, _ := devidpSite(t, "", true)
	b := newBrowser(t)
	if resp, body := devidpLogin(t, b, idp, base, "corp"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	if b.lastSetCookie("jitauth_logout_hint") != nil {
		t.Fatal("an ID token was kept without logout_at_provider")
	}
	resp, body := b.logout(base, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "You are signed out") {
		t.Fatalf("local logout: %d %s", resp.StatusCode, body)
	}
}

func TestLogoutAtProviderNeedsAConnectorThatCan(t *testing.T) {
	dir := t.TempDir()
	err := validate(t, "{\n\tadmin off\n\tstorage file_system "+dir+"/storage\n\tjit_auth {\n\t\tstore sqlite "+dir+"/users.db\n\t\tconnection gh {\n goth github k s\n logout_at_provider\n }\n\t}\n}\nhttp://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n")
	if err == nil || !strings.Contains(err.Error(), "logout_at_provider needs a connector that can end the session at the provider") {
		t.Fatalf("got %v", err)
	}
}

// A provider that offers no end_session_endpoint (mockoidc): the logout
// completes here and says the user may still be signed in there.
func TestLogoutAtProviderWithoutTheEndpoint(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpExtra: "logout_at_provider"})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	resp, body := b.logout(s.base, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "you may still be signed in there") {
		t.Fatalf("logout: %d %s", resp.StatusCode, body)
	}
	if r, _ := b.get(s.base + "/"); r.StatusCode != http.StatusFound {
		t.Fatal("still signed in here")
	}
}

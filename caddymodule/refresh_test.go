package caddymodule_test

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// changingUser is a provider user whose groups the test changes while
// the provider answers refreshes in the background.
type changingUser struct {
	mu sync.Mutex
	u  *oidcUser
}

func (c *changingUser) ID() string { return c.u.sub }

func (c *changingUser) Userinfo(s []string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.u.Userinfo(s)
}

func (c *changingUser) Claims(s []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.u.Claims(s, base)
}

func (c *changingUser) setGroups(g ...string) {
	c.mu.Lock()
	c.u.claims["groups"] = g
	c.mu.Unlock()
}

// refusingRefresh makes the provider's token endpoint answer
// invalid_grant to refresh requests while refuse is set, as a provider
// does for a user removed or disabled there.
func refusingRefresh(refuse *atomic.Bool, refreshes *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/token") && r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token" {
				refreshes.Add(1)
				if refuse.Load() {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusBadRequest)
					_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"user disabled"}`))
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// refresh: groups changed at the provider reach the live session's
// Remote-Groups without a new login; a refresh the provider refuses ends
// the session; a logged-out session is no longer refreshed.
func TestRefreshFollowsTheProvider(t *testing.T) {
	var refuse atomic.Bool
	var refreshes atomic.Int32
	s := startSiteOpts(t, siteOptions{
		globalExtra:   "\t\tuser_status_refresh 1s\n",
		corpExtra:     "refresh 1s",
		idpMiddleware: []func(http.Handler) http.Handler{refusingRefresh(&refuse, &refreshes)},
	})
	user := &changingUser{u: alice()}
	s.idp.QueueUser(user)
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	if g := s.upstream.lastHeaders(t).Get("Remote-Groups"); g != "staff,wonderland" {
		t.Fatalf("groups at login: %q", g)
	}
	user.setGroups("staff", "auditors")
	eventually(t, "the new groups in Remote-Groups", 10*time.Second, func() bool {
		resp, _ := b.get(s.base + "/now")
		return resp.StatusCode == http.StatusOK && s.upstream.lastHeaders(t).Get("Remote-Groups") == "auditors,staff"
	})
	// The user is disabled at the provider: the next refresh is refused,
	// and the session ends.
	refuse.Store(true)
	eventually(t, "the session ending after a refused refresh", 10*time.Second, func() bool {
		resp, _ := b.get(s.base + "/later")
		return resp.StatusCode == http.StatusFound
	})
	// Nothing is refreshed any more for it.
	time.Sleep(1500 * time.Millisecond)
	before := refreshes.Load()
	time.Sleep(2 * time.Second)
	if n := refreshes.Load() - before; n != 0 {
		t.Fatalf("%d refreshes for an ended session", n)
	}
}

// A first login that pauses to ask the user (consent, a username) keeps
// the provider's refresh token across the pause, so that session follows
// the provider as any other does.
func TestRefreshAfterAConsentPage(t *testing.T) {
	for _, mode := range []string{"consent", "username"} {
		t.Run(mode, func(t *testing.T) {
			var refuse atomic.Bool
			var refreshes atomic.Int32
			s := startSiteOpts(t, siteOptions{
				globalExtra:   "\t\tuser_status_refresh 1s\n",
				corpJIT:       "mode " + mode,
				corpExtra:     "refresh 1s",
				idpMiddleware: []func(http.Handler) http.Handler{refusingRefresh(&refuse, &refreshes)},
			})
			user := &changingUser{u: alice()}
			s.idp.QueueUser(user)
			b := newBrowser(t)
			resp, page := s.login(b, "corp", "/")
			if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/.jitauth/consent" {
				t.Fatalf("first login ended at %s with %d, want the %s page", resp.Request.URL, resp.StatusCode, mode)
			}
			username := ""
			if mode == "username" {
				username = "alice2"
			}
			if resp, body := s.answer(b, page, "allow", username); resp.StatusCode != http.StatusOK {
				t.Fatalf("answering the %s page: %d %s", mode, resp.StatusCode, body)
			}
			user.setGroups("staff", "auditors")
			eventually(t, "the new groups in Remote-Groups", 10*time.Second, func() bool {
				resp, _ := b.get(s.base + "/now")
				return resp.StatusCode == http.StatusOK && s.upstream.lastHeaders(t).Get("Remote-Groups") == "auditors,staff"
			})
			if refreshes.Load() == 0 {
				t.Fatal("the groups changed without a refresh")
			}
		})
	}
}

func TestRefreshEndsWithLogout(t *testing.T) {
	var refuse atomic.Bool
	var refreshes atomic.Int32
	s := startSiteOpts(t, siteOptions{corpExtra: "refresh 1s", idpMiddleware: []func(http.Handler) http.Handler{refusingRefresh(&refuse, &refreshes)}})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	eventually(t, "a first refresh", 10*time.Second, func() bool { return refreshes.Load() > 0 })
	if resp, _ := b.logout(s.base, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	time.Sleep(1500 * time.Millisecond)
	before := refreshes.Load()
	time.Sleep(2 * time.Second)
	if n := refreshes.Load() - before; n != 0 {
		t.Fatalf("%d refreshes after logout", n)
	}
}

func TestRefreshMisconfigurationsSayWhatToFix(t *testing.T) {
	for name, c := range map[string]struct{ conn, want string }{
		"jit off": {"oidc https://idp.example a b\n refresh", "refresh needs jit on"},
		"goth":    {"goth github k s\n jit\n refresh", "refresh needs a connector that can redeem refresh tokens"},
		"short":   {"oidc https://idp.example a b\n jit\n refresh 10ms", "use at least 1s"},
		"args":    {"oidc https://idp.example a b\n jit\n refresh 1m 2m", "wrong argument count"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			err := validate(t, "{\n\tadmin off\n\tstorage file_system "+dir+"/storage\n\tjit_auth {\n\t\tstore sqlite "+dir+"/users.db\n\t\tconnection corp {\n"+c.conn+"\n }\n\t}\n}\nhttp://localhost:1 {\n\tjit_auth\n\trespond ok\n}\n")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

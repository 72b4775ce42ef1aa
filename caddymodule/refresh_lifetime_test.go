package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// A reload that shortens session_lifetime ends the sessions signed in
// longer ago than the new lifetime, for the background refresh too: the
// refresher no longer redeems their refresh tokens (which would keep the
// grant alive at the provider until the old lifetime's end), drops them,
// and no longer writes their refreshed claims into the directory.
func TestShortenedSessionLifetimeStopsRefreshingEndedSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a minute for the shortened lifetime to pass")
	}
	var refuse atomic.Bool
	var refreshes atomic.Int32
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{
		adminPort:     admin,
		globalExtra:   "\t\tsession_lifetime 12h\n",
		corpExtra:     "refresh 1s",
		idpMiddleware: []func(http.Handler) http.Handler{refusingRefresh(&refuse, &refreshes)},
	})
	user := &changingUser{u: alice()}
	s.idp.QueueUser(user)
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	signedIn := time.Now()
	eventually(t, "a first refresh", 10*time.Second, func() bool { return refreshes.Load() > 0 })

	// caddy reload with session_lifetime 1m (the least there is).
	var cfg json.RawMessage
	if code := adminCall(t, admin, http.MethodGet, "/config/", "", &cfg); code != http.StatusOK {
		t.Fatalf("GET /config/: %d", code)
	}
	long, short := fmt.Sprintf(`"session_lifetime":%d`, 12*time.Hour), fmt.Sprintf(`"session_lifetime":%d`, time.Minute)
	if !strings.Contains(string(cfg), long) {
		t.Fatalf("no %s in the running config:\n%s", long, cfg)
	}
	if err := caddy.Load([]byte(strings.Replace(string(cfg), long, short, 1)), true); err != nil {
		t.Fatalf("reload: %v", err)
	}

	// The session ends a minute after its sign-in, for requests…
	time.Sleep(time.Until(signedIn.Add(61 * time.Second)))
	if resp, _ := b.get(s.base + "/after"); resp.StatusCode != http.StatusFound {
		t.Fatalf("a request with the session signed in 61 s ago under session_lifetime 1m: %d, want a redirect to sign in", resp.StatusCode)
	}
	// …and for the refresher: groups changed at the provider now must
	// not reach the directory through the ended session's refresh token.
	user.setGroups("staff", "auditors")
	time.Sleep(1500 * time.Millisecond) // a refresh in flight at the end
	before := refreshes.Load()
	time.Sleep(3 * time.Second)
	if n := refreshes.Load() - before; n != 0 {
		t.Errorf("the provider's token endpoint got %d refreshes for a session that session_lifetime 1m ended (the refresher still redeems its token until the 12h end)", n)
	}
	st := openStore(t, s.dir)
	if due, err := st.DueRefreshTokens(t.Context(), time.Now().Add(24*time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("refresh records of the ended session: %d (%v), want none", len(due), err)
	}
	u, err := st.UserByUsername(t.Context(), "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(u.Groups, []string{"staff", "wonderland"}) {
		t.Errorf("alice's groups in the store are %v after her session ended; the refresh of the ended session provisioned her from the provider's claims", u.Groups)
	}
}

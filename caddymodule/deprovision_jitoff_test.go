package caddymodule_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A local user who signs in through a JIT-off connection (partner) with
// their verified email is that user, so those logins count as theirs for
// the deprovision rule of their JIT-on connection ("no login, through
// any connection, for this long"): someone who signs in every half
// second is never disabled for inactivity.
func TestJITOffLoginsOfALocalUserCountAsTheirActivity(t *testing.T) {
	s, _, st := annUnderADeprovisionRule(t)
	// Ann now signs in through partner (JIT off) every 500 ms for 7 s,
	// more than twice `after`: she is never 3 s without a login.
	end := time.Now().Add(7 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		s.queue(oidcUserNamed("ann"))
		resp, body := s.login(newBrowser(t), "partner", "/x")
		if resp.StatusCode != http.StatusOK {
			u, _ := st.UserByUsername(context.Background(), "ann@example.com")
			status := provisioner.Status("?")
			if u != nil {
				status = u.Status
			}
			reason := ""
			if u != nil {
				reason = u.StatusReason
			}
			t.Fatalf("ann's JIT-off login #%d, about 0.5 s after her previous login, refused: %d (her user is %s; reason %q)\n%.120s",
				i+1, resp.StatusCode, status, reason, body)
		}
		if got := s.upstream.lastHeaders(t).Get("Remote-User"); got != "ann@example.com" {
			t.Fatalf("partner login is not ann's name: %q", got)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

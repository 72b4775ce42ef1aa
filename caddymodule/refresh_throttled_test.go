package caddymodule_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A provider that throttles its token endpoint (429 Too Many Requests,
// with Retry-After) has not refused the grant: the user was neither
// removed nor disabled there. After a provider outage every kept token
// is due at once and the refresher redeems up to 100 per pass, the burst
// a rate limit (Okta, Entra ID) answers with 429. Only invalid_grant
// ends a session; a throttled refresh is retried and ends nothing.
func TestThrottledRefreshDoesNotEndTheSession(t *testing.T) {
	var throttle atomic.Bool
	var throttled atomic.Int32
	s := startSiteOpts(t, siteOptions{
		corpExtra: "refresh 1s",
		idpMiddleware: []func(http.Handler) http.Handler{func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if throttle.Load() && strings.HasSuffix(r.URL.Path, "/token") && r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token" {
					throttled.Add(1)
					w.Header().Set("Retry-After", "1")
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusTooManyRequests)
					_, _ = w.Write([]byte(`{"error":"rate_limited","error_description":"too many requests"}`))
					return
				}
				next.ServeHTTP(w, r)
			})
		}},
	})
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	throttle.Store(true)
	eventually(t, "a throttled refresh", 10*time.Second, func() bool { return throttled.Load() > 0 })
	time.Sleep(1500 * time.Millisecond) // revocation_poll, user_status_refresh
	throttle.Store(false)
	if resp, body := b.get(s.base + "/after-throttle"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the provider answered one refresh with 429 Too Many Requests, the session ended: %d %.200s", resp.StatusCode, body)
	}
}

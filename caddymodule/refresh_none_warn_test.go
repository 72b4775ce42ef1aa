package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// withoutRefreshTokens drops the refresh token from the provider's
// token answers, as a provider does that issues none without
// offline_access.
func withoutRefreshTokens(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/token") {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var m map[string]any
		if json.Unmarshal(body, &m) == nil {
			delete(m, "refresh_token")
			body, _ = json.Marshal(m)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(bytes.Clone(body))
	})
}

// A connection set to refresh whose provider issues no refresh token
// warned at every sign-in: a line per login, as often as anyone with an
// account signs in. The warning is written at most once per connection
// every 10 seconds, counting those held back.
func TestNoRefreshTokenWarningIsSpacedOut(t *testing.T) {
	s := startSiteOpts(t, siteOptions{
		corpExtra:     "refresh 1m",
		auditLog:      true,
		idpMiddleware: []func(http.Handler) http.Handler{withoutRefreshTokens},
	})
	const logins = 5
	for i := range logins {
		s.queue(alice())
		if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("login %d: %d", i, resp.StatusCode)
		}
	}
	if n := levelCount(t, s.logFile(), "warn", "the provider issued no refresh token"); n != 1 {
		t.Errorf("%d warnings of no refresh token for %d sign-ins within seconds, want 1", n, logins)
	}
}

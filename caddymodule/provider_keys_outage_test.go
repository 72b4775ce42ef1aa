package caddymodule_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The provider's key set (jwks_uri) cannot be read for a moment: after a
// start or a reload nothing is cached, or the provider has just rotated
// its key. That is the provider being unreachable, not a bad token:
//   - a back-channel logout with a valid token gets 503
//     temporarily_unavailable, so the provider sends it again (a 400
//     would have it give the logout up, the session here living on, S17);
//   - an API client's valid bearer token gets 503, not 401 invalid_token,
//     which tells RFC 6750 clients to drop the token;
//   - a browser login gets the 502 "cannot be reached right now" page,
//     not 401 "could not be verified".
//
// Once the keys can be read, the same tokens are accepted.
func TestProviderKeysOutageIsNotAnInvalidToken(t *testing.T) {
	var jwksDown atomic.Bool
	jwksDown.Store(true)
	failJWKS := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if jwksDown.Load() && strings.HasSuffix(r.URL.Path, "/jwks.json") {
				http.Error(w, "upstream connect error", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	s := startSiteOpts(t, siteOptions{
		corpExtra:     "backchannel_logout",
		handlerBlock:  "\t\tbearer corp {\n\t\t\taudience api://wiki\n\t\t}\n",
		idpMiddleware: []func(http.Handler) http.Handler{failJWKS},
	})
	cfg := s.idp.Config()

	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	c["sub"] = "alice-sub"
	logoutToken := signWith(t, s.idp.Keypair, c)
	bearer := signWith(t, s.idp.Keypair, bearerClaims(cfg.Issuer, "alice-sub"))

	var failures []string
	if code, body := postLogoutToken(t, s.base, "corp", logoutToken); code < 500 {
		failures = append(failures, "back-channel logout with a valid token while the provider's keys cannot be read: "+
			http.StatusText(code)+" "+strings.TrimSpace(body)+" (want 503 temporarily_unavailable, so the provider retries)")
	}
	if code, body, _ := callAPI(t, s.base, bearer); code < 500 {
		failures = append(failures, "valid bearer token while the provider's keys cannot be read: "+
			http.StatusText(code)+" "+strings.TrimSpace(body)+" (want 503 temporarily_unavailable)")
	}
	s.queue(alice())
	if resp, body := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusBadGateway {
		i := strings.Index(body, "<p")
		failures = append(failures, "browser login while the provider's keys cannot be read: "+
			http.StatusText(resp.StatusCode)+" "+clip200(body[max(i, 0):])+" (want 502 'cannot be reached right now')")
	}

	// Control: the same tokens are valid once the keys can be read
	// (after the key set's 5 s retry interval).
	jwksDown.Store(false)
	time.Sleep(5500 * time.Millisecond)
	if code, body := postLogoutToken(t, s.base, "corp", logoutToken); code != http.StatusOK {
		t.Fatalf("control: the same logout token once the keys are readable: %d %s", code, body)
	}
	// (alice has no local user yet: past the signature, the token is
	// refused for that, not as invalid.)
	if code, body, _ := callAPI(t, s.base, bearer); code != http.StatusOK && !strings.Contains(body, "no account on this site") {
		t.Fatalf("control: the same bearer token once the keys are readable: %d %s", code, body)
	}
	for _, f := range failures {
		t.Error(f)
	}
}

func clip200(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

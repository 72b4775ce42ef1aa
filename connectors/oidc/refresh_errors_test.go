package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/connector"
)

// Only invalid_grant refuses a refresh (connector.ErrRejected, which
// ends the session): the grant is gone. Every other answer of the token
// endpoint (a rate limit, an outage, an answer without an OAuth error, a
// client the provider does not accept after a secret rotation) is
// connector.ErrUnavailable, tried again later, so that a provider's bad
// minute or a configuration mistake does not sign everyone out. Neither
// error quotes the refresh token or the client secret.
func TestRefreshErrorsEndTheSessionOnlyForInvalidGrant(t *testing.T) {
	for _, c := range []struct {
		status int
		body   string
		want   error
	}{
		{http.StatusBadRequest, `{"error":"invalid_grant","error_description":"token rt-secret-1 revoked"}`, connector.ErrRejected},
		{http.StatusUnauthorized, `{"error":"invalid_grant"}`, connector.ErrRejected},
		{http.StatusTooManyRequests, `{"error":"rate_limited"}`, connector.ErrUnavailable},
		{http.StatusUnauthorized, `{"error":"invalid_client","error_description":"bad secret s3cret"}`, connector.ErrUnavailable},
		{http.StatusBadRequest, `{"error":"unauthorized_client"}`, connector.ErrUnavailable},
		{http.StatusBadRequest, `not json`, connector.ErrUnavailable},
		{http.StatusInternalServerError, `{"error":"server_error"}`, connector.ErrUnavailable},
		{http.StatusBadGateway, `<html>bad gateway</html>`, connector.ErrUnavailable},
	} {
		t.Run(fmt.Sprintf("%d %s", c.status, c.body), func(t *testing.T) {
			o := refreshAnsweredWith(t, c.status, "", c.body)
			_, _, _, err := o.Refresh(context.Background(), "rt-secret-1")
			if !errors.Is(err, c.want) {
				t.Errorf("refresh answered %d %s: %v, want %v", c.status, c.body, err, c.want)
			}
			if errors.Is(err, connector.ErrRejected) && errors.Is(err, connector.ErrUnavailable) {
				t.Errorf("refresh answered %d %s: %v is both a refusal and an outage", c.status, c.body, err)
			}
			if err != nil && (strings.Contains(err.Error(), "rt-secret-1") || strings.Contains(err.Error(), "s3cret")) {
				t.Errorf("the error quotes a secret: %v", err)
			}
		})
	}
}

// A provider that throttles (429) or is down for maintenance (503) and
// says when to come back (Retry-After, in seconds or as a date) has that
// wait carried with the error, for the refresher to honour; whether the
// answer is an OAuth error or not. A refusal (invalid_grant) carries
// none: it is not retried.
func TestRefreshCarriesTheProvidersRetryAfter(t *testing.T) {
	for _, c := range []struct {
		status     int
		retryAfter string
		body       string
		want       time.Duration
	}{
		{http.StatusTooManyRequests, "120", `{"error":"slow_down"}`, 2 * time.Minute},
		{http.StatusServiceUnavailable, time.Now().Add(10 * time.Minute).UTC().Format(http.TimeFormat), `<html>maintenance</html>`, 10 * time.Minute},
		{http.StatusTooManyRequests, "", `{"error":"slow_down"}`, 0},
		{http.StatusBadRequest, "600", `{"error":"invalid_grant"}`, 0},
	} {
		t.Run(fmt.Sprintf("%d %q", c.status, c.retryAfter), func(t *testing.T) {
			o := refreshAnsweredWith(t, c.status, c.retryAfter, c.body)
			_, _, _, err := o.Refresh(context.Background(), "rt-1")
			if err == nil {
				t.Fatal("refresh succeeded")
			}
			got := connector.RetryAfter(err)
			if got < c.want-5*time.Second || got > c.want {
				t.Errorf("the refresh error carries a wait of %v, want %v (Retry-After %q): %v", got, c.want, c.retryAfter, err)
			}
			if c.want > 0 && !errors.Is(err, connector.ErrUnavailable) {
				t.Errorf("a throttled refresh is no longer ErrUnavailable: %v", err)
			}
		})
	}
}

// refreshAnsweredWith is a connector whose provider's token endpoint
// answers every request with status, body and, unless "", Retry-After.
func refreshAnsweredWith(t *testing.T, status int, retryAfter, body string) *OIDC {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"issuer":%q,"authorization_endpoint":"%[1]s/authorize","token_endpoint":"%[1]s/token","jwks_uri":"%[1]s/jwks"}`, srv.URL)
		case "/token":
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return &OIDC{Issuer: srv.URL, clientID: "client", clientSecret: "s3cret", scopes: []string{"openid"},
		client: connector.NewProviderClient(providerTimeout), logger: zap.NewNop(), mu: new(sync.Mutex)}
}

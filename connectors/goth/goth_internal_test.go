package goth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/markbates/goth/providers/github"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Goth providers other than GitHub: the verified flag comes from the
// raw data, under either name, as a boolean or the string "true"; any
// value there counts as the provider having said (S8).
func TestGothEmailVerified(t *testing.T) {
	for _, tc := range []struct {
		name                string
		raw                 map[string]any
		verified, wantKnown bool
	}{
		{"nil raw data", nil, false, false},
		{"missing key", map[string]any{"email": "a@example.com"}, false, false},
		{"null", map[string]any{"email_verified": nil}, false, false},
		{"bool true", map[string]any{"email_verified": true}, true, true},
		{"bool false", map[string]any{"email_verified": false}, false, true},
		{"string true", map[string]any{"email_verified": "true"}, true, true},
		{"string false", map[string]any{"email_verified": "false"}, false, true},
		{"string other", map[string]any{"email_verified": "yes"}, false, true},
		{"number", map[string]any{"email_verified": 1.0}, false, true},
		{"verified_email true", map[string]any{"verified_email": true}, true, true},
		{"verified_email string false", map[string]any{"verified_email": "false"}, false, true},
		{"both true", map[string]any{"email_verified": true, "verified_email": "true"}, true, true},
		{"contradicting", map[string]any{"email_verified": true, "verified_email": false}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, k := gothEmailVerified(tc.raw)
			if v != tc.verified || k != tc.wantKnown {
				t.Fatalf("gothEmailVerified(%v) = verified %v, known %v; want %v, %v", tc.raw, v, k, tc.verified, tc.wantKnown)
			}
		})
	}
}

// The GitHub email check never lets the access token reach a log, and
// leaves whether the email is verified unknown when GitHub's answer is
// unusable.
func TestGitHubEmailFailureLogsNoToken(t *testing.T) {
	const token = "gho_s3cr3t-token-value"
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"status", func(w http.ResponseWriter, r *http.Request) {
			// Echo the request back, as a misbehaving proxy might.
			http.Error(w, r.Header.Get("Authorization"), http.StatusNotFound)
		}},
		{"body", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`[{"email":"` + r.Header.Get("Authorization") + `",`))
		}},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			core, logs := observer.New(zap.DebugLevel)
			c := &Goth{
				cfg:    &Goth{Provider: "github", EmailURL: srv.URL + "/user/emails?token=" + token},
				client: &http.Client{Timeout: 200 * time.Millisecond},
				logger: zap.New(core),
			}
			claims := provisioner.Claims{Email: "octocat@example.com", EmailVerified: true, EmailVerifiedKnown: true}
			c.githubEmail(context.Background(), &github.Session{AccessToken: token}, &claims)
			if claims.Email != "octocat@example.com" || claims.EmailVerified || claims.EmailVerifiedKnown {
				t.Fatalf("claims after a failed check: %+v", claims)
			}
			if logs.Len() == 0 {
				t.Fatal("the failure was not logged")
			}
			for _, e := range logs.All() {
				line := e.Message
				for k, v := range e.ContextMap() {
					line += fmt.Sprintf(" %s=%v", k, v)
				}
				if strings.Contains(line, "s3cr3t") {
					t.Fatalf("log carries the token: %s", line)
				}
			}
		})
	}
}

// A GitHub Enterprise connection without email_url never sends its
// token to github.com.
func TestGitHubEnterpriseWithoutEmailURLAsksNobody(t *testing.T) {
	asked := false
	c := &Goth{
		cfg: &Goth{Provider: "github", AuthURL: "https://ghe.example/login/oauth/authorize"},
		client: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			asked = true
			return nil, http.ErrHandlerTimeout
		})},
	}
	claims := provisioner.Claims{Email: "octocat@example.com"}
	c.githubEmail(context.Background(), &github.Session{AccessToken: "t"}, &claims)
	if asked || claims.EmailVerified || claims.EmailVerifiedKnown || claims.Email != "octocat@example.com" {
		t.Fatalf("asked %v, claims %+v", asked, claims)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// GitHub's email list is read up to a bound: an endless answer is cut
// off, not read until the client's timeout (or memory) runs out.
func TestGitHubEmailBodyIsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[{"email":"octocat@example.com","primary":true,"verified":true,"pad":"`))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	c := &Goth{cfg: &Goth{Provider: "github", EmailURL: srv.URL}, client: &http.Client{Timeout: 10 * time.Second}}
	claims := provisioner.Claims{Email: "octocat@example.com"}
	start := time.Now()
	c.githubEmail(context.Background(), &github.Session{AccessToken: "t"}, &claims)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("reading the email list took %v", d)
	}
	if claims.EmailVerified || claims.EmailVerifiedKnown {
		t.Fatalf("claims after an endless answer: %+v", claims)
	}
}

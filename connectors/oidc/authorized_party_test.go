package oidc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/connector"
)

// azpNull stands for an azp claim that is JSON null.
type azpNull struct{}

// An ID token for several audiences must name the party it was issued
// to (azp), and an azp, when there is one, must be this client
// (OpenID Connect Core 3.1.3.7, points 4 and 5): otherwise it is a token
// another client of the provider obtained, which lists this client
// among its audiences. go-oidc checks only that aud contains client_id.
func TestIDTokenAuthorizedPartyMustBeThisClient(t *testing.T) {
	for _, c := range []struct {
		name string
		aud  any
		azp  any // nil: no azp
		why  string
	}{
		{"one audience, no azp", "app", nil, ""},
		{"one audience in a list, no azp", []string{"app"}, nil, ""},
		{"one audience, azp this client", "app", "app", ""},
		{"several audiences, azp this client", []string{"app", "api"}, "app", ""},
		{"several audiences, no azp", []string{"app", "api"}, nil, "names no azp"},
		{"several audiences, azp another client", []string{"other", "app"}, "other", "not this client_id"},
		{"one audience, azp another client", "app", "other", "not this client_id"},
		{"azp this client in another letter case", "app", "APP", "not this client_id"},
		{"azp empty", []string{"app", "api"}, "", "not this client_id"},
		{"azp not a string", []string{"app", "api"}, []string{"app"}, "not this client_id"},
		// Some providers write null for every optional claim they lack.
		{"one audience, azp null", "app", azpNull{}, ""},
		{"several audiences, azp null", []string{"app", "api"}, azpNull{}, "names no azp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			lp := newLoginProvider(t)
			lp.claims = func(m map[string]any) {
				m["aud"] = c.aud
				switch c.azp.(type) {
				case nil:
				case azpNull:
					m["azp"] = nil
				default:
					m["azp"] = c.azp
				}
			}
			claims, err := lp.login(t, lp.connector(), nil)
			// A refreshed ID token is held to the same rule (12.2).
			refreshed, _, _, rerr := lp.connector().Refresh(context.Background(), "rt-1")
			for step, got := range map[string]struct {
				sub string
				err error
			}{"login": {claims.Subject, err}, "refresh": {refreshed.Subject, rerr}} {
				if c.why == "" {
					if got.err != nil || got.sub != "s1" {
						t.Errorf("%s, aud %v, azp %v: refused: %v", step, c.aud, c.azp, got.err)
					}
					continue
				}
				if !errors.Is(got.err, connector.ErrRejected) {
					t.Errorf("%s, aud %v, azp %v: subject %q, %v; want a refusal", step, c.aud, c.azp, got.sub, got.err)
				} else if !strings.Contains(got.err.Error(), c.why) {
					t.Errorf("%s, aud %v, azp %v: the refusal %q does not say %q", step, c.aud, c.azp, got.err, c.why)
				}
			}
		})
	}
}

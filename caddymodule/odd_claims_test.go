package caddymodule_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Claims no store could keep as they came (a NUL character, "\u0000" in
// the ID token's JSON, in a display name a user typed or in a claim
// nothing maps; an address longer than any address can be) sign the
// user in on both shipped stores alike. PostgreSQL refuses NUL in text
// and jsonb and indexes emails, so before they were cleaned the same
// login ended there on the 503 "store unavailable" page, every time, for
// that user (S12).
func TestOddClaimsSignInOnEveryStore(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims map[string]any
	}{
		{"name", map[string]any{"email": "nul@example.com", "email_verified": true, "name": "Nu\u0000l"}},
		{"custom claim only in raw claims", map[string]any{"email": "nul2@example.com", "email_verified": true, "x_note": "a\u0000b"}},
		// An unverified address the user typed, 3 KB long: PostgreSQL's
		// B-tree index on email_norm takes at most 2704 bytes a row.
		{"long unverified email", map[string]any{"email": longAddress(), "email_verified": false}},
	} {
		for _, store := range []string{"sqlite", "postgres"} {
			t.Run(tc.name+"/"+store, func(t *testing.T) {
				opts := siteOptions{}
				if store == "postgres" {
					_, conn := pgSchema(t)
					opts.store = fmt.Sprintf("store postgres %q", conn)
				}
				s := startSiteOpts(t, opts)
				s.queue(&oidcUser{sub: "odd-sub", claims: tc.claims})
				resp, body := s.login(newBrowser(t), "corp", "/")
				if resp.StatusCode != http.StatusOK {
					t.Errorf("login with claims %s on %s: %d %s", tc.name, store, resp.StatusCode, firstLine(body))
				}
			})
		}
	}
}

func longAddress() string {
	b := make([]byte, 2400)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)[:3000] + "@example.com"
}

func firstLine(s string) string {
	if i := strings.Index(s, "<h1>"); i >= 0 {
		s = s[i+4:]
		if j := strings.Index(s, "</p>"); j >= 0 {
			return s[:j]
		}
	}
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// on the PostgreSQL store, an administrator's request whose
// user reference, search text or cursor is not valid UTF-8 (a typo'd
// percent escape, a cursor edited by hand) is answered 503 "user store:
// … invalid byte sequence", as if the database were down, instead of a
// 4xx naming the parameter (q=%FF is already handled; the others are not).
func TestAdminInvalidUTF8IsA400OnPostgres(t *testing.T) {
	_, conn := pgSchema(t)
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, store: fmt.Sprintf("store postgres %q", conn)})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	for _, path := range []string{
		"/jit_auth/users/%FF",       // a user reference that is not UTF-8
		"/jit_auth/users?q=%FF",     // a search text that is not UTF-8
		"/jit_auth/users?cursor=_w", // base64url of the byte 0xff
		"/jit_auth/users?role=%FF",  // a role that is not UTF-8
		"/jit_auth/users?connection=%FF",
	} {
		code, body := adminRaw(t, admin, http.MethodGet, path, "")
		if code >= 500 {
			t.Errorf("GET %s: %d %s; want a 4xx naming the bad input, not a store outage", path, code, strings.TrimSpace(body))
		}
	}
}

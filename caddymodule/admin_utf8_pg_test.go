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

// S12: a NUL character, which PostgreSQL's text refuses as it does
// invalid UTF-8, in a user reference, a list filter, a cursor, a PATCH
// body's set value or a disable reason is a 400 naming the bad input,
// not a 503 "user store: … 0x00" that reads as a database outage.
func TestAdminNULIsA400OnPostgres(t *testing.T) {
	_, conn := pgSchema(t)
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, store: fmt.Sprintf("store postgres %q", conn)})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	for _, path := range []string{
		"/jit_auth/users/a%00b",
		"/jit_auth/users?q=a%00b",
		"/jit_auth/users?role=a%00b",
		"/jit_auth/users?connection=a%00b",
		"/jit_auth/users?cursor=YQBi", // base64url of "a\x00b"
	} {
		code, body := adminRaw(t, admin, http.MethodGet, path, "")
		if code >= 500 {
			t.Errorf("GET %s: %d %s; want a 4xx naming the bad input", path, code, strings.TrimSpace(body))
		}
		if code != http.StatusBadRequest {
			t.Errorf("GET %s: %d %s; want 400", path, code, strings.TrimSpace(body))
		}
	}
	for _, body := range []string{
		`{"set":{"name":"Alice\u0000Liddell"}}`,
		`{"set":{"department":"a\u0000b"}}`,
	} {
		code, resp := adminRaw(t, admin, http.MethodPatch, "/jit_auth/users/alice@example.com", body)
		if code >= 500 {
			t.Errorf("PATCH %s: %d %s; want a 4xx naming the bad input", body, code, strings.TrimSpace(resp))
		}
		if code != http.StatusBadRequest || !strings.Contains(resp, "NUL") {
			t.Errorf("PATCH %s: %d %s; want 400 saying the value holds a NUL", body, code, strings.TrimSpace(resp))
		}
	}
	code, resp := adminRaw(t, admin, http.MethodPost, "/jit_auth/users/alice@example.com/disable", `{"reason":"left\u0000"}`)
	if code != http.StatusBadRequest || !strings.Contains(resp, "NUL") {
		t.Errorf("disable with a NUL in the reason: %d %s; want 400 saying so", code, strings.TrimSpace(resp))
	}
	// Nothing of the refused changes was written.
	code, resp = adminRaw(t, admin, http.MethodGet, "/jit_auth/users/alice@example.com", "")
	if code != http.StatusOK || !strings.Contains(resp, `"Alice Liddell"`) || !strings.Contains(resp, `"active"`) {
		t.Errorf("the user after the refused changes: %d %s", code, strings.TrimSpace(resp))
	}
}

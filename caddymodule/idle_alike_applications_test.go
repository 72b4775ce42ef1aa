package caddymodule_test

import (
	"net/http"
	"testing"
	"time"
)

// TestIdleTimeoutTwoInlineApplicationsAlikeKeepTheirOwnClocks: the activity key of
// an inline application was a digest of its configuration alone, so two
// jit_auth routes whose inline applications read the same (here both
// just "idle_timeout 2s", on /main/* and /admin/*) shared one clock:
// working in /main keeps the session alive in /admin, which got no
// request for longer than its idle timeout. README/application.go:
// "Each application keeps its own, so requests to another application on
// the host do not keep this one's session alive".
func TestIdleTimeoutTwoInlineApplicationsAlikeKeepTheirOwnClocks(t *testing.T) {
	base, _, login := partialSite(t, `
	jit_auth /main/* {
		idle_timeout 2s
	}
	jit_auth /admin/* {
		idle_timeout 2s
	}
	reverse_proxy {UPSTREAM}
	`)
	cookie := login()
	get := func(path string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Cookie", "jitauth_session="+cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			if c.Name == "jitauth_session" && c.MaxAge > 0 {
				cookie = c.Value
			}
		}
		return resp.StatusCode
	}
	if code := get("/admin/x"); code != http.StatusOK {
		t.Fatalf("admin right after login: %d", code)
	}
	start := time.Now()
	for time.Since(start) < 3500*time.Millisecond {
		time.Sleep(700 * time.Millisecond)
		if code := get("/main/x"); code != http.StatusOK {
			t.Fatalf("main: %d", code)
		}
	}
	if code := get("/admin/x"); code != http.StatusUnauthorized {
		t.Errorf("GET /admin/x after %v with requests to /main/* only (/admin/*: idle_timeout 2s): %d, want 401; /main's requests kept /admin's session alive",
			time.Since(start).Round(100*time.Millisecond), code)
	}
}

package caddymodule_test

import (
	"net/http"
	"testing"
	"time"
)

// README, idle_timeout: "End a session that has made no request to this
// application for that long". Two applications on one host share the
// session cookie, and the last activity travels in that cookie, so the
// requests a user makes to one application (which re-issues the cookie
// with a fresh last activity) keep an idle session alive in another one,
// e.g. an /admin application with a short idle timeout next to a main
// application with a longer one.
func TestIdleTimeoutIsPerApplication(t *testing.T) {
	base, _, login := partialSite(t, `
	jit_auth /main/* {
		idle_timeout 8s
	}
	jit_auth /admin/* {
		idle_timeout 2s
	}
	reverse_proxy {UPSTREAM}
	`)
	original := login()
	cookie := original
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
				cookie = c.Value // the browser keeps the re-issued cookie
			}
		}
		return resp.StatusCode
	}
	if code := get("/admin/x"); code != http.StatusOK {
		t.Fatalf("admin right after login: %d", code)
	}
	start := time.Now()
	// The user works in /main only, for longer than /admin's idle timeout.
	for time.Since(start) < 4500*time.Millisecond {
		time.Sleep(1100 * time.Millisecond)
		if code := get("/main/x"); code != http.StatusOK {
			t.Fatalf("main: %d", code)
		}
	}
	// Control: the cookie as it was at login, idle for 4.5 s, is refused
	// by /admin, so /admin does enforce its 2 s.
	saved := cookie
	cookie = original
	if code := get("/admin/x"); code != http.StatusUnauthorized {
		t.Fatalf("control: the login cookie after 4.5 s idle got %d at /admin, want 401", code)
	}
	cookie = saved
	if code := get("/admin/x"); code != http.StatusUnauthorized {
		t.Errorf("/admin, which got no request for %v (idle_timeout 2s), still admits the session kept alive by /main: %d, want 401",
			time.Since(start).Round(100*time.Millisecond), code)
	}
}

package caddymodule_test

import (
	"net/http"
	"testing"
	"time"
)

// README, idle_timeout: "End a session that has made no request to this
// application for that long". Two applications on one host share the
// session cookie, and the last activity travels in it, so requests to
// one application (which re-issue the cookie with a fresh last activity)
// kept an idle session alive in another: an /admin application with a
// short idle timeout next to a main one with a longer timeout, and also
// next to one configured exactly alike (whose key was once the same).
func TestIdleTimeoutIsPerApplication(t *testing.T) {
	for name, mainIdle := range map[string]string{"a longer timeout": "8s", "an application alike": "2s"} {
		t.Run(name, func(t *testing.T) {
			base, _, login := partialSite(t, `
	jit_auth /main/* {
		idle_timeout `+mainIdle+`
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
			// The user works in /main only, for longer than /admin's idle
			// timeout, more often than /main's own.
			for time.Since(start) < 3500*time.Millisecond {
				time.Sleep(700 * time.Millisecond)
				if code := get("/main/x"); code != http.StatusOK {
					t.Fatalf("main: %d", code)
				}
			}
			// Control: the cookie as it was at login is refused by /admin,
			// so /admin does enforce its 2 s.
			saved := cookie
			cookie = original
			if code := get("/admin/x"); code != http.StatusUnauthorized {
				t.Fatalf("control: the login cookie after 3.5 s idle got %d at /admin, want 401", code)
			}
			cookie = saved
			if code := get("/admin/x"); code != http.StatusUnauthorized {
				t.Errorf("/admin, which got no request for %v (idle_timeout 2s), still admits the session kept alive by /main: %d, want 401",
					time.Since(start).Round(100*time.Millisecond), code)
			}
		})
	}
}

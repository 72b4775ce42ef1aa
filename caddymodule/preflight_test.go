package caddymodule_test

import (
	"net/http"
	"testing"
)

// preflightSite is the README's recipe for an API called from another
// origin (Requests without a session): CORS preflights carry no
// cookies, so they pass to the upstream, which answers them; every
// other request needs the login.
const preflightSite = "\t@needs_login {\n\t\tnot {\n\t\t\tmethod OPTIONS\n\t\t\theader Origin *\n\t\t\theader Access-Control-Request-Method *\n\t\t}\n\t}\n\tjit_auth @needs_login\n\treverse_proxy {UPSTREAM}"

func TestCORSPreflightRecipe(t *testing.T) {
	base, up, login := partialSite(t, preflightSite)
	cookie := login()
	send := func(method, path string, header map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("Accept", "application/json")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	preflight := map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE", "Remote-User": "mallory"}
	if got := send(http.MethodOptions, "/api/items/1", preflight); got != http.StatusOK {
		t.Fatalf("a preflight without a session: %d, want the upstream's 200", got)
	}
	if seen, ok := up.take("/api/items/1"); !ok || seen.header.Get("Remote-User") != "" {
		t.Errorf("the preflight reached the upstream %v with Remote-User %q, want it there without identity", ok, seen.header.Get("Remote-User"))
	}
	for _, c := range []struct {
		name, method string
		header       map[string]string
	}{
		{"the request after it", http.MethodDelete, map[string]string{"Origin": "https://app.example"}},
		{"OPTIONS that is no preflight", http.MethodOptions, map[string]string{"Origin": "https://app.example"}},
		{"a preflight naming another method to the upstream", http.MethodOptions,
			map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE", "X-HTTP-Method-Override": "DELETE"}},
	} {
		if got := send(c.method, "/api/items/1", c.header); got != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d, want 401", c.name, got)
		}
	}
	if got := send(http.MethodDelete, "/api/items/1", map[string]string{"Origin": "https://app.example", "Cookie": "jitauth_session=" + cookie}); got != http.StatusOK {
		t.Errorf("the request after the preflight, signed in: %d, want 200", got)
	}
}

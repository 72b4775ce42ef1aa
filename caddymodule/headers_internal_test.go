package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestStripIdentityHeadersAllSpellings(t *testing.T) {
	_, keys := buildHeaderRules(map[string]string{"X-Auth-Request-User": "{http.auth.user.id}", "Remote-Email": ""})
	h := http.Header{}
	spellings := []string{
		"Remote-User", "remote-user", "REMOTE-USER", "Remote_User", "remote_user", "REMOTE_USER", "rEmOtE_uSeR",
		"Remote-Email", "remote_email", "Remote-Name", "REMOTE_NAME", "Remote-Groups", "remote_groups",
		"X-Auth-Request-User", "x_auth_request_user", "Remote.User", "x.auth_request-user",
	}
	for _, name := range spellings {
		h[name] = []string{"mallory"} // raw keys, as a server that did not canonicalise would keep them
	}
	h["Remote-Userx"] = []string{"keep"}
	h["Accept"] = []string{"keep"}
	stripIdentityHeaders(h, keys)
	for _, name := range spellings {
		if _, ok := h[name]; ok {
			t.Errorf("%s survived", name)
		}
	}
	if h.Get("Accept") != "keep" || h["Remote-Userx"] == nil {
		t.Errorf("unrelated headers removed: %v", h)
	}
}

func TestHeaderValueDropsControls(t *testing.T) {
	for in, want := range map[string]string{
		"Alice":              "Alice",
		"Alice\r\nX-Evil: 1": "Alice  X-Evil: 1",
		"a\x00b\x7fc":        "a b c",
		"Zoë":                "Zoë",
	} {
		if got := headerValue(in); got != want {
			t.Errorf("headerValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// requestWith is a request to / with the given method and headers.
func requestWith(method string, hdr map[string]string) *http.Request {
	r, _ := http.NewRequest(method, "/", nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	return r
}

func TestIsBrowserNavigation(t *testing.T) {
	yes := []*http.Request{
		requestWith("GET", map[string]string{"Accept": "text/html,application/xhtml+xml"}),
		requestWith("HEAD", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}),
	}
	no := []*http.Request{
		requestWith("GET", map[string]string{"Accept": "application/json"}),
		requestWith("GET", nil),
		requestWith("POST", map[string]string{"Accept": "text/html"}),
		requestWith("GET", map[string]string{"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}),
		requestWith("GET", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "cors"}),
	}
	for _, r := range yes {
		if !isBrowserNavigation(r) {
			t.Errorf("%s %v: not a navigation", r.Method, r.Header)
		}
	}
	for _, r := range no {
		if isBrowserNavigation(r) {
			t.Errorf("%s %v: taken for a navigation", r.Method, r.Header)
		}
	}
}

// The signed-in user's placeholders are the module's, whatever an
// earlier handler of the request set under the same names, and a custom
// header built from them carries them.
func TestIdentityPlaceholdersWinOverEarlierValues(t *testing.T) {
	h := &Handler{}
	h.headers, h.stripKeys = buildHeaderRules(map[string]string{"X-Who": "{http.auth.user.local_id}@{http.auth.user.connection}"})
	r := httptest.NewRequest(http.MethodGet, "http://localhost/", nil)
	repl := caddy.NewReplacer()
	repl.Set("http.auth.user.id", "earlier")
	repl.Set("http.auth.user.local_id", "earlier-id")
	s := &Session{Username: "alice", UserID: "id-1", Connection: "corp", Groups: []string{"staff"}}
	h.setIdentity(r, repl, s)
	for key, want := range map[string]string{
		"http.auth.user.id": "alice", "http.auth.user.local_id": "id-1", "http.auth.user.connection": "corp",
		"http.auth.user.groups": "staff", "http.auth.user.provisioned": "true", "http.auth.user.email": "",
	} {
		if got, ok := repl.GetString(key); !ok || got != want {
			t.Errorf("{%s} = %q (known %v), want %q", key, got, ok, want)
		}
	}
	if _, ok := repl.GetString("http.auth.user.unknown"); ok {
		t.Error("{http.auth.user.unknown} is known")
	}
	if got := r.Header.Get("X-Who"); got != "id-1@corp" {
		t.Errorf("X-Who = %q, want id-1@corp", got)
	}
}

// A provider's name, email or groups may carry CR, LF or other control
// characters; no identity header the upstream gets carries one, whether
// the session comes from the cache (its values cleaned once, by prepare)
// or not (a bearer token's, or one whose profile changed).
func TestSetIdentityCleansControlCharacters(t *testing.T) {
	h := &Handler{}
	h.headers, h.stripKeys = buildHeaderRules(map[string]string{"X-Who": "{http.auth.user.name} <{http.auth.user.email}>"})
	for _, prepared := range []bool{true, false} {
		s := &Session{ID: "sid", Username: "alice\r\nX-Evil: 1", Email: "a@example.com\n", Name: "Al\x00ice\x7f",
			Groups: []string{"staff\rX"}, Roles: []string{"ops\n"}, Connection: "corp"}
		if prepared {
			s.prepare()
		}
		r := httptest.NewRequest(http.MethodGet, "http://localhost/", nil)
		h.setIdentity(r, caddy.NewReplacer(), s)
		for _, name := range []string{"Remote-User", "Remote-Email", "Remote-Name", "Remote-Groups", "X-Who"} {
			vals := r.Header[name]
			if len(vals) != 1 {
				t.Fatalf("prepared %v: %s = %q, want one value", prepared, name, vals)
			}
			for i := 0; i < len(vals[0]); i++ {
				if c := vals[0][i]; c < ' ' || c == 0x7f {
					t.Errorf("prepared %v: %s = %q carries control byte %#x", prepared, name, vals[0], c)
					break
				}
			}
		}
	}
}

func TestIsFormSubmission(t *testing.T) {
	nav := map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
	for _, c := range []struct {
		r    *http.Request
		want bool
	}{
		{requestWith("POST", nav), true},
		{requestWith("PUT", nav), true},
		{requestWith("GET", nav), false},
		{requestWith("POST", map[string]string{"Accept": "text/html"}), false},
		{requestWith("POST", map[string]string{"Accept": "application/json", "Sec-Fetch-Mode": "navigate"}), false},
		{requestWith("POST", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "cors"}), false},
	} {
		if got := isFormSubmission(c.r); got != c.want {
			t.Errorf("%s %v: isFormSubmission %v, want %v", c.r.Method, c.r.Header, got, c.want)
		}
	}
}

package caddymodule

import (
	"net/http"
	"testing"
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

func TestIsBrowserNavigation(t *testing.T) {
	mk := func(method string, hdr map[string]string) *http.Request {
		r, _ := http.NewRequest(method, "/", nil)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		return r
	}
	yes := []*http.Request{
		mk("GET", map[string]string{"Accept": "text/html,application/xhtml+xml"}),
		mk("HEAD", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}),
	}
	no := []*http.Request{
		mk("GET", map[string]string{"Accept": "application/json"}),
		mk("GET", nil),
		mk("POST", map[string]string{"Accept": "text/html"}),
		mk("GET", map[string]string{"Accept": "text/html", "X-Requested-With": "XMLHttpRequest"}),
		mk("GET", map[string]string{"Accept": "text/html", "Sec-Fetch-Mode": "cors"}),
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

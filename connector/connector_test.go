package connector

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

var testCreds = CredentialNames{ID: "client_id", Secret: "client_secret"}

// The authorization response is read from the query of a GET and from
// the form of a POST (never the query of a POST, which an attacker's
// link could set); the provider's error codes are sorted into the
// administrator's (misconfiguration) and the user's (denied), and a
// response without a code is a rejection.
func TestAuthorizationResponse(t *testing.T) {
	get := func(q string) *http.Request { return httptest.NewRequest(http.MethodGet, "/cb?"+q, nil) }
	post := func(q, form string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/cb?"+q, strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for name, c := range map[string]struct {
		r        *http.Request
		code     string
		misconf  bool
		denied   string
		rejected bool
	}{
		"GET code":                  {r: get("code=abc&state=s"), code: "abc"},
		"POST code":                 {r: post("", "code=abc&state=s"), code: "abc"},
		"POST takes no query code":  {r: post("code=evil", "state=s"), rejected: true},
		"no code":                   {r: get("state=s"), rejected: true},
		"access_denied":             {r: get("error=access_denied"), denied: "access_denied"},
		"server_error":              {r: post("", "error=server_error"), denied: "server_error"},
		"invalid_client":            {r: get("error=invalid_client"), misconf: true},
		"redirect in description":   {r: get("error=invalid_request&error_description=bad+redirect_uri"), misconf: true},
		"error wins over a code":    {r: get("error=access_denied&code=abc"), denied: "access_denied"},
		"unsupported_response_type": {r: get("error=unsupported_response_type"), misconf: true},
	} {
		code, err := AuthorizationResponse(c.r, testCreds, "https://site/cb")
		var mc *Misconfiguration
		var d *Denied
		switch {
		case c.code != "":
			if err != nil || code != c.code {
				t.Errorf("%s: %q, %v; want %q", name, code, err, c.code)
			}
		case c.misconf:
			if !errors.As(err, &mc) || !errors.Is(err, ErrMisconfigured) || mc.Fix == "" {
				t.Errorf("%s: %v, want a misconfiguration with a fix", name, err)
			}
		case c.denied != "":
			if !errors.As(err, &d) || d.Code != c.denied {
				t.Errorf("%s: %v, want denied %q", name, err, c.denied)
			}
		case c.rejected:
			if !errors.Is(err, ErrRejected) {
				t.Errorf("%s: %v, want ErrRejected", name, err)
			}
		}
	}
}

// FuzzSaid: what a provider said, as logged, never holds a hidden value
// (plain or URL-encoded), a control character or invalid UTF-8 that the
// input did not, and is bounded.
func FuzzSaid(f *testing.F) {
	f.Add("invalid_client", "client secret s3cr3t is wrong", "s3cr3t")
	f.Add("x", "code=a%2Fb\r\nforged: line", "a/b")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, code, desc, hide string) {
		s := Said(code, desc, hide)
		if len(hide) >= 4 && !strings.Contains(code+desc, "[redacted]") && (strings.Contains(s, hide) || strings.Contains(s, url.QueryEscape(hide))) {
			if !strings.Contains(strings.ReplaceAll(s, "[redacted]", ""), hide) {
				return
			}
			t.Fatalf("Said(%q, %q, hide %q) = %q shows the hidden value", code, desc, hide, s)
		}
		if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("Said(%q, %q) = %q holds a control character", code, desc, s)
		}
		if len(s) > maxSaid+len("…") {
			t.Fatalf("Said is %d bytes, over the bound", len(s))
		}
		if utf8.ValidString(code+desc) && !utf8.ValidString(s) {
			t.Fatalf("Said(%q, %q) = %q is not valid UTF-8", code, desc, s)
		}
	})
}

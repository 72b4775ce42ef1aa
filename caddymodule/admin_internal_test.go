package caddymodule

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// FuzzCheckJSONKeys: checkJSONKeys never panics, and a body it accepts
// that encoding/json reads as an object has each top-level key once,
// spelt as a field.
func FuzzCheckJSONKeys(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"set":{"a":"b"},"grant_roles":["x"]}`, `{"set":{"a":"1","a":"2"}}`,
		`{"GRANT_ROLES":[]}`, `[{"a":1},{"a":1}]`, `{"a":[{"b":{"c":[1,{"d":2}]}}]}`, `}{`, `{"set":`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if checkJSONKeys(body, userChangeFields) != nil {
			return
		}
		var top map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil {
			return
		}
		for k := range top {
			if k != "set" && k != "grant_roles" && k != "revoke_roles" {
				t.Fatalf("accepted %q with the key %q", body, k)
			}
		}
	})
}

// The dispatcher refuses an unknown route with 404 and a method a route
// does not take with 405 naming the ones it does, before any store or
// app is looked at.
func TestAdminDispatcherRefusesUnknownRoutesAndMethods(t *testing.T) {
	for _, c := range []struct {
		method, path string
		want         int
		allow, msg   string
	}{
		{http.MethodGet, "/jit_auth/users/", http.StatusNotFound, "", "unknown jit_auth admin route"},
		{http.MethodGet, "/jit_auth/users/alice/other", http.StatusNotFound, "", "unknown jit_auth admin route"},
		{http.MethodPut, "/jit_auth/users/alice", http.StatusMethodNotAllowed, "DELETE, GET, PATCH", "method PUT not allowed; use DELETE, GET or PATCH"},
		{http.MethodGet, "/jit_auth/users/alice/disable", http.StatusMethodNotAllowed, "POST", "method GET not allowed; use POST"},
		{http.MethodGet, "/jit_auth/users/alice/totp", http.StatusMethodNotAllowed, "DELETE", "method GET not allowed; use DELETE"},
	} {
		w := httptest.NewRecorder()
		err := handleAdminUsers(w, httptest.NewRequest(c.method, c.path, nil))
		var apiErr caddy.APIError
		if !errors.As(err, &apiErr) || apiErr.HTTPStatus != c.want || !strings.Contains(apiErr.Err.Error(), c.msg) || w.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: %v, Allow %q; want %d %q, Allow %q", c.method, c.path, err, w.Header().Get("Allow"), c.want, c.msg, c.allow)
		}
	}
}

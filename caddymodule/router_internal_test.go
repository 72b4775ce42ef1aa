package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The router answers what no endpoint would: an unknown page is 404, a
// method an endpoint does not take is 405 naming the ones it does.
func TestRouterRefusesBeforeTheEndpoint(t *testing.T) {
	h := &Handler{}
	h.PathPrefix = "/.jitauth/"
	for _, c := range []struct {
		method, rest string
		want         int
		allow        string
	}{
		{http.MethodGet, "nope", http.StatusNotFound, ""},
		{http.MethodPut, "login", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, "start/corp", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPut, "callback/corp", http.StatusMethodNotAllowed, "GET, POST"},
		{http.MethodDelete, "logout", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodPost, "health", http.StatusOK, ""},
	} {
		w := httptest.NewRecorder()
		h.serveEndpoint(w, httptest.NewRequest(c.method, "/.jitauth/"+c.rest, nil), c.rest)
		if w.Code != c.want || w.Header().Get("Allow") != c.allow || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: %d, Allow %q, Cache-Control %q; want %d, Allow %q, no-store",
				c.method, c.rest, w.Code, w.Header().Get("Allow"), w.Header().Get("Cache-Control"), c.want, c.allow)
		}
	}
}

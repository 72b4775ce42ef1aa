package caddymodule

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzBearerToken: reading the Authorization header never panics, finds
// a token only after the Bearer scheme (any case), and returns it
// trimmed; tokenFacts reads any claims without panicking.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  a.b.c ", "Basic dXNlcjpwYXNz", "Bearer", "BEARER x", "Bearerx y", ""} {
		f.Add(s, []byte(`{"exp":1,"amr":["mfa"]}`))
	}
	f.Fuzz(func(t *testing.T, header string, raw []byte) {
		r := &http.Request{Header: http.Header{"Authorization": {header}}}
		tok, ok := bearerToken(r)
		if ok {
			if len(header) < 7 || !strings.EqualFold(header[:7], "bearer ") || tok != strings.TrimSpace(header[7:]) {
				t.Fatalf("%q read as bearer token %q", header, tok)
			}
		} else if len(header) >= 7 && strings.EqualFold(header[:7], "bearer ") {
			t.Fatalf("%q not read as a bearer token", header)
		}
		exp, _ := tokenFacts(raw)
		_ = exp.Before(time.Now())
	})
}

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

// tokenFacts reads exp as go-oidc's verification accepted it: a number,
// also with a fraction, or a string holding one. Read as 1970, a valid
// token's session ended before it began: never cached, and its
// assertion expired when signed.
func TestTokenFactsReadsExpAsTheVerificationDid(t *testing.T) {
	for raw, want := range map[string]int64{
		`{"exp":1900000000,"amr":["pwd","mfa"]}`:   1900000000,
		`{"exp":"1900000000","amr":["pwd","mfa"]}`: 1900000000,
		`{"exp":1900000000.5,"amr":["mfa"]}`:       1900000000,
		`{"exp":"1.9e9","amr":["mfa"]}`:            1900000000,
	} {
		exp, mfa := tokenFacts([]byte(raw))
		if exp.Unix() != want || !mfa {
			t.Errorf("tokenFacts(%s) = %d, mfa %v; want %d, mfa true", raw, exp.Unix(), mfa, want)
		}
	}
}

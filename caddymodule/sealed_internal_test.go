package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

// Every kind of sealed cookie goes through one seal and one open: what
// is sealed opens again, and a missing, oversized, tampered or
// foreign-key cookie is no value.
func TestCookieSealOpensOnlyItsOwn(t *testing.T) {
	seal := cookieSeal(testCodecs())
	other := cookieSeal(newCodecs([]rawKeyPair{{hash: []byte(strings.Repeat("h", 64)), block: []byte(strings.Repeat("b", 32))}}, 3600))
	type value struct{ A, B string }

	w := httptest.NewRecorder()
	if err := seal.seal(w, "jitauth_x", value{"a", "b"}, time.Minute, false); err != nil {
		t.Fatal(err)
	}
	sealed := w.Result().Cookies()[0]
	withCookie := func(c *http.Cookie) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://localhost/", nil)
		if c != nil {
			r.AddCookie(c)
		}
		return r
	}
	var got value
	if !seal.open(withCookie(sealed), "jitauth_x", &got) || got != (value{"a", "b"}) {
		t.Fatalf("sealed value did not open: %+v", got)
	}
	if sealed.MaxAge != 60 || !sealed.HttpOnly {
		t.Errorf("sealed cookie: max-age %d, HttpOnly %v", sealed.MaxAge, sealed.HttpOnly)
	}
	tampered := *sealed
	tampered.Value = sealed.Value[:len(sealed.Value)-2] + "AA"
	// A value under the size bound that the codecs would otherwise
	// decode must be refused when over it: re-seal a large value with
	// a codec that has no length limit of its own.
	big := securecookie.New(make([]byte, 64), make([]byte, 32))
	big.SetSerializer(securecookie.JSONEncoder{})
	big.MaxLength(0)
	bigValue, err := big.Encode("jitauth_x", value{A: strings.Repeat("x", 3000)})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*http.Request{
		"missing":     withCookie(nil),
		"tampered":    withCookie(&tampered),
		"foreign key": withCookie(sealed),
		"oversized":   withCookie(&http.Cookie{Name: "jitauth_x", Value: bigValue}),
	} {
		codecs := seal
		if name == "foreign key" {
			codecs = other
		}
		if codecs.open(r, "jitauth_x", new(value)) {
			t.Errorf("%s cookie opened", name)
		}
	}
	if len(bigValue) <= maxCookieLength {
		t.Fatalf("the oversized value is %d bytes, not over the bound", len(bigValue))
	}
}

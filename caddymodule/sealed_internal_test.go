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

// A flow cookie is SameSite=None only for a connector whose provider
// returns with a cross-site POST, and only on HTTPS (browsers refuse
// None without Secure; on loopback HTTP the provider is same-site):
// otherwise Lax, as every other cookie of the module.
func TestFlowCookieSameSite(t *testing.T) {
	seal := cookieSeal(newCodecs([]rawKeyPair{{hash: []byte(strings.Repeat("h", 64)), block: []byte(strings.Repeat("b", 32))}}, 3600))
	for _, c := range []struct {
		secure, crossSitePost bool
		want                  http.SameSite
	}{
		{true, true, http.SameSiteNoneMode},
		{false, true, http.SameSiteLaxMode},
		{true, false, http.SameSiteLaxMode},
		{false, false, http.SameSiteLaxMode},
	} {
		w := httptest.NewRecorder()
		if err := seal.sealFlow(w, "jitauth_flow_x", &flowState{State: "s"}, c.secure, c.crossSitePost); err != nil {
			t.Fatal(err)
		}
		ck := w.Result().Cookies()
		if len(ck) != 1 || ck[0].SameSite != c.want || ck[0].Secure != c.secure || !ck[0].HttpOnly {
			t.Errorf("secure %v, cross-site POST %v: %+v, want SameSite %v", c.secure, c.crossSitePost, ck, c.want)
		}
	}
}

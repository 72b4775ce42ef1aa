package caddymodule

import (
	"fmt"
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

// Over the bound, a start drops flow cookies that cannot complete a
// login first (another key's, tampered, expired), then the oldest, and
// leaves the newest maxFlows-1 and every other cookie alone.
func TestDropOldFlowsDropsUnusableThenOldest(t *testing.T) {
	seal := cookieSeal(testCodecs())
	other := cookieSeal(newCodecs([]rawKeyPair{{hash: []byte(strings.Repeat("h", 64)), block: []byte(strings.Repeat("b", 32))}}, 3600))
	now := time.Now()
	for _, secure := range []bool{false, true} {
		r := httptest.NewRequest(http.MethodGet, "http://localhost/", nil)
		add := func(codecs cookieSeal, label string, expires time.Time) string {
			name := flowCookieName(label, secure)
			v, err := codecs.encode(name, &flowState{State: label, ExpiresAt: expires.Unix()})
			if err != nil {
				t.Fatal(err)
			}
			r.AddCookie(&http.Cookie{Name: name, Value: v})
			return name
		}
		var live []string
		for i, minutes := range []int{4, 2, 6, 1, 5, 3} { // not sent in order of age
			live = append(live, add(seal, fmt.Sprint("live", i), now.Add(time.Duration(minutes)*time.Minute)))
		}
		foreign := add(other, "foreign", now.Add(9*time.Minute))
		expired := add(seal, "expired", now.Add(-time.Second))
		r.AddCookie(&http.Cookie{Name: flowCookieName("tampered", secure), Value: "AAAA"})
		r.AddCookie(&http.Cookie{Name: live[3], Value: "a second copy counts once"})
		r.AddCookie(&http.Cookie{Name: "app_session", Value: "kept"})

		w := httptest.NewRecorder()
		dropOldFlows(w, r, seal, secure, maxFlows-1, "")
		dropped := map[string]bool{}
		for _, c := range w.Result().Cookies() {
			if c.MaxAge >= 0 || c.Secure != secure || c.Path != "/" {
				t.Errorf("secure=%v: %s is not deleted as the module's cookie: %+v", secure, c.Name, c)
			}
			dropped[c.Name] = true
		}
		// Nine distinct flow cookies, four of them kept: the three that
		// cannot open, and the two live ones closest to expiring (live
		// 3 and 1, at 1 and 2 minutes).
		want := []string{foreign, expired, flowCookieName("tampered", secure), live[3], live[1]}
		for _, n := range want {
			if !dropped[n] {
				t.Errorf("secure=%v: %s was not dropped", secure, n)
			}
		}
		if len(dropped) != len(want) {
			t.Errorf("secure=%v: dropped %d cookies, want %d: %v", secure, len(dropped), len(want), dropped)
		}
	}

	// Long return paths make each flow larger: fewer than maxFlows are
	// kept, so that the ones left stay within maxHeldFlowBytes.
	r := httptest.NewRequest(http.MethodGet, "http://localhost/", nil)
	var names []string
	for i := range 3 {
		name := flowCookieName(fmt.Sprint("long", i), false)
		v, err := seal.encode(name, &flowState{State: "s", ReturnTo: "/" + strings.Repeat("p", 1500), ExpiresAt: now.Add(time.Duration(i+1) * time.Minute).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		if len(name)+len(v) <= maxHeldFlowBytes/2 {
			t.Fatalf("a long flow is only %d bytes", len(name)+len(v))
		}
		r.AddCookie(&http.Cookie{Name: name, Value: v})
		names = append(names, name)
	}
	w := httptest.NewRecorder()
	dropOldFlows(w, r, seal, false, maxFlows-1, "")
	var dropped []string
	for _, c := range w.Result().Cookies() {
		dropped = append(dropped, c.Name)
	}
	if len(dropped) != 2 || dropped[0] != names[0] || dropped[1] != names[1] {
		t.Errorf("three long flows: dropped %v, want the two oldest %v", dropped, names[:2])
	}

	// Under the bounds nothing is dropped, not even a cookie that does
	// not open.
	r = httptest.NewRequest(http.MethodGet, "http://localhost/", nil)
	r.AddCookie(&http.Cookie{Name: flowCookieName("tampered", false), Value: "AAAA"})
	w = httptest.NewRecorder()
	dropOldFlows(w, r, seal, false, maxFlows-1, "")
	if n := len(w.Result().Cookies()); n != 0 {
		t.Errorf("under the bound, %d cookies dropped", n)
	}
}

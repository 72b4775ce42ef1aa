package caddymodule

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/jitauth/caddy-jitauth/mfa"
)

// FuzzEnrolmentCookie feeds arbitrary values to the TOTP enrolment
// reader: nothing panics, and only a value we sealed for this user and
// session opens.
func FuzzEnrolmentCookie(f *testing.F) {
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs()}}}
	s := &Session{ID: "sid", UserID: "uid"}
	now := time.Now()
	good, err := securecookie.EncodeMulti(enrolCookieBase, &totpEnrolment{UserID: "uid", SessionID: "sid", Secret: "S", ExpiresAt: now.Add(time.Minute).Unix()}, h.app.sessions.seal...)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		r, _ := http.NewRequest("GET", "http://localhost/", nil)
		r.AddCookie(&http.Cookie{Name: enrolCookieBase, Value: value})
		if en, ok := h.openEnrolment(r, s, false, now); ok && (en.UserID != "uid" || en.SessionID != "sid" || en.Secret != "S") {
			t.Fatalf("value %q opened as %+v", value, en)
		}
	})
}

// An enrolment is bound to the user and session that asked for it.
func TestEnrolmentBoundToSession(t *testing.T) {
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs()}}}
	now := time.Now()
	value, err := securecookie.EncodeMulti(enrolCookieBase, &totpEnrolment{UserID: "uid", SessionID: "sid", Secret: "S", ExpiresAt: now.Add(time.Minute).Unix()}, h.app.sessions.seal...)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "http://localhost/", nil)
	r.AddCookie(&http.Cookie{Name: enrolCookieBase, Value: value})
	for _, c := range []struct {
		s    Session
		at   time.Time
		want bool
	}{
		{Session{ID: "sid", UserID: "uid"}, now, true},
		{Session{ID: "other", UserID: "uid"}, now, false},
		{Session{ID: "sid", UserID: "someone"}, now, false},
		{Session{ID: "sid", UserID: "uid"}, now.Add(time.Minute), false},
	} {
		if _, ok := h.openEnrolment(r, &c.s, false, c.at); ok != c.want {
			t.Errorf("session %+v at +%v: opened %v, want %v", c.s, c.at.Sub(now), ok, c.want)
		}
	}
}

// FuzzRouteWalk feeds arbitrary handler JSON to the interconnection
// check's route reader: it never panics, whatever a config holds.
func FuzzRouteWalk(f *testing.F) {
	f.Add(`{"handler":"subroute","routes":[{"match":[{"host":["a"],"path":["/x*"]}],"handle":[{"handler":"jit_auth","application":"wiki"}]}]}`)
	f.Add(`{"handler":"jit_auth","connections":["corp"],"mfa":{"totp":true}}`)
	f.Add(`{"handler":"subroute","routes":[{"match":[{"host":"notalist"}],"handle":[null,{}]}]}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var out []attachment
		walkRawHandler(json.RawMessage(raw), scope{server: "srv0", listen: []string{":8080"}}, &out)
		for _, a := range out {
			_ = a.where
		}
	})
}

// The issuer shown in authenticator apps is the site's host without its
// port; an IPv6 literal's colons, which the otpauth label cannot hold,
// become dashes, so that a site reached by its IPv6 address can enrol.
func TestTOTPIssuerMakesASecretForEveryHost(t *testing.T) {
	for host, want := range map[string]string{
		"wiki.example.com":     "wiki.example.com",
		"Wiki.Example.com:443": "wiki.example.com",
		"localhost:8080":       "localhost",
		"[::1]:8443":           "--1",
		"[2001:db8::7]":        "2001-db8--7",
		"192.0.2.1:80":         "192.0.2.1",
	} {
		got := totpIssuer(host)
		if got != want {
			t.Errorf("totpIssuer(%q) = %q, want %q", host, got, want)
		}
		if _, err := mfa.NewSecret(got, "alice"); err != nil {
			t.Errorf("no TOTP secret for a site at %q: %v", host, err)
		}
	}
}

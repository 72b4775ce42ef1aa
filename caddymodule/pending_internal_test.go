package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// FuzzPendingCookie feeds arbitrary values to the paused-login reader:
// nothing panics and nothing but a value we sealed opens.
func FuzzPendingCookie(f *testing.F) {
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs()}}}
	now := time.Now()
	w := httptest.NewRecorder()
	p := &pendingLogin{ID: "id", CSRF: "x", Connection: "c", Claims: toPendingClaims(provisioner.Claims{Subject: "s", Raw: []byte(`{"a":1}`)}),
		Outcome: string(provisioner.OutcomeNeedsConsent), ReturnTo: "/", ExpiresAt: now.Add(time.Minute).Unix()}
	if err := h.sealPending(w, p, false, now); err != nil {
		f.Fatal(err)
	}
	f.Add(w.Result().Cookies()[0].Value)
	f.Add("")
	f.Add("bm90IGEgY29va2ll")
	f.Fuzz(func(t *testing.T, value string) {
		r, _ := http.NewRequest("GET", "http://localhost/", nil)
		r.AddCookie(&http.Cookie{Name: pendingCookieBase, Value: value})
		got, ok := h.openPending(r, false, now)
		if ok && (got.ID != "id" || got.Claims.Subject != "s") {
			t.Fatalf("value %q opened as %+v", value, got)
		}
	})
}

// The claims survive the cookie, including the difference between a
// groups claim sent empty and one not sent.
func TestPendingClaimsRoundTrip(t *testing.T) {
	for _, groups := range [][]string{nil, {}, {"a", "b"}} {
		c := provisioner.Claims{Issuer: "i", Subject: "s", Email: "e@x", EmailVerified: true, EmailVerifiedKnown: true,
			Name: "n", PreferredUsername: "p", Groups: groups, Raw: []byte(`{"k":"v"}`)}
		got := toPendingClaims(c).claims()
		if (got.Groups == nil) != (groups == nil) || len(got.Groups) != len(groups) || string(got.Raw) != `{"k":"v"}` ||
			got.Email != c.Email || !got.EmailVerified || !got.EmailVerifiedKnown || got.PreferredUsername != "p" {
			t.Errorf("groups %#v: round trip gave %+v", groups, got)
		}
	}
}

// A paused login expires with the flow it continues.
func TestPendingExpiresWithTheFlow(t *testing.T) {
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs()}}}
	now := time.Now()
	w := httptest.NewRecorder()
	p := &pendingLogin{ID: "id", CSRF: "x", Connection: "c", ExpiresAt: now.Add(time.Minute).Unix()}
	if err := h.sealPending(w, p, false, now); err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "http://localhost/", nil)
	r.AddCookie(w.Result().Cookies()[0])
	if _, ok := h.openPending(r, false, now); !ok {
		t.Fatal("a fresh paused login does not open")
	}
	if _, ok := h.openPending(r, false, now.Add(time.Minute)); ok {
		t.Error("a paused login opens after its flow expired")
	}
}

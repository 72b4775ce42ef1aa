package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

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

// endsSessions is a connector's end-session ability, for a connection
// that signs out at the provider.
type endsSessions struct{}

func (endsSessions) EndSessionURL(context.Context, string, string, string) (string, bool, error) {
	return "", false, nil
}

// tokensRequest is a request carrying the cookies w set so far.
func tokensRequest(w *httptest.ResponseRecorder) *http.Request {
	r, _ := http.NewRequest("POST", "http://localhost/.jitauth/consent", nil)
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		r.AddCookie(c)
	}
	return r
}

// A paused login keeps, beside its pending cookie, only the tokens its
// connection's features keep, and only that sign-in's pending login
// gets them back.
func TestPendingTokensKeptForTheFeaturesAndTheirLogin(t *testing.T) {
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs()}}, logger: zaptest.NewLogger(t)}
	now := time.Now()
	claims := provisioner.Claims{Subject: "s", IDToken: "id.token.sig", RefreshToken: "rt-1", TokenExpiry: now.Add(time.Hour)}
	p := &pendingLogin{ID: "id", CSRF: "csrf-1", ExpiresAt: now.Add(time.Minute).Unix()}

	// A connection without such features: no cookie at all.
	w := httptest.NewRecorder()
	h.keepPendingTokens(w, tokensRequest(w), &Connection{name: "plain"}, p, claims, now)
	if n := len(w.Header()["Set-Cookie"]); n != 0 {
		t.Fatalf("a connection that keeps no token wrote %d cookies", n)
	}

	// Signing out at the provider keeps the ID token, not the refresh token.
	w = httptest.NewRecorder()
	h.keepPendingTokens(w, tokensRequest(w), &Connection{name: "c", LogoutAtProvider: true, endSession: endsSessions{}}, p, claims, now)
	r := tokensRequest(w)
	got := h.withPendingTokens(r, p, provisioner.Claims{Subject: "s"})
	if got.IDToken != "id.token.sig" || got.RefreshToken != "" {
		t.Fatalf("after the pause: ID token %q, refresh token %q; want the ID token alone", got.IDToken, got.RefreshToken)
	}
	// Another sign-in's pending login (another CSRF token) gets nothing.
	other := &pendingLogin{ID: "id2", CSRF: "csrf-2", ExpiresAt: p.ExpiresAt}
	if got := h.withPendingTokens(r, other, provisioner.Claims{Subject: "s"}); got.IDToken != "" {
		t.Fatal("the tokens of one sign-in were given to another's pending login")
	}
	// A retry of the same sign-in (askAgain: new ID, same CSRF) gets them.
	retry := *p
	retry.ID = "id3"
	if got := h.withPendingTokens(r, &retry, provisioner.Claims{Subject: "s"}); got.IDToken != "id.token.sig" {
		t.Fatal("a retried answer of the same sign-in lost its tokens")
	}
}

// FuzzPendingTokensCookie feeds arbitrary values to the paused login's
// token reader: nothing panics, and nothing but a value we sealed for
// this pending login gives tokens.
func FuzzPendingTokensCookie(f *testing.F) {
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs()}}, logger: zap.NewNop()}
	now := time.Now()
	p := &pendingLogin{ID: "id", CSRF: "csrf-1", ExpiresAt: now.Add(time.Minute).Unix()}
	w := httptest.NewRecorder()
	h.keepPendingTokens(w, tokensRequest(w), &Connection{name: "c", LogoutAtProvider: true, endSession: endsSessions{}}, p,
		provisioner.Claims{Subject: "s", IDToken: "id.token.sig"}, now)
	f.Add(tokensRequest(w).Cookies()[0].Value)
	f.Add("")
	f.Add("bm90IGEgY29va2ll")
	f.Fuzz(func(t *testing.T, value string) {
		r, _ := http.NewRequest("POST", "http://localhost/", nil)
		r.AddCookie(&http.Cookie{Name: pendingTokensCookieBase, Value: value})
		got := h.withPendingTokens(r, p, provisioner.Claims{Subject: "s"})
		if (got.IDToken != "" || got.RefreshToken != "") && got.IDToken != "id.token.sig" {
			t.Fatalf("value %q gave tokens %+v", value, got)
		}
	})
}

// TestEndedSinceCountsFromTheAuthentication: a login that waited for the
// user (consent, a username) is refused when its user was signed out
// everywhere, or its provider session ended, after the provider's answer
// was verified, though the session would be issued later still; a
// sign-out before that answer does not touch it.
func TestEndedSinceCountsFromTheAuthentication(t *testing.T) {
	authAt := time.Now().Add(-time.Minute).Truncate(time.Second)
	issue := &Session{ID: "s", UserID: "u1", Connection: "corp", Subject: "sub", ProviderSID: "op",
		IssuedAt: authAt.Add(time.Minute).Unix()}
	for _, tc := range []struct {
		name string
		id   string
		want bool
	}{
		{"user signed out everywhere while waiting", userCutoffID("u1", authAt.Add(10*time.Second)), true},
		{"provider session logged out while waiting", userCutoffID(sidCutoffKey("corp", "op"), authAt.Add(10*time.Second)), true},
		{"user signed out before the answer", userCutoffID("u1", authAt.Add(-10*time.Second)), false},
		{"another user signed out", userCutoffID("u2", authAt.Add(10*time.Second)), false},
	} {
		m := &sessions{revoked: &revocations{}}
		m.revoked.add(tc.id, time.Now().Add(time.Hour))
		if got := m.endedSince(issue, authAt.Unix()); got != tc.want {
			t.Errorf("%s: endedSince = %v, want %v", tc.name, got, tc.want)
		}
	}
}

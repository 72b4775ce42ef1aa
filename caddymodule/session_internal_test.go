package caddymodule

import (
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
)

func testCodecs() []securecookie.Codec {
	return newCodecs([]rawKeyPair{{hash: make([]byte, 64), block: make([]byte, 32)}}, 3600)
}

// FuzzSessionCookie feeds arbitrary cookie values to the session reader:
// nothing panics, and nothing but a value sealed with our keys is a
// session.
func FuzzSessionCookie(f *testing.F) {
	codecs := testCodecs()
	now := time.Now()
	good, _ := securecookie.EncodeMulti("jitauth_session", &Session{ID: "x", Username: "u", Connection: "c", ExpiresAt: now.Add(time.Hour).Unix()}, codecs...)
	f.Add(good)
	f.Add("")
	f.Add("MTc5NTY1OTc5MnxMZjI2Vzh2VUFPX3R4b3NGd3NYWWZKcW9SeHQzUTNaYmJ5eHVDdlBlUHcxR1ZIblFwZ0wtSFF6LTFGNGRjRkVpLUl5MGhzbnAtU1gzenllbFltR3JUeHk0RDl5a0Z1RmlzcjJUWE5lek1TTGFNSjJES0QwQ0dDcGNEbDdtT3JxRDVwQ1duY3BKU0FXN3dELUlHaEJMQlpKd0JJY1hKNjlwblBKTHFyd0FfeHNUSEQ5THk4TW1ZcFFtdjB4ZVlDSEFoVExHZTFnRXBBdGdaTkQweXBMRjUzakt6T1owMzdadGVobnZrNUdwaGFoZzJUbUFIV1ZKdGlrQlhZaWdIY3RFYWFaLUxxaHlnbUJzdXlmSUlPVTB5UmY1ZkV4Z1kyek5qTm89fI9H")
	h := &Handler{app: &App{codecs: codecs, revoked: &revocations{}}, conns: []*Connection{{name: "c"}}}
	f.Fuzz(func(t *testing.T, value string) {
		r, _ := http.NewRequest("GET", "http://localhost/", nil)
		r.Header.Set("Cookie", "jitauth_session="+value)
		s := h.session(r)
		// Only the seed sealed with our keys may decode (a fuzzing worker
		// seals its own copy, so compare contents, not bytes).
		if s != nil && (s.ID != "x" || s.Username != "u" || s.Connection != "c") {
			t.Fatalf("value %q decoded to a session %+v", value, s)
		}
	})
}

// FuzzFlowCookie does the same for the login-flow cookie.
func FuzzFlowCookie(f *testing.F) {
	codecs := testCodecs()
	f.Add("state", "value")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, state, value string) {
		r, _ := http.NewRequest("GET", "http://localhost/", nil)
		r.AddCookie(&http.Cookie{Name: flowCookieName(state, false), Value: value})
		if fl, _, ok := openFlow(r, codecs, state, false, time.Now()); ok {
			t.Fatalf("forged flow accepted: %+v", fl)
		}
	})
}

package caddymodule

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
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
	h := &Handler{app: &App{sessions: &sessions{seal: codecs, revoked: &revocations{}}}, conns: []*Connection{{name: "c"}}}
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

// Only names that reach this machine count as loopback (plain-HTTP
// development cookies); an IP literal is parsed, never matched by prefix.
func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "localhost.": true, "app.localhost": true, "a.b.localhost": true,
		"127.0.0.1": true, "127.255.255.254": true, "127.1.2.3": true, "::1": true, "[::1]": true, "[0:0:0:0:0:0:0:1]": true,
		"127.evil.example": false, "127.0.0.1.evil.example": false, "127.": false, "127": false, "127.1": false,
		"127.0.0.1x": false, "0x7f.0.0.1": false, "0177.0.0.1": false, "127.000.000.001": false,
		"::ffff:127.0.0.1": false, "[::ffff:127.0.0.1]": false, "::1%lo": false, "[::1%25lo]": false, "::": false, "[::1": false, "::1]": false,
		"evil-localhost": false, "localhost.evil.example": false, "evillocalhost": false, ".localhost": false,
		"0.0.0.0": false, "10.0.0.1": false, "128.0.0.1": false, "example.com": false, "": false,
	} {
		if got := isLoopbackHost(host); got != want {
			t.Errorf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// FuzzIsLoopbackHost checks the class: whatever the text, it is loopback
// only if it is localhost, a subdomain of it, or parses as a loopback
// address literal.
func FuzzIsLoopbackHost(f *testing.F) {
	for _, s := range []string{"localhost", "x.localhost", "127.0.0.1", "127.evil.example", "[::1]", "::1", "127.", "::ffff:127.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if !isLoopbackHost(host) {
			return
		}
		h := strings.ToLower(strings.TrimSuffix(host, "."))
		if h == "localhost" || strings.HasSuffix(h, ".localhost") {
			return
		}
		ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
		if ip == nil || !ip.IsLoopback() {
			t.Fatalf("%q counted as loopback", host)
		}
	})
}

// FuzzIsLoopbackHostShortcuts holds isLoopbackHost to its answer before
// the shortcuts for the common literals and for names: lower-cased, a
// trailing dot dropped, localhost and its subdomains, else a parsed
// loopback literal.
func FuzzIsLoopbackHostShortcuts(f *testing.F) {
	for _, s := range []string{"localhost", "LOCALHOST.", "127.0.0.1", "127.000.0.1", "[::1]", "::1", "[127.0.0.1]", "1.2.3.4", "example.com", "fe80::1%lo", "0x7f.1", "127.1", "[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		h := strings.ToLower(strings.TrimSuffix(host, "."))
		want := h == "localhost" || (strings.HasSuffix(h, ".localhost") && len(h) > len(".localhost") && h[0] != '.')
		if !want {
			if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
				h = h[1 : len(h)-1]
			}
			if ip, err := netip.ParseAddr(h); err == nil && ip.Zone() == "" {
				want = (ip.Is4() && ip.IsLoopback()) || ip == netip.IPv6Loopback()
			}
		}
		if got := isLoopbackHost(host); got != want {
			t.Fatalf("isLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	})
}

// The session is read from the Cookie header as net/http's r.Cookie
// reads it (the first cookie of the name whose value it accepts, quotes
// stripped), whether the value comes from the session cache or not: a
// cached value behind a refused one, or with a byte net/http refuses
// added, is not taken for it.
func TestSessionCookieReadAsNetHTTPWithTheCache(t *testing.T) {
	codecs := testCodecs()
	good, err := securecookie.EncodeMulti(sessionCookieBase, &Session{ID: "x", Username: "u", Connection: "c", ExpiresAt: time.Now().Add(time.Hour).Unix()}, codecs...)
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{app: &App{sessions: &sessions{seal: codecs, revoked: &revocations{}, cache: newSessionCache()}}, conns: []*Connection{{name: "c"}}}
	for _, c := range []struct {
		line string
		want bool
	}{
		{sessionCookieBase + "=" + good, true},
		{sessionCookieBase + "=" + good, true}, // now from the cache
		{`other=1; ` + sessionCookieBase + `="` + good + `"`, true},
		{sessionCookieBase + `=a\b; ` + sessionCookieBase + "=" + good, true},
		{sessionCookieBase + "=" + good + "\x7f", false},
		{sessionCookieBase + "=" + good + "\x7f; " + sessionCookieBase + "=" + good, true},
		{sessionCookieBase + "=forged; " + sessionCookieBase + "=" + good, false}, // the first valid one is the forged one
		{"__Host-" + sessionCookieBase + "=" + good, false},                       // another name on plain HTTP
	} {
		for round := range 2 { // first read and cached read alike
			r, _ := http.NewRequest("GET", "http://localhost/", nil)
			r.Header.Set("Cookie", c.line)
			_, nethttp := r.Cookie(sessionCookieBase)
			if got := h.session(r) != nil; got != c.want {
				t.Errorf("round %d, Cookie %.60q…: session %v, want %v (net/http finds a cookie: %v)", round, c.line, got, c.want, nethttp == nil)
			}
		}
	}
}

// Each application with an idle timeout keeps its own last activity; a
// session from before that kept one for all still counts from it.
func TestLastActivePerApplication(t *testing.T) {
	admin := &Handler{Application: Application{IdleTimeout: caddy.Duration(2 * time.Second), Connections: []string{"corp"}}}
	main := &Handler{Application: Application{IdleTimeout: caddy.Duration(8 * time.Second), Connections: []string{"corp"}}}
	a, b := &App{}, &App{} // two loads of one configuration
	ka, kb := a.activityKeyFor(admin, nil), b.activityKeyFor(admin, nil)
	if ka != kb || ka == a.activityKeyFor(main, nil) {
		t.Error("an inline application's key is not a function of its configuration")
	}
	if again := a.activityKeyFor(admin, nil); again == ka {
		t.Error("a second inline application like the first shares its key")
	}
	named := &Handler{ApplicationName: "admin"}
	if k := a.activityKeyFor(named, nil); k != "n:admin" || a.activityKeyFor(named, nil) != k {
		t.Errorf("a named application's key: %q, and the same for each route attaching it", k)
	}
	s := &Session{IssuedAt: 100, Active: map[string]int64{"n:admin": 300}}
	if s.lastActive("n:admin") != 300 || s.lastActive("other") != 100 {
		t.Errorf("lastActive: %d %d, want 300 100", s.lastActive("n:admin"), s.lastActive("other"))
	}
	legacy := &Session{IssuedAt: 100, LastActive: 200}
	if legacy.lastActive("n:admin") != 200 {
		t.Errorf("a session with the one last activity of old: %d, want 200", legacy.lastActive("n:admin"))
	}
}

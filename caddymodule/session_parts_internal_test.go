package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

// requestWithCookies is a request carrying the cookies name=value.
func requestWithCookies(pairs ...string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "/", nil)
	for i := 0; i+1 < len(pairs); i += 2 {
		r.AddCookie(&http.Cookie{Name: pairs[i], Value: pairs[i+1]})
	}
	return r
}

func TestSessionParts(t *testing.T) {
	for _, n := range []int{10, maxCookieLength, maxCookieLength + 1, 2*maxCookieLength + 5, maxSessionLength} {
		value := strings.Repeat("A", n)
		parts := splitSession(value)
		if want := 1 + max(0, (n-maxCookieLength+2+maxCookieLength-1)/maxCookieLength); n > maxCookieLength && len(parts) != want || n <= maxCookieLength && len(parts) != 1 {
			t.Errorf("%d bytes: %d parts", n, len(parts))
		}
		if len(parts) > maxSessionParts {
			t.Errorf("%d bytes: %d parts, over %d", n, len(parts), maxSessionParts)
		}
		var pairs []string
		for i, p := range parts {
			if len(p) > maxCookieLength {
				t.Errorf("%d bytes: part %d of %d bytes", n, i, len(p))
			}
			pairs = append(pairs, sessionPartName("jitauth_session", i), p)
		}
		got, ok := sessionValue(requestWithCookies(pairs...), "jitauth_session")
		if !ok || got != value {
			t.Errorf("%d bytes: joined %d bytes, %v", n, len(got), ok)
		}
	}

	// A forged or broken count, or a missing part, is no session.
	for _, pairs := range [][]string{
		{"jitauth_session", "4.AAAA", "jitauth_session_1", "B", "jitauth_session_2", "C", "jitauth_session_3", "D"},
		{"jitauth_session", "1.AAAA"},
		{"jitauth_session", "0.AAAA"},
		{"jitauth_session", "9.AAAA"},
		{"jitauth_session", "a.AAAA"},
		{"jitauth_session", "3.AAAA", "jitauth_session_1", "B"},
		{"jitauth_session", "2.AAAA", "jitauth_session_2", "B"},
	} {
		if v, ok := sessionValue(requestWithCookies(pairs...), "jitauth_session"); ok {
			t.Errorf("cookies %q: joined to %q", pairs, v)
		}
	}
}

// FuzzSessionParts: whatever the session cookie and its parts hold,
// joining them reads at most maxSessionParts cookies' worth, without a
// panic.
func FuzzSessionParts(f *testing.F) {
	f.Add("2.AAAA", "BBBB", "")
	f.Add("3.A", "B", "C")
	f.Add("9.", "", "")
	f.Add("AAAA", "", "")
	f.Fuzz(func(t *testing.T, first, second, third string) {
		r := requestWithCookies("jitauth_session", first, "jitauth_session_1", second, "jitauth_session_2", third, "jitauth_session_3", "extra")
		v, ok := sessionValue(r, "jitauth_session")
		if ok && len(v) > len(first)+len(second)+len(third) {
			t.Fatalf("joined %d bytes from %d", len(v), len(first)+len(second)+len(third))
		}
		if ok && strings.Contains(v, "extra") && !strings.Contains(first+second+third, "extra") {
			t.Fatalf("read a fourth part: %q", v)
		}
	})
}

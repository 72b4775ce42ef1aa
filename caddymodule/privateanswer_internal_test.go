package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPrivateCacheControl(t *testing.T) {
	for _, tc := range []struct {
		lines []string
		want  string
	}{
		{nil, "private"},
		{[]string{"public, max-age=600"}, "private, max-age=600"},
		{[]string{"max-age=60, S-MAXAGE=3600", "Public"}, "private, max-age=60"},
		{[]string{"no-store"}, ""},
		{[]string{"max-age=0, Private"}, ""},
		{[]string{`private="X-Foo", public, max-age=5`}, "private, max-age=5"},
		{[]string{"public", "NO-STORE"}, ""},
		{[]string{" , immutable,, "}, "private, immutable"},
	} {
		if got := privateCacheControl(tc.lines); got != tc.want {
			t.Errorf("privateCacheControl(%q) = %q, want %q", tc.lines, got, tc.want)
		}
	}
}

// The header rewrite happens however the answer's header goes out: an
// explicit WriteHeader, a first Write, ReadFrom (reverse_proxy copies
// bodies that way) or a Flush before anything was written.
func TestPrivateAnswerRewritesOnEveryWayOut(t *testing.T) {
	for name, send := range map[string]func(w http.ResponseWriter){
		"WriteHeader": func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) },
		"Write":       func(w http.ResponseWriter) { w.Write([]byte("x")) },
		"ReadFrom":    func(w http.ResponseWriter) { w.(*privateAnswer).ReadFrom(strings.NewReader("x")) },
		"Flush":       func(w http.ResponseWriter) { http.NewResponseController(w).Flush() },
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := newPrivateAnswer(rec)
			w.Header().Set("Cache-Control", "public, max-age=600")
			send(w)
			if got := rec.Result().Header.Get("Cache-Control"); got != "private, max-age=600" {
				t.Fatalf("Cache-Control sent: %q", got)
			}
		})
	}
}

func FuzzPrivateCacheControl(f *testing.F) {
	for _, s := range []string{"", "public, max-age=600", "no-store", "private", `private="a, public"`, "s-maxage=1,PUBLIC", "\x00,=,"} {
		f.Add(s, "max-age=1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		got := privateCacheControl([]string{a, b})
		if got == "" {
			return // the application's own lines said no-store or private
		}
		if !strings.HasPrefix(got, "private") {
			t.Fatalf("%q, %q gave %q, not private", a, b, got)
		}
		for _, d := range strings.Split(got, ",")[1:] {
			name, _, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "public", "s-maxage", "private":
				t.Fatalf("%q, %q gave %q, which keeps %q", a, b, got, d)
			}
		}
	})
}

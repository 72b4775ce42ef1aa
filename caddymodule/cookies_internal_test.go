package caddymodule

import (
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

func TestWithoutModuleCookies(t *testing.T) {
	for _, c := range []struct{ in, kept, removed string }{
		{"a=1; b=2", "a=1; b=2", ""},
		{"", "", ""},
		{"jitauth_session=S", "", "jitauth_session=S"},
		{"__Host-jitauth_session=S", "", "__Host-jitauth_session=S"},
		{"a=1; jitauth_session=S", "a=1", "jitauth_session=S"},
		{"jitauth_session=S; a=1", "a=1", "jitauth_session=S"},
		{"a=1; jitauth_session=S; b=2", "a=1; b=2", "jitauth_session=S"},
		{"a=1;jitauth_session=S;b=\"x y\";  c=3", "a=1;b=\"x y\";  c=3", "jitauth_session=S"},
		{"jitauth_flow_0011223344556677=F; __Host-jitauth_pending=P; a=1; jitauth_totp_enrol=E", "a=1", "jitauth_flow_0011223344556677=F; __Host-jitauth_pending=P; jitauth_totp_enrol=E"},
		{"a=1; jitauth_pending_tokens=T; jitauth_logout_hint=H", "a=1", "jitauth_pending_tokens=T; jitauth_logout_hint=H"},
		{"a=1; JITAUTH_SESSION=S; __secure-jitauth_x=1; b", "a=1; b", "JITAUTH_SESSION=S; __secure-jitauth_x=1"},
		{" jitauth_session =S ; a=1", "a=1", "jitauth_session =S"},
		{"jitauth_session", "", "jitauth_session"},
		{"jitauth_session=S;", "", "jitauth_session=S"},
		{"a=1; jitauth_session=S;", "a=1;", "jitauth_session=S"},
		{";;jitauth_session=S;;", "", "jitauth_session=S"},
		{"jitauthx=1; myjitauth_session=2; jitauth=3", "jitauthx=1; myjitauth_session=2; jitauth=3", ""},
		{"a=jitauth_session=S; b=2", "a=jitauth_session=S; b=2", ""},
	} {
		kept, removed := withoutModuleCookies(c.in)
		if kept != c.kept || removed != c.removed {
			t.Errorf("withoutModuleCookies(%q) = %q, %q; want %q, %q", c.in, kept, removed, c.kept, c.removed)
		}
	}
}

func TestWithholdModuleCookiesLines(t *testing.T) {
	h := http.Header{"Cookie": {"jitauth_session=S", "a=1; __Host-jitauth_flow_ab=F", "b=2"}}
	held := withholdModuleCookies(h)
	if got := h["Cookie"]; len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("Cookie lines = %q", got)
	}
	if held != "jitauth_session=S; __Host-jitauth_flow_ab=F" {
		t.Errorf("held = %q", held)
	}
	h = http.Header{"Cookie": {"jitauth_session=S", "__Host-jitauth_session=T"}}
	if withholdModuleCookies(h); h["Cookie"] != nil {
		t.Errorf("empty Cookie header left: %q", h["Cookie"])
	}
	h = http.Header{"Cookie": {"a=1"}}
	if held := withholdModuleCookies(h); held != "" || h.Get("Cookie") != "a=1" {
		t.Errorf("unrelated cookie changed: %q, %q", h["Cookie"], held)
	}
}

// Browsers send the module's cookie at the start or the end of the line;
// taking it off then, or finding none, allocates nothing.
func TestWithoutModuleCookiesAllocations(t *testing.T) {
	for _, line := range []string{
		"_ga=GA1.1.1234; theme=dark; csrftoken=abc",
		"jitauth_session=MTcz; _ga=GA1.1.1234; theme=dark",
		"_ga=GA1.1.1234; theme=dark; __Host-jitauth_session=MTcz",
		"__Host-jitauth_session=MTcz",
	} {
		if n := testing.AllocsPerRun(100, func() { withoutModuleCookies(line) }); n != 0 {
			t.Errorf("%q: %v allocations", line, n)
		}
	}
}

// FuzzWithoutModuleCookies: whatever the line, no module cookie is left
// in it (as net/http reads cookies), every other pair is kept in order
// with its bytes, and nothing panics.
func FuzzWithoutModuleCookies(f *testing.F) {
	for _, s := range []string{"a=1; jitauth_session=S; b=2", "jitauth_session=S", "__Host-jitauth_flow_x=1;a", ";;", " jitauth_session = x ;", "a=\"b;jitauth_session=c\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		kept, removed := withoutModuleCookies(line)
		r := &http.Request{Header: http.Header{"Cookie": {kept}}}
		for _, c := range r.Cookies() {
			if isModuleCookie(c.Name) {
				t.Fatalf("%q: module cookie %q left in %q", line, c.Name, kept)
			}
		}
		var want []string
		for part := range strings.SplitSeq(line, ";") {
			if !isModuleCookie(cookiePairName(part)) && strings.Trim(part, " \t") != "" {
				want = append(want, strings.Trim(part, " \t"))
			}
		}
		var got []string
		for part := range strings.SplitSeq(kept, ";") {
			if strings.Trim(part, " \t") != "" {
				got = append(got, strings.Trim(part, " \t"))
			}
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("%q: kept %q, want the pairs %q", line, kept, want)
		}
		if removed == "" && kept != line && kept != strings.TrimLeft(line, " \t") && strings.Trim(line, " \t;") != "" {
			t.Fatalf("%q changed to %q with nothing removed", line, kept)
		}
	})
}

func TestStripConnectionTokens(t *testing.T) {
	_, keys := buildHeaderRules(map[string]string{"X-Custom-User": "{http.auth.user.id}"})
	h := http.Header{"Connection": {"keep-alive, Remote-User", "remote_user,REMOTE-GROUPS , x-custom-user", "Upgrade"}}
	stripConnectionTokens(h, keys)
	if got := h["Connection"]; len(got) != 2 || got[0] != "keep-alive" || got[1] != "Upgrade" {
		t.Errorf("Connection = %q", got)
	}
	h = http.Header{"Connection": {"Remote-User"}}
	if stripConnectionTokens(h, keys); h["Connection"] != nil {
		t.Errorf("Connection = %q, want none", h["Connection"])
	}
	h = http.Header{"Connection": {"keep-alive"}}
	if n := testing.AllocsPerRun(100, func() { stripConnectionTokens(h, keys) }); n != 0 || h.Get("Connection") != "keep-alive" {
		t.Errorf("keep-alive: %v allocations, %q", n, h["Connection"])
	}
}

// FuzzStripConnectionTokens: no token left names an identity header, in
// any spelling.
func FuzzStripConnectionTokens(f *testing.F) {
	_, keys := buildHeaderRules(map[string]string{"X-Custom-User": "v"})
	f.Add("keep-alive, Remote-User", "remote_user")
	f.Add(",,", " , Upgrade")
	f.Fuzz(func(t *testing.T, a, b string) {
		h := http.Header{"Connection": {a, b}}
		stripConnectionTokens(h, keys)
		for _, line := range h["Connection"] {
			for tok := range strings.SplitSeq(line, ",") {
				// As reverse_proxy reads the list.
				if isIdentityKey(textproto.TrimString(tok), keys) {
					t.Fatalf("%q, %q: token %q left", a, b, tok)
				}
			}
		}
	})
}

// BenchmarkWithoutModuleCookies: taking the module's cookies off one
// Cookie line, by where they sit.
func BenchmarkWithoutModuleCookies(b *testing.B) {
	session := strings.Repeat("A", 400) // a sealed session's size
	for name, line := range map[string]string{
		"none":   "_ga=GA1.1.1234567890.1700000000; theme=dark; csrftoken=Zm9vYmFyYmF6",
		"alone":  "jitauth_session=" + session,
		"last":   "_ga=GA1.1.1234567890.1700000000; theme=dark; jitauth_session=" + session,
		"middle": "_ga=GA1.1.1234567890.1700000000; jitauth_session=" + session + "; theme=dark",
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				withoutModuleCookies(line)
			}
		})
	}
}

// FuzzCookieValue holds cookieValue, which reads the session cookie on
// every authenticated request, to net/http's r.Cookie: for any Cookie
// header lines, the same cookie or none, for both of the session
// cookie's names.
func FuzzCookieValue(f *testing.F) {
	f.Add("jitauth_session=abc; other=1", "")
	f.Add(`other=x; jitauth_session="abc"; jitauth_session=def`, "")
	f.Add(`jitauth_session=a\b; jitauth_session=ok`, "__Host-jitauth_session=h")
	f.Add(" \tjitauth_session = v ; x", "jitauth_session=second")
	f.Add(`jitauth_session="`, `jitauth_session=""`)
	f.Add("jitauth_session", "=jitauth_session;;; jitauth_session=é")
	f.Add(strings.Repeat("a=1;", 120)+"jitauth_session=many", "")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		r, _ := http.NewRequest("GET", "http://localhost/", nil)
		r.Header["Cookie"] = []string{line1}
		if line2 != "" {
			r.Header["Cookie"] = append(r.Header["Cookie"], line2)
		}
		for _, name := range []string{sessionCookieBase, hostPrefix + sessionCookieBase} {
			got, ok := cookieValue(r, name)
			want, err := r.Cookie(name)
			if ok != (err == nil) || (ok && got != want.Value) {
				t.Fatalf("lines %q: cookieValue(%q) = %q, %v; net/http: %v, %v", r.Header["Cookie"], name, got, ok, want, err)
			}
		}
	})
}

// FuzzHasPrefixFold holds hasPrefixFold to strings.EqualFold on the
// prefixes isModuleCookie asks about, whatever the bytes (the Kelvin
// sign and the long s fold to ASCII letters).
func FuzzHasPrefixFold(f *testing.F) {
	for _, s := range []string{"jitauth_session", "JITAUTH_x", "__host-jitauth_", "__Secure-", "\u212aitauth_", "__Ho\u017ft-", "jit", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []string{hostPrefix, "__Secure-", moduleCookiePrefix} {
			want := len(s) >= len(p) && strings.EqualFold(s[:len(p)], p)
			if got := hasPrefixFold(s, p); got != want {
				t.Fatalf("hasPrefixFold(%q, %q) = %v, EqualFold says %v", s, p, got, want)
			}
		}
	})
}

// FuzzWithholdModuleCookies holds withholdModuleCookies, which has a
// shortcut for a lone cookie, to what withoutModuleCookies says of each
// line: the kept pairs stay (a line that held only the module's cookies
// goes, a line without them stays as it came), the module's come back as
// one line.
func FuzzWithholdModuleCookies(f *testing.F) {
	f.Add("jitauth_session=abc", "")
	f.Add(" __Host-jitauth_session=abc ", "")
	f.Add("theme=dark", "")
	f.Add("jitauth_a=1; x=2", "JITAUTH_b=3")
	f.Add("", ";")
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		lines := []string{line1}
		if line2 != "" {
			lines = append(lines, line2)
		}
		var wantKept []string
		var wantHeld []string
		for _, l := range lines {
			kept, removed := withoutModuleCookies(l)
			if kept != "" || removed == "" {
				wantKept = append(wantKept, kept)
			}
			if removed != "" {
				wantHeld = append(wantHeld, removed)
			}
		}
		if len(wantHeld) == 0 {
			wantKept = lines // untouched
		}
		h := http.Header{"Cookie": slices.Clone(lines)}
		held := withholdModuleCookies(h)
		if want := strings.Join(wantHeld, "; "); held != want {
			t.Fatalf("lines %q: held %q, want %q", lines, held, want)
		}
		got, ok := h["Cookie"]
		if len(wantKept) == 0 {
			if ok {
				t.Fatalf("lines %q: Cookie %q left, want none", lines, got)
			}
		} else if !slices.Equal(got, wantKept) {
			t.Fatalf("lines %q: Cookie %q, want %q", lines, got, wantKept)
		}
	})
}

// FuzzIsModuleCookie holds isModuleCookie, which skips the prefix loop
// for a name that cannot start with one, to its definition: after an
// optional __Host- or __Secure- (any case), jitauth_ in any case.
func FuzzIsModuleCookie(f *testing.F) {
	for _, s := range []string{"jitauth_session", "__Host-jitauth_session", "__SECURE-JITAUTH_x", "_jitauth_", "__Host-", "theme", "", "\u212aitauth_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		rest := name
		for _, p := range []string{hostPrefix, "__Secure-"} {
			if len(rest) >= len(p) && strings.EqualFold(rest[:len(p)], p) {
				rest = rest[len(p):]
				break
			}
		}
		want := len(rest) >= len(moduleCookiePrefix) && strings.EqualFold(rest[:len(moduleCookiePrefix)], moduleCookiePrefix)
		if got := isModuleCookie(name); got != want {
			t.Fatalf("isModuleCookie(%q) = %v, want %v", name, got, want)
		}
	})
}

// FuzzTrimOWS holds trimOWS to strings.Trim(s, " \t").
func FuzzTrimOWS(f *testing.F) {
	for _, s := range []string{" a ", "\t\ta=b\t ", "", " \t ", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := trimOWS(s), strings.Trim(s, " \t"); got != want {
			t.Fatalf("trimOWS(%q) = %q, want %q", s, got, want)
		}
	})
}

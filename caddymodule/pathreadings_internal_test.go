package caddymodule

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestOtherReadings(t *testing.T) {
	for _, c := range []struct {
		escaped string
		want    []string
	}{
		{"/admin/x", nil},
		{"/style.css", []string{"/style.css"}},
		{"/admin;jsessionid=1/x", []string{"/admin/x"}},
		{`/admin\x`, []string{"/admin/x"}},
		{"/admin%5Cx", []string{"/admin/x"}},
		{"/admin.%20/x", []string{"/admin/x"}},
		{"/public/..;/admin", []string{"/public/../admin", "/public/_/admin"}},
		{"/a/%252e%252e/b", []string{"/a/../b", "/a/_/b"}},
		{"/admin%00/x", []string{"/admin", "/admin/x"}},
		{"/a%0a/b", []string{"/a/b"}},
		{"/bad%zz", []string{"/bad%zz"}},
	} {
		if got := otherReadings(c.escaped); !slices.Equal(got, c.want) {
			t.Errorf("otherReadings(%q) = %q, want %q", c.escaped, got, c.want)
		}
	}
}

// FuzzOtherReadings: any request path is read without a panic, and no
// reading keeps what an upstream would read otherwise again.
func FuzzOtherReadings(f *testing.F) {
	for _, s := range []string{"/admin/x", "/public/..;/admin", `/a\b`, "/a%00b", "/%252e%252e/", "/a.%20/b", "/%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, escaped string) {
		readings := otherReadings(escaped)
		if !strings.ContainsAny(escaped, `;\%.`) && readings != nil {
			t.Fatalf("%q has nothing to read otherwise, got %q", escaped, readings)
		}
		// differentReadings skips such paths without reading them: each
		// of their readings must be the path itself. It gets paths as
		// URL.EscapedPath gives them (no raw spaces or control
		// characters), which is what the condition first asks.
		asSent := (&url.URL{Path: escaped}).EscapedPath() == escaped
		if asSent && !strings.ContainsAny(escaped, `;\%`) && !strings.Contains(escaped, "./") && !strings.HasSuffix(escaped, ".") {
			for _, r := range readings {
				if r != escaped {
					t.Fatalf("%q is skipped as read alike, but reads as %q", escaped, r)
				}
			}
		}
		for _, r := range readings {
			if strings.ContainsAny(r, "\\\x00") {
				t.Fatalf("reading %q of %q keeps a backslash or NUL", r, escaped)
			}
			for _, seg := range strings.Split(r, "/") {
				if strings.Contains(seg, ";") || seg != "." && seg != ".." && strings.TrimRight(seg, ". ") != seg {
					t.Fatalf("reading %q of %q keeps a segment %q an upstream reads otherwise", r, escaped, seg)
				}
			}
		}
	})
}

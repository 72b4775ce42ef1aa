package jitusers

import (
	"strings"
	"testing"
	"unicode"
)

func TestShownEscapesWhatATerminalObeys(t *testing.T) {
	for in, want := range map[string]string{
		"Alice Liddell":        "Alice Liddell",
		"Zoë 李":                "Zoë 李",
		"a\x1b[2Jb":            `a\x1b[2Jb`,
		"t\x1b]52;c;QQ==\x07":  `t\x1b]52;c;QQ==\a`,
		"line\nforged\tcolumn": `line\nforged\tcolumn`,
		"\u009b31m":            `\u009b31m`,
		"evil\u202etxt.exe":    `evil\u202etxt.exe`,
		"del\x7f":              `del\x7f`,
	} {
		if got := shown(in); got != want {
			t.Errorf("shown(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzShown: whatever a claim holds, what is printed has no control or
// format character.
func FuzzShown(f *testing.F) {
	for _, s := range []string{"Alice", "a\x1b[2Jb", "\u202e", "\xff\xfe", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := shown(s)
		if strings.ContainsFunc(out, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) {
			t.Fatalf("shown(%q) = %q keeps a control or format character", s, out)
		}
	})
}

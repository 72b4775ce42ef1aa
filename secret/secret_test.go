package secret

import (
	"strings"
	"testing"
)

// FuzzResolve: resolving a secret never panics, leaves a value
// without braces as it is, and an error shows the value only when the
// value is nothing but one placeholder (then it names no secret).
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"plain-secret", "{env.HOME}", "{env.JITAUTH_FUZZ_UNSET}", "pre-{env.HOME}-post", "{file./nonexistent}", "{evn.X}", "a{b}c", `a\{b\}c`, "{", "}", "{{}}", "{file.}", `{000\}0}`, `{env.A\}B}`, `{file./x\{y}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		out, err := Resolve("client_secret", value)
		if !strings.ContainsAny(value, "{}") && (err != nil || out != value) {
			t.Fatalf("%q without placeholders: %q, %v", value, out, err)
		}
		if err == nil || len(value) < 8 {
			return
		}
		single := strings.HasPrefix(value, "{") && strings.HasSuffix(value, "}") &&
			!strings.ContainsAny(value[1:len(value)-1], "{}\\")
		if strings.Contains(err.Error(), value) && !single {
			t.Fatalf("the error shows the value %q: %v", value, err)
		}
	})
}

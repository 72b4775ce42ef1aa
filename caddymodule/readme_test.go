package caddymodule_test

import (
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// The build instructions a new user copies work as written: the module is
// on no module proxy, so every xcaddy line names the checkout as the
// replacement (a bare --with github.com/jitauth/caddy-jitauth fails with
// "not available"), and the list-modules output the README shows is the
// modules this repository registers.
func TestREADMEBuildInstructions(t *testing.T) {
	xcaddy := regexp.MustCompile(`xcaddy build --with github\.com/jitauth/caddy-jitauth(\S*)`)
	for _, file := range []string{"../README.md", "../Caddyfile.example"} {
		for i, line := range strings.Split(mustReadFile(t, file), "\n") {
			for _, m := range xcaddy.FindAllStringSubmatch(line, -1) {
				if !strings.HasPrefix(m[1], "@") || !strings.HasSuffix(m[1], "=.") {
					t.Errorf("%s:%d: %q builds a module version no proxy has; use the checkout form (@v0.0.0-…=.)", file, i+1, m[0])
				}
			}
		}
	}

	readme := mustReadFile(t, "../README.md")
	loc := regexp.MustCompile("which lists the [a-z]+ modules:\n\n```\n").FindStringIndex(readme)
	if loc == nil {
		t.Fatal("README.md: no list-modules output after the build line")
	}
	after := readme[loc[1]:]
	block, _, _ := strings.Cut(after, "```")
	shown := strings.Fields(block)
	var registered []string
	for _, id := range caddy.Modules() {
		info, err := caddy.GetModule(id)
		if err != nil {
			t.Fatal(err)
		}
		// Leave out the modules this package's tests register.
		if strings.Contains(id, "jit_auth") && !strings.HasSuffix(reflect.TypeOf(info.New()).Elem().PkgPath(), "_test") {
			registered = append(registered, id)
		}
	}
	slices.Sort(registered)
	if !slices.Equal(shown, registered) {
		t.Errorf("README.md's list-modules output %v, but the registered modules are %v", shown, registered)
	}
}

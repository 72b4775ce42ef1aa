package caddymodule_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A directory kept from a version before names with a leading '.' were
// refused may hold a user named "." or "..": the README asks operators
// to look for them, and `caddy jit-users` must then reach them by name.
// Sent as is, /jit_auth/users/.. is a path that Caddy's admin endpoint
// cleans (and redirects) to another one before jit_auth sees it, so the
// user cannot be shown, disabled or deleted by name; the user reference
// must reach the admin API whole, as a name with '/' does (ops%2Fbob).
// Cleaned, it names another endpoint: `show .` lists the directory, and
// `reset-totp .` (DELETE /jit_auth/users/./totp, cleaned to
// /jit_auth/users/totp) deletes the user named "totp".
func TestJitUsersReachesUsersNamedDotOrDotDot(t *testing.T) {
	dir := t.TempDir()
	bin := buildCaddy(t)
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	st := openStore(t, s.dir)
	for _, name := range []string{".", "..", "totp"} {
		if _, err := st.CreateUser(t.Context(), &provisioner.User{Username: name},
			provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp", Subject: "sub" + name}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	caddy := func(args ...string) (string, error) {
		cmd := exec.Command(bin, append(append([]string{"jit-users"}, args...), "--address", fmt.Sprintf("localhost:%d", admin))...)
		cmd.Env = append(cmd.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := caddy("reset-totp", ".")
	t.Logf("caddy jit-users reset-totp .: %v %s", err, out)
	if _, err := st.UserByUsername(t.Context(), "totp"); err != nil {
		t.Errorf("caddy jit-users reset-totp . touched the user named totp: %v", err)
	}
	for _, name := range []string{".", ".."} {
		out, err := caddy("show", name, "--format", "json")
		if err != nil || !strings.Contains(out, `"username": "`+name+`"`) || strings.Contains(out, `"users"`) {
			t.Errorf("caddy jit-users show %s: %v\n%s", name, err, out)
		}
		out, err = caddy("disable", name, "--reason", "old name", "--format", "json")
		if err != nil || !strings.Contains(out, `"username": "`+name+`"`) || !strings.Contains(out, `"status": "disabled"`) {
			t.Errorf("caddy jit-users disable %s: %v\n%s", name, err, out)
		}
	}
	// The raw API takes the escaped form the CLI sends.
	if code, body := adminRaw(t, admin, http.MethodGet, "/jit_auth/users/%2E%2E", ""); code != http.StatusOK || !strings.Contains(body, `"username":".."`) {
		t.Errorf("GET /jit_auth/users/%%2E%%2E: %d %s", code, body)
	}
}

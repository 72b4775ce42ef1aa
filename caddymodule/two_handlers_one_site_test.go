package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Several jit_auth directives with different matchers on one site each
// protect their own part, but the first one of a path prefix answers the
// site's sign-in endpoints there. Two that would answer them differently
// (other connections, another second-factor rule) on one prefix load,
// as they did, with a warning naming the fix: the second one's login
// loops between its page and the MFA page, or ends on "Unknown sign-in
// option". With a path prefix of its own, its login works.
func TestTwoJITAuthOnOneSiteAnsweringSignInDifferently(t *testing.T) {
	for name, tc := range map[string]struct {
		second string
		warn   bool
	}{
		"another second-factor rule": {"connections corp\n\t\tmfa totp", true},
		"other connections":          {"connections partner", true},
		"other allow rules":          {"connections corp\n\t\tallow email alice@example.com", true},
		"the same, own path prefix":  {"connections partner\n\t\tpath_prefix /.jitauth-admin/", false},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			logFile := dir + "/caddy.log"
			conns := "connection corp {\n oidc https://idp.example a b\n jit\n}\nconnection partner {\n oidc https://idp.example c d\n jit off\n}"
			site := "\tjit_auth /wiki/* {\n\t\tconnections corp\n\t}\n\tjit_auth /admin/* {\n\t\t" + tc.second + "\n\t}\n\trespond ok"
			caddyfile := fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n%s\n}\n", globalOptions(dir, conns), freePort(t), site)
			caddyfile = strings.Replace(caddyfile, "level ERROR", "output file "+logFile+"\n\t\tlevel WARN", 1)
			runCaddyfile(t, caddyfile)
			warned := strings.Contains(mustReadFile(t, logFile), "give the second a path prefix of its own")
			if warned != tc.warn {
				t.Errorf("warned %v, want %v", warned, tc.warn)
			}
		})
	}

	t.Run("one each, the second with mfa and its own path_prefix", func(t *testing.T) {
		s, err := siteOrLoadError(t, "", "", "\tjit_auth /wiki/* {\n\t\tconnections corp\n\t}\n\tjit_auth /admin/* {\n\t\tconnections corp\n\t\tmfa totp\n\t\tpath_prefix /.jitauth-admin/\n\t}\n\treverse_proxy {UPSTREAM}")
		if err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		s.queue(alice())
		resp, page, visited, done := followN(b, s.base+"/admin/x", 20)
		if !done || resp.StatusCode != http.StatusOK || secretRE.FindStringSubmatch(page) == nil {
			t.Errorf("signing in for /admin/x ended %d after %v, want the TOTP enrolment page", resp.StatusCode, visited)
		}
		if s.upstream.hits != 0 {
			t.Errorf("the upstream was reached before the second factor")
		}
	})

	t.Run("the same connections and rule on one prefix load", func(t *testing.T) {
		s, err := siteOrLoadError(t, "", "", "\tjit_auth /wiki/* {\n\t\tconnections corp\n\t}\n\tjit_auth /admin/* {\n\t\tconnections corp\n\t\tallow email alice@example.com\n\t}\n\treverse_proxy {UPSTREAM}")
		if err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		s.queue(alice())
		if resp, _, visited, done := followN(b, s.base+"/admin/x", 20); !done || resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/admin/x" {
			t.Errorf("signing in for /admin/x ended %d after %v", resp.StatusCode, visited)
		}
	})
}

// jit_auth in a handle block does not see the site's other requests, the
// sign-in endpoints among them: the site's cleaning step hands those to
// it, so the login it starts completes.
func TestLoginUnderAHandleBlockCompletes(t *testing.T) {
	base, up, _ := partialSite(t, "\thandle /admin/* {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\trespond \"the site's other pages\" 200\n\t}")
	resp, body, visited := newBrowser(t).follow(base+"/admin/x?y=1", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/admin/x?y=1" || body != "upstream" {
		t.Fatalf("a browser asking for /admin/x?y=1 ended at %s with %d %q; visited %v", resp.Request.URL, resp.StatusCode, body, visited)
	}
	if seen, ok := up.take("/admin/x"); !ok || seen.header.Get("Remote-User") == "" {
		t.Error("the upstream was not reached with an identity")
	}
}

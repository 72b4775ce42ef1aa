package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"
)

// exampleBlock returns the block of Caddyfile.example that opens with
// the line opening (trimmed), braces matched, without its first and
// last lines when inner is set.
func exampleBlock(t *testing.T, opening string, inner bool) string {
	t.Helper()
	return blockIn(t, mustReadFile(t, "../Caddyfile.example"), opening, inner)
}

// blockIn is exampleBlock over text.
func blockIn(t *testing.T, text, opening string, inner bool) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != opening {
			continue
		}
		depth := 0
		for j := i; j < len(lines); j++ {
			code, _, _ := strings.Cut(lines[j], "#")
			depth += strings.Count(code, "{") - strings.Count(code, "}")
			if depth == 0 {
				if inner {
					return strings.Join(lines[i+1:j], "\n")
				}
				return strings.Join(lines[i:j+1], "\n")
			}
		}
	}
	t.Fatalf("no block %q in:\n%s", opening, text)
	return ""
}

// outsider is a stranger with an account at a public provider: a
// verified address, but not at example.com, in no group.
func outsider() *oidcUser {
	return &oidcUser{sub: "mallory-sub", claims: map[string]any{
		"email": "mallory@evil.example", "email_verified": true, "name": "Mallory",
	}}
}

// Caddyfile.example's internal applications do not admit a stranger
// with an account at public github.com: operators copy the example, and
// an application without allow rules (or with `allow connection github`)
// admits every user of its connections. The test loads the example's
// `application internal` block and the wiki's `jit_auth` block verbatim,
// with the github connection played by a local provider with JIT off (as
// github is in the example), and signs in mallory@evil.example.
func TestExampleInternalAppsRefuseStrangersFromGitHub(t *testing.T) {
	// github in the example: JIT off, any account of a public provider.
	asGitHub := []string{`"partner":{`, `"github":{`}

	t.Run("application internal (tickets, status)", func(t *testing.T) {
		s := startSiteOpts(t, siteOptions{
			globalExtra: exampleBlock(t, "application internal {", false),
			application: "internal",
			jsonReplace: asGitHub,
		})
		s.queue(outsider())
		resp, body := s.login(newBrowser(t), "github", "/tickets")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a stranger's GitHub account on the example's internal tools: %d, want 403 (not admitted)\n%.300s", resp.StatusCode, body)
		}
		if n := s.upstream.count(); n != 0 {
			t.Errorf("the internal tool's upstream saw %d requests of the stranger", n)
		}
	})

	t.Run("wiki.example.com", func(t *testing.T) {
		wiki := exampleBlock(t, "wiki.example.com {", true)
		if !strings.Contains(wiki, "connections corp github") {
			t.Fatalf("the example's wiki changed; update this test:\n%s", wiki)
		}
		s := startSiteOpts(t, siteOptions{
			handlerBlock: blockIn(t, wiki, "jit_auth {", true) + "\n",
			jsonReplace:  asGitHub,
		})
		s.queue(outsider())
		resp, body := s.login(newBrowser(t), "github", "/")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a stranger's GitHub account on the example's internal wiki: %d, want 403 (not admitted)\n%.300s", resp.StatusCode, body)
		}
	})
}

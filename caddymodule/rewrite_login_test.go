package caddymodule_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A rewrite ordered before jit_auth (try_files, rewrite, uri: all come
// before it in Caddy's directive order) must not hide its endpoints or
// the page the browser asked for. The single-page-app pattern
// `try_files {path} /index.html` turns every path without a file, the
// sign-in endpoints too, into /index.html: the start endpoint would be
// a protected page sending the browser to the start endpoint again, and
// the return URL would be /index.html.
func TestSignInCompletesBehindTryFiles(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<html>the app shell</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, _, _ := partialSite(t, `
	jit_auth
	root * `+root+`
	try_files {path} /index.html
	file_server`)

	t.Run("the start endpoint is reached", func(t *testing.T) {
		b := newBrowser(t)
		resp, _ := b.get(base + "/.jitauth/start/corp?rd=%2Freports%2Fq3")
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusFound || strings.Contains(loc, "/.jitauth/") {
			t.Fatalf("GET /.jitauth/start/corp answered %d to %q, want a redirect to the provider (a rewrite before jit_auth hid its endpoint)", resp.StatusCode, loc)
		}
	})

	t.Run("the deep link survives the sign-in", func(t *testing.T) {
		b := newBrowser(t)
		cur := base + "/reports/q3?x=1"
		var visited []string
		for i := 0; i < 10; i++ {
			visited = append(visited, cur)
			resp, body := b.get(cur)
			if resp.StatusCode < 300 || resp.StatusCode > 399 {
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, "the app shell") {
					t.Fatalf("sign-in ended with %d %q; visited %v", resp.StatusCode, body, visited)
				}
				if got := resp.Request.URL.RequestURI(); got != "/reports/q3?x=1" {
					t.Fatalf("a browser asking for /reports/q3?x=1 ended at %s after signing in; visited %v", got, visited)
				}
				return
			}
			loc, err := resp.Location()
			if err != nil {
				t.Fatal(err)
			}
			cur = loc.String()
		}
		t.Fatalf("sign-in never completes, redirect loop: %v", visited[:4])
	})
}

// Any rewrite that does more than strip a prefix hides the endpoints and
// the page asked for the same way: here ones that move the whole site
// under a prefix the upstream serves it at. A signed-in browser must
// still reach sign-out through them.
func TestSignInAndOutCompleteBehindRewrites(t *testing.T) {
	for _, tc := range []struct{ name, rewrite, upstreamPath string }{
		{"rewrite", "rewrite * /app{path}", "/app/reports"},
		{"uri path_regexp", "uri path_regexp ^(.*)$ /site$1", "/site/reports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, up, _ := partialSite(t, "\t"+tc.rewrite+"\n\tjit_auth\n\treverse_proxy {UPSTREAM}")
			b := newBrowser(t)
			resp, body, visited := b.follow(base+"/reports?x=1", nil)
			if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/reports?x=1" {
				t.Fatalf("a browser asking for /reports?x=1 ended at %s with %d %q, want /reports?x=1 after signing in; visited %v",
					resp.Request.URL, resp.StatusCode, body, visited)
			}
			if seen, ok := up.take(tc.upstreamPath); !ok || seen.header.Get("Remote-User") == "" {
				t.Fatalf("the upstream was not reached at %s with an identity after the login", tc.upstreamPath)
			}

			if resp, body := b.logout(base, ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "signed out") {
				t.Fatalf("sign-out through the rewrite: %d %s", resp.StatusCode, body)
			}
			r := b.do(http.MethodGet, base+"/reports", nil)
			r.Body.Close()
			if loc := r.Header.Get("Location"); r.StatusCode != http.StatusFound || loc != "/.jitauth/start/corp?rd=%2Freports" {
				t.Errorf("after signing out, /reports: %d to %q, want a login returning to /reports", r.StatusCode, loc)
			}
		})
	}
}

// Behind a rewrite, the match field still reads the path Caddy routes
// on, not the one the browser asked for (S10): a rewrite into the
// protected part needs a login, one out of it does not. Only the return
// URL is the one asked for.
func TestRewrittenRequestKeepsTheRoutedPathForRules(t *testing.T) {
	base, up, _ := partialSite(t, `
	rewrite /old/* /admin{path}
	rewrite /admin/open /open
	jit_auth /admin/*
	reverse_proxy {UPSTREAM}`)
	b := newBrowser(t)

	r := b.do(http.MethodGet, base+"/old/x?y=1", nil)
	r.Body.Close()
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusFound || loc != "/.jitauth/start/corp?rd="+url.QueryEscape("/old/x?y=1") {
		t.Errorf("/old/x, rewritten to /admin/old/x: %d to %q, want a login returning to /old/x?y=1", r.StatusCode, loc)
	}
	if _, ok := up.take("/admin/old/x"); ok {
		t.Errorf("/old/x reached the upstream as /admin/old/x without a login")
	}
	resp, body := b.get(base + "/admin/open")
	if seen, ok := up.take("/open"); resp.StatusCode != http.StatusOK || !ok || seen.header.Get("Remote-User") != "" {
		t.Errorf("/admin/open, rewritten to /open: %d %q (upstream reached: %v), want the open page without a login", resp.StatusCode, body, ok)
	}
}

// Behind a rewrite, jit_auth answers the endpoints the browser asked for
// only at its own path prefix at the root of the site: a prefix in front
// of them (another application's mount) does not make them its own.
func TestRewrittenRequestReachesOnlyTheEndpointsAtTheRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<html>the app shell</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	shell, _, _ := partialSite(t, `
	jit_auth
	root * `+root+`
	try_files {path} /index.html
	file_server`)
	b := newBrowser(t)
	r := b.do(http.MethodGet, shell+"/elsewhere/.jitauth/start/corp", nil)
	r.Body.Close()
	if loc := r.Header.Get("Location"); r.StatusCode != http.StatusFound || loc != "/.jitauth/start/corp?rd="+url.QueryEscape("/elsewhere/.jitauth/start/corp") {
		t.Errorf("/elsewhere/.jitauth/start/corp behind try_files: %d to %q, want a protected page (a login returning to it), not the start endpoint", r.StatusCode, loc)
	}
}

// Inside handle_path, a rewrite that replaces the whole path leaves
// nothing to tell the prefix by; the README's advice, jit_auth first in a
// route block, signs in and comes back under the prefix.
func TestSignInUnderHandlePathWithTryFilesInARoute(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<html>the app shell</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, _, _ := partialSite(t, `
	handle_path /app/* {
		route {
			jit_auth
			root * `+root+`
			try_files {path} /index.html
			file_server
		}
	}`)
	b := newBrowser(t)
	resp, body, visited := b.follow(base+"/app/reports/q3?x=1", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "the app shell") || resp.Request.URL.RequestURI() != "/app/reports/q3?x=1" {
		t.Fatalf("a browser asking for /app/reports/q3?x=1 ended at %s with %d %q, want the app shell there after signing in; visited %v",
			resp.Request.URL, resp.StatusCode, body, visited)
	}
}

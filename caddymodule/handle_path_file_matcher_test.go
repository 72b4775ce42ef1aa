package caddymodule_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Under handle_path /app/*, a file matcher that finds the requested file
// (a common static-site pattern) does not hide the /app mount: the login
// starts at /app/.jitauth/start/<connection> and the provider returns to
// /app/.jitauth/callback/<connection>, the redirect URI the README says to
// register.
func TestHandlePathMountSurvivesAFileMatcher(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<html>app</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, _, _ := partialSite(t, `
	handle_path /app/* {
		root * `+root+`
		@asset file
		header @asset Cache-Control "public, max-age=60"
		jit_auth
		file_server
	}
	handle {
		respond "the site's other pages" 200
	}`)
	b := newBrowser(t)
	for _, p := range []string{"/app/index.html", "/app/"} {
		r := b.do(http.MethodGet, base+p, http.Header{"Accept": {"text/html"}})
		r.Body.Close()
		want := "/app/.jitauth/start/corp?rd=" + url.QueryEscape(p)
		if loc := r.Header.Get("Location"); r.StatusCode != http.StatusFound || loc != want {
			t.Errorf("unauthenticated %s: %d to %q, want %q (the app's endpoints under its handle_path mount)", p, r.StatusCode, loc, want)
		}
	}
	resp, _, visited := b.follow(base+"/app/index.html", nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/app/index.html" {
		t.Fatalf("sign-in for /app/index.html ended at %s with %d; visited %v", resp.Request.URL, resp.StatusCode, visited)
	}
	if !strings.Contains(strings.Join(visited, " "), "redirect_uri="+url.QueryEscape(base+"/app/.jitauth/callback/corp")) {
		t.Errorf("the provider was not given the callback under /app (the registered redirect URI): %v", visited)
	}
}

package caddymodule_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Behind try_files {path} /index.html, a deep link whose path ends in the
// fallback (/docs/index.html, no such file) is taken to /index.html: a
// suffix of it, but no prefix was stripped. The sign-in starts at the
// site's own endpoints and comes back to the page asked for.
func TestDeepLinkEndingInTheFallbackSurvivesSignIn(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("<html>the app shell</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, _, _ := partialSite(t, `
	jit_auth
	root * `+root+`
	try_files {path} /index.html
	file_server`)

	b := newBrowser(t)
	resp, body, visited := b.follow(base+"/docs/index.html?x=1", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "the app shell") {
		t.Fatalf("sign-in ended with %d %q; visited %v", resp.StatusCode, body, visited)
	}
	if got := resp.Request.URL.RequestURI(); got != "/docs/index.html?x=1" {
		t.Fatalf("a browser asking for /docs/index.html?x=1 ended at %s after signing in, want the page it asked for; visited %v", got, visited)
	}
}

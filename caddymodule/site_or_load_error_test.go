package caddymodule_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// siteOrLoadError starts a Caddy like startSiteOpts (corp: JIT on
// with corpJIT; partner: JIT off), with siteBody as the whole site block
// ({UPSTREAM} is the recording upstream). It returns the error of a
// configuration Caddy refuses to load instead of failing the test.
func siteOrLoadError(t *testing.T, globalExtra, corpJIT, siteBody string) (*site, error) {
	t.Helper()
	s := &site{t: t, dir: t.TempDir(), idp: startMockOIDC(t), upstream: newUpstream(t)}
	port := freePort(t)
	s.base = fmt.Sprintf("http://localhost:%d", port)
	cfg := s.idp.Config()
	conns := globalExtra + fmt.Sprintf(`
		connection corp {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
			jit {
				%[4]s
			}
		}
		connection partner {
			oidc %[1]s %[2]s %[3]s
			scopes openid email profile groups
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, corpJIT)
	caddyfile := fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n%s\n}\n",
		globalOptions(s.dir, conns), port, strings.ReplaceAll(siteBody, "{UPSTREAM}", s.upstream.hostPort()))
	jsonCfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return nil, err
	}
	caddyMu.Lock()
	if err := caddy.Load(jsonCfg, true); err != nil {
		caddyMu.Unlock()
		return nil, err
	}
	t.Cleanup(func() {
		_ = caddy.Stop()
		caddyMu.Unlock()
	})
	return s, nil
}

// followN follows redirects from rawURL at most n times and reports the
// last response, its body, every URL visited and whether it stopped on a
// non-redirect.
func followN(b *browser, rawURL string, n int) (*http.Response, string, []string, bool) {
	var visited []string
	cur := rawURL
	for i := 0; i < n; i++ {
		visited = append(visited, cur)
		resp, body := b.get(cur)
		if resp.StatusCode < 300 || resp.StatusCode > 399 {
			return resp, body, visited, true
		}
		loc, err := resp.Location()
		if err != nil {
			return resp, body, visited, true
		}
		cur = loc.String()
	}
	return nil, "", visited, false
}

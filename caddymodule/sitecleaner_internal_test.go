package caddymodule

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// meetsJITAuthFirst tells the sites that need a siteCleaner from those
// where the first jit_auth cleans every request: the common layouts
// (jit_auth at the site level, behind headers or a root) cost nothing
// extra; any layout where a request can be answered or forwarded before
// meeting jit_auth gets the cleaner.
func TestMeetsJITAuthFirst(t *testing.T) {
	for body, want := range map[string]bool{
		"jit_auth\nreverse_proxy 127.0.0.1:9":                                           true,
		"header X-A b\nroot * /srv\njit_auth /admin/*\nreverse_proxy 127.0.0.1:9":       true,
		"encode gzip\njit_auth\nfile_server":                                            true,
		"redir /old /new\njit_auth\nreverse_proxy 127.0.0.1:9":                          false,
		"handle /a/* {\njit_auth\nreverse_proxy 127.0.0.1:9\n}\nhandle {\nrespond x\n}": false,
		"handle /p/* {\nreverse_proxy 127.0.0.1:9\n}\nhandle {\njit_auth\nrespond x\n}": false,
		"route {\nreverse_proxy /p/* 127.0.0.1:9\njit_auth\n}":                          false,
		"handle {\njit_auth\nreverse_proxy 127.0.0.1:9\n}":                              true,
	} {
		cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte("{\n jit_auth {\n connection c {\n oidc https://idp.example a b\n }\n }\n}\nexample.com {\n"+body+"\n}\n"), nil)
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		var cfg struct {
			Apps struct {
				HTTP caddyhttp.App `json:"http"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
			t.Fatal(err)
		}
		var site *caddyhttp.Route
		for _, srv := range cfg.Apps.HTTP.Servers {
			for i := range srv.Routes {
				if len(srv.Routes[i].MatcherSetsRaw) > 0 {
					site = &srv.Routes[i]
				}
			}
		}
		if site == nil {
			t.Fatalf("%q: no site route in %s", body, cfgJSON)
		}
		if got := meetsJITAuthFirst([]flowRoute{{Handle: site.HandlersRaw}}); got != want {
			t.Errorf("%q: meetsJITAuthFirst %v, want %v", body, got, want)
		}
	}
}

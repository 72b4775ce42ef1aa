package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/jitauth/caddy-jitauth/internal/freeport"
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

// A request stays in one server, so a handler hands the module's
// cookies on to a later jit_auth handler only when its server has
// another (or a site cleaner): a server with one handler takes the
// short path even when other servers have several, and a handler
// provisioned outside any server makes every handler count them all.
func TestHandlersCountedPerServer(t *testing.T) {
	s1, s2 := new(caddyhttp.Server), new(caddyhttp.Server)
	a := &App{}
	one := a.placeHandler(s1)
	two := a.placeHandler(s2)
	if !a.alone(one) || !a.alone(two) {
		t.Fatal("one handler in each of two servers: each should be alone in its server")
	}
	a.placeHandler(s2) // a second handler, or a site cleaner, in s2
	if !a.alone(one) || a.alone(two) {
		t.Fatalf("alone: s1 %v (want true), s2 %v (want false)", a.alone(one), a.alone(two))
	}
	if a.handlers != 3 {
		t.Fatalf("handlers = %d, want 3", a.handlers)
	}
	unplaced := a.placeHandler(nil)
	if a.alone(one) || a.alone(unplaced) {
		t.Fatal("with a handler outside any server, no handler may assume it is alone")
	}
	b := &App{}
	if !b.alone(b.placeHandler(nil)) {
		t.Fatal("a configuration's only handler, outside any server, is alone")
	}
}

// What Caddy's provisioning leaves in the counts for a configuration
// with three sites on three ports (three servers): one jit_auth
// handler; two with matchers at the site's level (which run on every
// request, so no site cleaner); one in a handle block and its site
// cleaner.
func TestHandlersCountedPerServerInCaddy(t *testing.T) {
	ports := map[string]int{}
	for _, site := range []string{"single", "two", "partial"} {
		p, err := freeport.Port()
		if err != nil {
			t.Fatal(err)
		}
		ports[site] = p
	}
	dir := t.TempDir()
	caddyfile := fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
	storage file_system %[1]s
	jit_auth {
		store sqlite %[2]s
		connection corp {
			oidc https://idp.example.com id secret
		}
	}
}
http://127.0.0.1:%[3]d {
	jit_auth
	respond "single"
}
http://127.0.0.1:%[4]d {
	jit_auth /admin/*
	jit_auth /wiki/*
	respond "two"
}
http://127.0.0.1:%[5]d {
	handle /admin/* {
		jit_auth
		respond "admin"
	}
	respond "public"
}
`, filepath.Join(dir, "storage"), filepath.Join(dir, "users.db"), ports["single"], ports["two"], ports["partial"])
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	appAny, err := caddy.ActiveContext().App("jit_auth")
	if err != nil {
		t.Fatal(err)
	}
	a := appAny.(*App)
	want := map[int]int{ports["single"]: 1, ports["two"]: 2, ports["partial"]: 2}
	got := map[int]int{}
	for srv, n := range a.perServer {
		for _, addr := range srv.Listen {
			for port := range want {
				if strings.HasSuffix(addr, fmt.Sprintf(":%d", port)) {
					got[port] = *n
				}
			}
		}
	}
	for port, w := range want {
		if got[port] != w {
			t.Errorf("server on port %d: %d handlers counted, want %d (all: %v)", port, got[port], w, got)
		}
	}
	if a.handlers != 5 || a.unplaced != 0 {
		t.Errorf("handlers %d, unplaced %d; want 5 and 0", a.handlers, a.unplaced)
	}
}

// The cleaning step hands a sign-in endpoint to the handler whose path
// prefix names it most specifically, and nothing else.
func TestSiteCleanerEndpointOwner(t *testing.T) {
	route := &caddyhttp.Route{}
	first := &Handler{PathPrefix: "/.jitauth/"}
	admin := &Handler{PathPrefix: "/.jitauth/admin/"}
	c := &siteCleaner{app: &App{endpointOwners: map[*caddyhttp.Route]map[string]*Handler{
		route: {first.PathPrefix: first, admin.PathPrefix: admin},
	}}, route: route}
	for path, want := range map[string]*Handler{
		"/.jitauth/login":       first,
		"/.jitauth/admin/login": admin,
		"/.jitauth":             nil,
		"/admin/.jitauth/login": nil,
		"/public/x":             nil,
	} {
		r := httptest.NewRequest(http.MethodGet, "http://site.test"+path, nil)
		if got := c.endpointHandler(r); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
}

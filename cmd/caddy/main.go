// Command caddy is Caddy with the jit_auth module and Caddy's standard
// modules: the same binary `xcaddy build --with
// github.com/jitauth/caddy-jitauth` produces, kept in the repository for
// tests, benchmarks and the demo.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/jitauth/caddy-jitauth"
)

func main() {
	caddycmd.Main()
}

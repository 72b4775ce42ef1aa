// Package jitauth is the module root: importing it (as
// `xcaddy build --with github.com/jitauth/caddy-jitauth` does) registers
// the jit_auth Caddy modules: the app, handler, admin API and stores in
// package caddymodule, the connectors under connectors/, and the
// `caddy jit-users` command (package jitusers).
package jitauth

import (
	_ "github.com/jitauth/caddy-jitauth/caddymodule"
	_ "github.com/jitauth/caddy-jitauth/connectors/goth"
	_ "github.com/jitauth/caddy-jitauth/connectors/oidc"
	_ "github.com/jitauth/caddy-jitauth/jitusers"
)

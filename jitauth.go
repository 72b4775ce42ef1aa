// Package jitauth is the module root: importing it (as
// `xcaddy build --with github.com/jitauth/caddy-jitauth` does) registers
// the jit_auth Caddy modules, which live in package caddymodule.
package jitauth

import (
	_ "github.com/jitauth/caddy-jitauth/caddymodule"
)

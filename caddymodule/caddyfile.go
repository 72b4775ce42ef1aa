package caddymodule

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("jit_auth", parseGlobalOption)
	httpcaddyfile.RegisterDirective("jit_auth", parseDirective)
	// Right after basic_auth: before every handler that produces content
	// (respond, file_server, reverse_proxy, php_fastcgi, …), so no
	// `order` line is needed.
	httpcaddyfile.RegisterDirectiveOrder("jit_auth", httpcaddyfile.After, "basic_auth")
}

// parseGlobalOption parses the jit_auth global option. Syntax:
//
//	jit_auth {
//	    store <backend> [<args…>]           # default: sqlite in Caddy's data dir
//	    session_lifetime <duration>         # default: 12h
//	    user_status_refresh <duration>      # default: 1m
//	    revocation_poll <duration>          # default: 10s
//	    cookie_keys <hash_key> <block_key>  # repeatable; first seals
//	    assertion_key_rotation <duration>   # default: 168h
//	    connection <name> {
//	        oidc <issuer> <client_id> <client_secret>
//	        provider <name> <key> <secret>
//	        base_url <url>
//	        auth_url <url>
//	        token_url <url>
//	        profile_url <url>
//	        email_url <url>
//	        scopes <scope…>
//	        redirect_url <url>
//	        display_name <text>
//	        trust_email
//	        logout_at_provider
//	        backchannel_logout
//	        refresh [<every>]
//	        jit [on|off] [{
//	            mode silent|consent|username
//	            link off|verified_email
//	            sync override|preserve_local|first_login
//	            map <attribute> <expression>        # repeatable
//	            username <template…>                # tried in order
//	            username_pattern <regexp>
//	            reserved_usernames <name…>
//	            role <local-role> [from_group <group…>]  # repeatable
//	        }]
//	    }
//	    application <name> {
//	        <the site directive's options, except path_prefix>
//	    }
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("jit_auth global option is given twice; merge the blocks")
	}
	app := &App{Connections: map[string]*Connection{}}
	d.Next() // option name
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	once := onceOptions{}
	for d.NextBlock(0) {
		// Checked after the option is read, so a bad value is reported
		// as such even on a second line.
		opt := d.Val()
		switch opt {
		case "store":
			raw, err := parseStore(d)
			if err != nil {
				return nil, err
			}
			app.StoreRaw = raw
		case "session_lifetime":
			dur, err := parseDurationArg(d, "12h")
			if err != nil {
				return nil, err
			}
			app.SessionLifetime = dur
		case "user_status_refresh":
			dur, err := parseDurationArg(d, "1m")
			if err != nil {
				return nil, err
			}
			app.UserStatusRefresh = dur
		case "revocation_poll":
			dur, err := parseDurationArg(d, "10s")
			if err != nil {
				return nil, err
			}
			app.RevocationPoll = dur
		case "assertion_key_rotation":
			dur, err := parseDurationArg(d, "168h")
			if err != nil {
				return nil, err
			}
			app.AssertionKeyRotation = dur
		case "cookie_keys":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("cookie_keys takes a hash key and a block key (base64): cookie_keys <hash_key> <block_key>")
			}
			app.CookieKeys = append(app.CookieKeys, KeyPair{HashKey: args[0], BlockKey: args[1]})
		case "connection":
			if !d.NextArg() {
				return nil, d.Errf("connection needs a name: connection <name> { … }")
			}
			name := d.Val()
			if _, dup := app.Connections[name]; dup {
				return nil, d.Errf("connection %q is defined twice", name)
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			c, err := parseConnection(d)
			if err != nil {
				return nil, err
			}
			app.Connections[name] = c
		case "application":
			if !d.NextArg() {
				return nil, d.Errf("application needs a name: application <name> { … }")
			}
			name := d.Val()
			if _, dup := app.Applications[name]; dup {
				return nil, d.Errf("application %q is defined twice", name)
			}
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			h := &Handler{}
			if err := parseApplicationBlock(d, h, false); err != nil {
				return nil, err
			}
			if app.Applications == nil {
				app.Applications = map[string]*Application{}
			}
			app.Applications[name] = &h.Application
		default:
			return nil, d.Errf("unknown jit_auth option %q; expected store, session_lifetime, user_status_refresh, revocation_poll, cookie_keys, assertion_key_rotation, connection or application", d.Val())
		}
		if err := once.seen(d, opt, "store", "session_lifetime", "user_status_refresh", "revocation_poll", "assertion_key_rotation"); err != nil {
			return nil, err
		}
	}
	return httpcaddyfile.App{Name: "jit_auth", Value: caddyconfig.JSON(app, nil)}, nil
}

// parseDurationArg reads the one duration argument of the current
// option; example is shown in the error.
func parseDurationArg(d *caddyfile.Dispenser, example string) (caddy.Duration, error) {
	option := d.Val()
	if !d.NextArg() {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(d.Val())
	if err != nil {
		return 0, d.Errf("%s: %v (use a duration such as %s)", option, err, example)
	}
	if d.NextArg() {
		return 0, d.ArgErr()
	}
	return caddy.Duration(dur), nil
}

// parseStore reads `store <backend> …` by handing the rest of the line
// and its block to the store module's own Caddyfile unmarshaler, so
// third-party stores parse their own options.
func parseStore(d *caddyfile.Dispenser) (json.RawMessage, error) {
	if !d.NextArg() {
		return nil, d.Errf("store needs a backend, for example: store sqlite /var/lib/caddy/jit_auth.db")
	}
	backend := d.Val()
	mod, err := caddy.GetModule("jit_auth.stores." + backend)
	if err != nil {
		return nil, d.Errf("unknown store %q: %v (is the store's module built into this Caddy?)", backend, err)
	}
	unm, ok := mod.New().(caddyfile.Unmarshaler)
	if !ok {
		return nil, d.Errf("store %q cannot be configured from the Caddyfile; use JSON", backend)
	}
	if err := unm.UnmarshalCaddyfile(d.NewFromNextSegment()); err != nil {
		return nil, err
	}
	return caddyconfig.JSONModuleObject(unm, "backend", backend, nil), nil
}

// UnmarshalCaddyfile sets up the SQLite store. Syntax:
//
//	store sqlite [<path>]
func (s *SQLiteStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // backend name
	if d.NextArg() {
		s.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("store sqlite takes no block; the only setting is the file path")
	}
	return nil
}

func parseConnection(d *caddyfile.Dispenser) (*Connection, error) {
	c := &Connection{}
	var (
		mod         caddyfile.Unmarshaler
		kind, word  string
		legacyLines []*caddyfile.Dispenser
	)
	once := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := once.check(d, "redirect_url", "display_name", "trust_email", "logout_at_provider", "backchannel_logout", "refresh", "jit", "deprovision"); err != nil {
			return nil, err
		}
		switch sub := d.Val(); {
		case sub == "redirect_url":
			if !d.AllArgs(&c.RedirectURL) {
				return nil, d.ArgErr()
			}
		case sub == "display_name":
			if !d.AllArgs(&c.DisplayName) {
				return nil, d.ArgErr()
			}
		case sub == "trust_email":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			c.TrustEmail = true
		case sub == "logout_at_provider":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			c.LogoutAtProvider = true
		case sub == "backchannel_logout":
			if d.NextArg() {
				return nil, d.ArgErr()
			}
			c.BackchannelLogout = true
		case sub == "refresh":
			c.Refresh = &RefreshConfig{}
			if d.NextArg() {
				dur, err := caddy.ParseDuration(d.Val())
				if err != nil {
					return nil, d.Errf("refresh: %v (use a duration such as 5m, or a bare refresh)", err)
				}
				c.Refresh.Every = caddy.Duration(dur)
				if d.NextArg() {
					return nil, d.ArgErr()
				}
			}
		case sub == "jit":
			jit, err := parseJIT(d)
			if err != nil {
				return nil, err
			}
			c.JIT = jit
		case sub == "deprovision":
			dp, err := parseDeprovision(d)
			if err != nil {
				return nil, err
			}
			c.Deprovision = dp
		case legacyConnectionOption(sub):
			legacyLines = append(legacyLines, d.NewFromNextSegment())
		default:
			k := connectorKind(sub)
			info, err := caddy.GetModule("jit_auth.connectors." + k)
			if err != nil {
				return nil, d.Errf("unknown connection option %q; expected a connector (oidc, goth, or one from `caddy list-modules` under jit_auth.connectors), redirect_url, display_name, trust_email, logout_at_provider, backchannel_logout, refresh, jit or deprovision", sub)
			}
			if mod != nil {
				return nil, d.Errf("has both %s and %s; a connection is one identity provider, split it into two connections", word, sub)
			}
			u, ok := info.New().(caddyfile.Unmarshaler)
			if !ok {
				return nil, d.Errf("connector %s cannot be configured in a Caddyfile; use the JSON config", k)
			}
			if err := u.UnmarshalCaddyfile(d.NewFromNextSegment()); err != nil {
				return nil, err
			}
			mod, kind, word = u, k, sub
		}
	}
	if err := applyLegacyOptions(d, mod, kind, legacyLines); err != nil {
		return nil, err
	}
	if mod != nil {
		c.ConnectorRaw = caddyconfig.JSONModuleObject(mod, "kind", kind, nil)
	}
	return c, nil
}

// onceOptions refuses a second line of an option that takes one: the
// second would otherwise replace the first without a word (a second
// reserved_usernames line would drop the names of the first).
type onceOptions map[string]bool

func (o onceOptions) check(d *caddyfile.Dispenser, single ...string) error {
	return o.seen(d, d.Val(), single...)
}

// listOptions are the once-only options whose one line takes a list.
var listOptions = map[string]bool{"connections": true, "reserved_usernames": true, "username": true}

// seen is check for the option opt, once read.
func (o onceOptions) seen(d *caddyfile.Dispenser, opt string, single ...string) error {
	if !slices.Contains(single, opt) {
		return nil
	}
	if o[opt] {
		// The hint fits only the options that take a list: for
		// store or session_lifetime it read as "both on one line".
		if listOptions[opt] {
			return d.Errf("%s is given twice; give it once (a list on one line)", opt)
		}
		return d.Errf("%s is given twice; keep one", opt)
	}
	o[opt] = true
	return nil
}

// parseJIT reads `jit [on|off] [{ … }]`; see parseGlobalOption.
func parseJIT(d *caddyfile.Dispenser) (*JITConfig, error) {
	jit := &JITConfig{Enabled: true}
	if d.NextArg() {
		switch d.Val() {
		case "on":
		case "off":
			jit.Enabled = false
		default:
			return nil, d.Errf("jit takes 'on' or 'off', or a block; got %q", d.Val())
		}
		if d.NextArg() {
			return nil, d.ArgErr()
		}
	}
	once := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := once.check(d, "mode", "link", "sync", "username_pattern", "username", "reserved_usernames"); err != nil {
			return nil, err
		}
		switch opt := d.Val(); opt {
		case "mode":
			if !d.AllArgs(&jit.Mode) {
				return nil, d.ArgErr()
			}
		case "link":
			if !d.AllArgs(&jit.Link) {
				return nil, d.ArgErr()
			}
		case "sync":
			if !d.AllArgs(&jit.Sync) {
				return nil, d.ArgErr()
			}
		case "username_pattern":
			if !d.AllArgs(&jit.UsernamePattern) {
				return nil, d.ArgErr()
			}
		case "map":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return nil, d.Errf("map takes an attribute and one expression (quote it if it has spaces): map department {claims.dept}")
			}
			if _, dup := jit.Map[args[0]]; dup {
				return nil, d.Errf("map %s is given twice", args[0])
			}
			if jit.Map == nil {
				jit.Map = map[string]string{}
			}
			jit.Map[args[0]] = args[1]
		case "username":
			jit.Username = d.RemainingArgs()
			if len(jit.Username) == 0 {
				return nil, d.Errf("username takes one or more templates, tried in order: username {claims.employee_id} {profile.preferred_username}")
			}
		case "reserved_usernames":
			jit.ReservedUsernames = d.RemainingArgs()
			if len(jit.ReservedUsernames) == 0 {
				return nil, d.ArgErr()
			}
		case "role":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1:
				jit.Roles = append(jit.Roles, provisioner.RoleRule{Role: args[0]})
			case len(args) >= 3 && args[1] == "from_group":
				jit.Roles = append(jit.Roles, provisioner.RoleRule{Role: args[0], FromGroups: args[2:]})
			default:
				return nil, d.Errf("role takes a local role, optionally with the provider groups that grant it: role <role> [from_group <group…>]")
			}
		default:
			return nil, d.Errf("unknown jit option %q; expected mode, link, sync, map, username, username_pattern, reserved_usernames or role", opt)
		}
	}
	return jit, nil
}

// parseDirective parses the jit_auth site directive (an application).
// Syntax:
//
//	jit_auth [<matcher>] [<application>] {
//	    connections <name…>
//	    allow email_domain|email|group|role|connection <value…>  # repeatable; any line admits
//	    header <Name> <value>   # add or replace an identity header
//	    header -<Name>          # drop a default identity header
//	    mfa totp [{
//	        skip_for <connection…>
//	        on_conflict error|warn
//	    }]
//	    path_prefix <path>      # default: /.jitauth/
//	}
//
// With an application name (declared in the global jit_auth block), the
// block may only set path_prefix.
//
// A matcher does not become the route's matcher: it goes into the
// handler (its "match" field), and the route runs on every request of
// the site. Requests the matcher does not match need no login, but the
// handler still removes client-supplied identity headers and the
// module's cookies from them, which a route-level matcher would skip.
// The endpoints under the path prefix are served whatever the matcher,
// so the login flow of a protected subtree works without extra routes.
func parseDirective(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	h.Next() // directive name
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	handler, err := parseHandler(h.Dispenser)
	if err != nil {
		return nil, err
	}
	if matcherSet != nil {
		handler.MatcherSetsRaw = caddyhttp.RawMatcherSets{matcherSet}
	}
	return h.NewRoute(nil, handler), nil
}

func parseHandler(d *caddyfile.Dispenser) (*Handler, error) {
	handler := &Handler{}
	d.Next() // directive name (the matcher, if any, was already extracted)
	if d.NextArg() {
		handler.ApplicationName = d.Val()
		if d.NextArg() {
			return nil, d.Errf("jit_auth takes at most one argument, an application name (got %q too)", d.Val())
		}
	}
	if err := parseApplicationBlock(d, handler, true); err != nil {
		return nil, err
	}
	return handler, nil
}

// parseApplicationBlock reads an application's options into h: from a
// site directive (inSite) or a global `application` block.
func parseApplicationBlock(d *caddyfile.Dispenser, h *Handler, inSite bool) error {
	once := onceOptions{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if err := once.check(d, "connections", "path_prefix", "mfa", "assertion", "idle_timeout"); err != nil {
			return err
		}
		opt := d.Val()
		if inSite && h.ApplicationName != "" && opt != "path_prefix" {
			return d.Errf("jit_auth %s attaches the named application %q, so %s belongs in its application block in the global options; only path_prefix may be set here", h.ApplicationName, h.ApplicationName, opt)
		}
		switch opt {
		case "connections":
			h.Connections = d.RemainingArgs()
			if len(h.Connections) == 0 {
				return d.ArgErr()
			}
		case "header":
			args := d.RemainingArgs()
			switch {
			case len(args) == 1 && strings.HasPrefix(args[0], "-"):
				setHeaderRule(h, args[0][1:], "")
			case len(args) == 2 && !strings.HasPrefix(args[0], "-"):
				setHeaderRule(h, args[0], args[1])
			default:
				return d.Errf("header takes <Name> <value> to set a header, or -<Name> to drop one")
			}
		case "path_prefix":
			if !inSite {
				return d.Errf("path_prefix is set per site, in the site's jit_auth directive")
			}
			if !d.AllArgs(&h.PathPrefix) {
				return d.ArgErr()
			}
		case "allow":
			rule, err := parseAllow(d)
			if err != nil {
				return err
			}
			h.Allow = append(h.Allow, rule)
		case "mfa":
			m, err := parseMFA(d)
			if err != nil {
				return err
			}
			h.MFA = m
		case "assertion":
			a, err := parseAssertion(d)
			if err != nil {
				return err
			}
			h.Assertion = a
		case "idle_timeout":
			dur, err := parseDurationArg(d, "30m")
			if err != nil {
				return err
			}
			if dur == 0 {
				// 0 would read as no idle timeout at all.
				return d.Errf("idle_timeout 0: use at least 1s, or leave it out for none")
			}
			h.IdleTimeout = dur
		case "bearer":
			b, err := parseBearer(d)
			if err != nil {
				return err
			}
			h.Bearer = append(h.Bearer, b)
		default:
			return d.Errf("unknown jit_auth option %q; expected connections, allow, header, mfa, assertion, bearer, idle_timeout or path_prefix", opt)
		}
	}
	return nil
}

// parseAllow reads `allow <kind> <value…>`.
func parseAllow(d *caddyfile.Dispenser) (AllowRule, error) {
	var rule AllowRule
	args := d.RemainingArgs()
	if len(args) < 2 {
		return rule, d.Errf("allow takes a kind and values: allow email_domain|email|group|role|connection <value…>")
	}
	switch args[0] {
	case "email_domain":
		rule.EmailDomains = args[1:]
	case "email":
		rule.Emails = args[1:]
	case "group":
		rule.Groups = args[1:]
	case "role":
		rule.Roles = args[1:]
	case "connection":
		rule.Connections = args[1:]
	default:
		return rule, d.Errf("unknown allow kind %q; expected email_domain, email, group, role or connection", args[0])
	}
	return rule, nil
}

// parseMFA reads `mfa totp [{ skip_for <connection…>; on_conflict error|warn }]`.
func parseMFA(d *caddyfile.Dispenser) (*MFAConfig, error) {
	if !d.NextArg() {
		return nil, d.Errf("mfa needs a method: mfa totp")
	}
	if d.Val() != "totp" {
		return nil, d.Errf("unknown mfa method %q; the one supported is totp", d.Val())
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	m := &MFAConfig{TOTP: true}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "skip_for":
			m.SkipFor = append(m.SkipFor, d.RemainingArgs()...)
			if len(m.SkipFor) == 0 {
				return nil, d.ArgErr()
			}
		case "on_conflict":
			if !d.AllArgs(&m.OnConflict) {
				return nil, d.ArgErr()
			}
		default:
			return nil, d.Errf("unknown mfa totp option %q; expected skip_for or on_conflict", d.Val())
		}
	}
	return m, nil
}

// parseAssertion reads:
//
//	assertion [{
//	    header <name>              # default Jit-Assertion
//	    issuer <url>               # default the site's origin
//	    audience <aud>             # default the issuer and jit_auth's paths
//	    lifetime <duration>        # default 60s
//	    claims <attribute…>        # mapped attributes to carry
//	    algorithm ES256|EdDSA      # default ES256
//	}]
func parseAssertion(d *caddyfile.Dispenser) (*AssertionConfig, error) {
	if d.NextArg() {
		return nil, d.Errf("assertion takes no arguments; its options go in a block: assertion { header …; audience … }")
	}
	a := &AssertionConfig{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "header":
			if !d.AllArgs(&a.Header) {
				return nil, d.ArgErr()
			}
		case "issuer":
			if !d.AllArgs(&a.Issuer) {
				return nil, d.ArgErr()
			}
		case "audience":
			if !d.AllArgs(&a.Audience) {
				return nil, d.ArgErr()
			}
		case "lifetime":
			dur, err := parseDurationArg(d, "60s")
			if err != nil {
				return nil, err
			}
			a.Lifetime = dur
		case "claims":
			a.Claims = append(a.Claims, d.RemainingArgs()...)
			if len(a.Claims) == 0 {
				return nil, d.ArgErr()
			}
		case "algorithm":
			if !d.AllArgs(&a.Algorithm) {
				return nil, d.ArgErr()
			}
		default:
			return nil, d.Errf("unknown assertion option %q; expected header, issuer, audience, lifetime, claims or algorithm", d.Val())
		}
	}
	return a, nil
}

// parseBearer reads:
//
//	bearer <connection> {
//	    audience <aud…>            # required; repeatable
//	    algorithms <alg…>          # default: the provider's
//	    pass_through               # keep Authorization for the upstream
//	    accept_without_mfa         # let tokens without amr mfa into mfa applications
//	}
func parseBearer(d *caddyfile.Dispenser) (BearerConfig, error) {
	var b BearerConfig
	if !d.NextArg() {
		return b, d.Errf("bearer needs the connection whose tokens it accepts: bearer <connection> { audience <aud> }")
	}
	b.Connection = d.Val()
	if d.NextArg() {
		return b, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "audience":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return b, d.ArgErr()
			}
			b.Audiences = append(b.Audiences, args...)
		case "algorithms":
			b.Algorithms = append(b.Algorithms, d.RemainingArgs()...)
			if len(b.Algorithms) == 0 {
				return b, d.ArgErr()
			}
		case "pass_through":
			if d.NextArg() {
				return b, d.ArgErr()
			}
			b.PassThrough = true
		case "accept_without_mfa":
			if d.NextArg() {
				return b, d.ArgErr()
			}
			b.AcceptWithoutMFA = true
		default:
			return b, d.Errf("unknown bearer option %q; expected audience, algorithms, pass_through or accept_without_mfa", d.Val())
		}
	}
	return b, nil
}

func setHeaderRule(h *Handler, name, value string) {
	if h.Headers == nil {
		h.Headers = map[string]string{}
	}
	h.Headers[name] = value
}

// Interface guards
var _ caddyfile.Unmarshaler = (*SQLiteStore)(nil)

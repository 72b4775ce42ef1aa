package caddymodule

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/net/http/httpguts"
)

// Application is what a protected site or route offers and requires:
// which connections log users in, who is admitted, whether a second
// factor is needed, and which identity headers the upstream receives.
// Declare it by name in the jit_auth app and attach it to sites with
// `jit_auth <name>`, or write it inline in a site's jit_auth directive.
type Application struct {
	// Connections this application offers, by name. Default: every
	// connection of the jit_auth app.
	Connections []string `json:"connections,omitempty"`

	// Headers adjusts the identity headers sent upstream. The defaults
	// are Remote-User (username), Remote-Email, Remote-Name and
	// Remote-Groups (the provider's groups and the local roles). A key
	// adds or replaces a header with a value that may use placeholders
	// such as {http.auth.user.local_id}; an empty value removes a default
	// header. Client-supplied copies of every header named here are
	// removed.
	Headers map[string]string `json:"headers,omitempty"`

	// Allow restricts who gets in: a user is admitted when any rule
	// matches (S10: strict, exact, case-insensitive where it should be).
	// Empty: every user of the application's connections. Checked after
	// JIT at login, and again on every request, since sessions are shared
	// by every application on the host.
	Allow []AllowRule `json:"allow,omitempty"`

	// MFA requires a second factor after the federated login.
	MFA *MFAConfig `json:"mfa,omitempty"`

	// Assertion sends the upstream a signed identity assertion (JWT)
	// besides the headers; its public keys are at <path_prefix>jwks.json.
	Assertion *AssertionConfig `json:"assertion,omitempty"`

	// Bearer accepts API clients' "Authorization: Bearer <JWT>" from the
	// providers of these connections, one entry per connection.
	Bearer []BearerConfig `json:"bearer,omitempty"`

	// IdleTimeout ends a session that has made no request to this
	// application for that long (the session lifetime still bounds it).
	// The last activity travels in the session cookie, refreshed at most
	// every eighth of the timeout, so no store is written per request and
	// every instance agrees. Each application keeps its own, so requests
	// to another application on the host do not keep this one's session
	// alive; one not visited since the sign-in counts from it. Default:
	// none.
	IdleTimeout caddy.Duration `json:"idle_timeout,omitempty"`
}

// MFAConfig is an application's second-factor requirement.
type MFAConfig struct {
	// TOTP requires a time-based one-time password (RFC 6238) from an
	// authenticator app. Users enrol at their first login; the secret is
	// kept, sealed, on the local user, so every connection the
	// application offers (and does not list in SkipFor) needs JIT on.
	TOTP bool `json:"totp,omitempty"`

	// SkipFor lists connections whose users pass without a second factor,
	// for example a provider that enforces its own.
	SkipFor []string `json:"skip_for,omitempty"`

	// OnConflict is what loading a configuration does when the
	// application offers, without SkipFor, a connection whose JIT is off:
	// "error" (the default) refuses the configuration; "warn" logs a
	// warning and loads it, and users of that connection are refused at
	// login with a clear page (never let through without the factor).
	OnConflict string `json:"on_conflict,omitempty"`
}

// requires reports whether users of connection must present the factor.
func (m *MFAConfig) requires(connection string) bool {
	return m != nil && m.TOTP && !slices.Contains(m.SkipFor, connection)
}

// validate checks the application's own settings against the app's
// connections; label names the application in errors.
func (ap *Application) validate(a *App, label string) error {
	seen := map[string]bool{}
	for _, n := range ap.Connections {
		if _, ok := a.Connections[n]; !ok {
			return fmt.Errorf("%s offers connection %q, which is not configured; configured connections: %s", label, n, strings.Join(a.connectionNames(), ", "))
		}
		if seen[n] {
			return fmt.Errorf("%s lists connection %q twice", label, n)
		}
		seen[n] = true
	}
	for i := range ap.Allow {
		if err := ap.Allow[i].validate(); err != nil {
			return fmt.Errorf("%s: %v", label, err)
		}
		for _, c := range ap.Allow[i].Connections {
			if !slices.Contains(ap.offered(a), c) {
				return fmt.Errorf("%s: allow connection %q is not one of this application's connections", label, c)
			}
		}
	}
	headerNames := map[string]string{}
	for _, name := range sortedKeys(ap.Headers) {
		if other, ok := headerNames[headerKey(name)]; ok {
			return fmt.Errorf("%s: header %s and header %s name one field (upstreams read letter case, '_' and '-' alike); keep one", label, other, name)
		}
		headerNames[headerKey(name)] = name
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("%s: %q is not a valid header name", label, name)
		}
		if unfitHeader(name) {
			return fmt.Errorf("%s: header %s cannot carry identity: proxies drop it or it frames the request; choose another name, such as X-Remote-User", label, name)
		}
	}
	if it := time.Duration(ap.IdleTimeout); it < 0 || (it > 0 && it < time.Second) {
		return fmt.Errorf("%s: idle_timeout %s: use at least 1s, or leave it out", label, it)
	}
	bearers := map[string]bool{}
	for i := range ap.Bearer {
		if err := ap.Bearer[i].validate(a, ap, label); err != nil {
			return err
		}
		if bearers[ap.Bearer[i].Connection] {
			return fmt.Errorf("%s: bearer %s is given twice; merge the blocks", label, ap.Bearer[i].Connection)
		}
		bearers[ap.Bearer[i].Connection] = true
	}
	if ap.Assertion != nil {
		if err := ap.Assertion.validate(label, a.assertionRotation(), ap.Headers); err != nil {
			return err
		}
	}
	if m := ap.MFA; m != nil {
		if !m.TOTP {
			return fmt.Errorf("%s: mfa needs a method; the one supported is totp (mfa totp)", label)
		}
		if a.factors == nil {
			return fmt.Errorf("%s: mfa needs a store that keeps second factors, and the store (%s) does not implement provisioner.SecondFactorStore; use the sqlite or postgres store, or drop mfa", label, a.storeName())
		}
		switch m.OnConflict {
		case "", "error", "warn":
		default:
			return fmt.Errorf("%s: mfa on_conflict %q: use error or warn", label, m.OnConflict)
		}
		for _, c := range m.SkipFor {
			if !slices.Contains(ap.offered(a), c) {
				return fmt.Errorf("%s: mfa skip_for %q is not one of this application's connections (%s)", label, c, strings.Join(ap.offered(a), ", "))
			}
		}
	}
	return nil
}

// offered returns the names of the connections the application offers.
func (ap *Application) offered(a *App) []string {
	if len(ap.Connections) > 0 {
		return ap.Connections
	}
	return a.connectionNames()
}

// mfaConflict is a connection with JIT off that applications requiring
// TOTP offer without skipping it: its users have no local user to hold
// a TOTP secret.
type mfaConflict struct {
	connection string
	apps       []string
}

// mfaConflicts finds every such connection among apps (by label), in a
// stable order. Conflicts of applications that accept them
// (on_conflict warn) are returned apart.
func (a *App) mfaConflicts(apps map[string]*Application) (refused, accepted []mfaConflict) {
	for _, conn := range a.connectionNames() {
		if a.Connections[conn].jitEnabled() {
			continue
		}
		var strict, lenient []string
		for _, label := range sortedKeys(apps) {
			ap := apps[label]
			if !ap.MFA.requires(conn) || !slices.Contains(ap.offered(a), conn) {
				continue
			}
			if ap.MFA.OnConflict == "warn" {
				lenient = append(lenient, label)
			} else {
				strict = append(strict, label)
			}
		}
		if len(strict) > 0 {
			refused = append(refused, mfaConflict{conn, strict})
		}
		if len(lenient) > 0 {
			accepted = append(accepted, mfaConflict{conn, lenient})
		}
	}
	return refused, accepted
}

// mfaConflictError explains conflicts in one error: every connection,
// every application depending on it, and both ways to fix it.
func mfaConflictError(cs []mfaConflict) error {
	var b strings.Builder
	b.WriteString("mfa totp keeps each user's TOTP secret on their local user, but connections with JIT off keep no local user:")
	for _, c := range cs {
		fmt.Fprintf(&b, "\n  - connection %q is offered with mfa totp by:", c.connection)
		for _, app := range c.apps {
			b.WriteString("\n      " + app)
		}
		fmt.Fprintf(&b, "\n    fix: turn JIT on for it (connection %s { jit }), or skip it in each of those applications (mfa totp { skip_for %s })",
			c.connection, c.connection)
	}
	b.WriteString("\nTo load the configuration anyway, add on_conflict warn to those applications' mfa totp blocks; users of such a connection are then refused at login.")
	return errors.New(b.String())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// unfitHeaders cannot be identity headers: reverse_proxy removes the
// hop-by-hop ones before forwarding, and the others frame the request or
// carry the module's cookies.
var unfitHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true, "Trailer": true,
	"Transfer-Encoding": true, "Upgrade": true, "Host": true, "Content-Length": true, "Cookie": true,
}

// unfitHeader reports whether name is one of unfitHeaders in any
// spelling: an identity header's client copies are removed in every
// spelling (headerKey), so Content_Length would take Content-Length off
// every request.
func unfitHeader(name string) bool {
	for u := range unfitHeaders {
		if headerKey(u) == headerKey(name) {
			return true
		}
	}
	return false
}

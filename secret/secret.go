// Package secret resolves the secrets of a jit_auth configuration
// (client secrets and IDs, cookie keys, store URLs) from Caddy's runtime
// placeholders, for the module and for third-party connectors and stores.
package secret

import (
	"fmt"
	"os"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// Secrets in the configuration (client secrets and IDs, cookie keys, the
// PostgreSQL URL) are meant to be runtime placeholders such as
// {env.OIDC_SECRET} or {file./run/secrets/oidc}. Resolve expands them
// when Caddy provisions a module, into unexported fields: the
// exported config keeps the placeholder, so `caddy adapt`, GET /config/
// and anything that prints the config show only the placeholder. (A
// Caddyfile's {$NAME} is substituted when the Caddyfile is adapted, which
// writes the secret itself into the JSON config.)

// Resolve expands the placeholders caddy.NewReplacer knows
// ({env.*}, {file.*}, {system.*}, …) in a secret config value. A value
// without placeholders is returned as is. An environment variable that
// is unset or empty, a file that cannot be read or is empty, and an
// unknown placeholder are errors naming field and the variable or file,
// so a login never sends a placeholder's literal text to a provider.
// Errors never contain the value: a literal secret that happens to hold
// braces is not echoed (write a literal brace as \{ or \}).
//
// Caddy's {file.*} drops one trailing newline (and a carriage return
// before it), so a secret file written by `echo` or an editor works.
func Resolve(field, value string) (string, error) {
	if !strings.ContainsAny(value, "{}") {
		return value, nil
	}
	var problem error
	out, err := caddy.NewReplacer().ReplaceFunc(value, func(key string, val any) (any, error) {
		if problem != nil {
			return val, nil
		}
		// A key holding a brace or a backslash is not a placeholder
		// name a user meant to write but part of a literal (a secret
		// such as {a\}b}): it is never echoed.
		named := !strings.ContainsAny(key, "{}\\")
		switch {
		case !named && val == nil || !named && caddy.ToString(val) == "":
			problem = fmt.Errorf("%s: holds an unknown or empty placeholder; use {env.NAME} or {file.PATH}, and write a literal brace as \\{ or \\}", field)
		case strings.HasPrefix(key, "file.") && val == nil:
			// Caddy's file placeholder reads nothing on error; open it
			// again for the reason (the contents are not read here).
			path := strings.TrimPrefix(key, "file.")
			reason := "cannot be read"
			if f, err := os.Open(path); err != nil {
				reason = err.Error()
			} else {
				f.Close()
			}
			problem = fmt.Errorf("%s: {file.%s}: %s; give Caddy a readable file holding the secret", field, path, reason)
		case val == nil:
			if value == "{"+key+"}" {
				problem = fmt.Errorf("%s: unknown placeholder {%s}; use {env.NAME} for an environment variable or {file.PATH} for a file", field, key)
			} else {
				problem = fmt.Errorf("%s: holds an unknown placeholder; use {env.NAME} or {file.PATH}, and write a literal brace as \\{ or \\}", field)
			}
		case caddy.ToString(val) != "":
		case strings.HasPrefix(key, "env."):
			problem = fmt.Errorf("%s: environment variable %s is not set or is empty; set it in Caddy's environment (for systemd: Environment= or EnvironmentFile=)", field, strings.TrimPrefix(key, "env."))
		case strings.HasPrefix(key, "file."):
			problem = fmt.Errorf("%s: file %s is empty", field, strings.TrimPrefix(key, "file."))
		default:
			problem = fmt.Errorf("%s: placeholder {%s} is empty", field, key)
		}
		return val, nil
	})
	if problem != nil {
		return "", problem
	}
	if err != nil {
		return "", fmt.Errorf("%s: %v", field, err)
	}
	return out, nil
}

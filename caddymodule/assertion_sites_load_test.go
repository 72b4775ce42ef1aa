package caddymodule_test

import (
	"fmt"
	"testing"
)

// Two sites of one server with hosts that never meet (a wildcard site
// of one domain and a site of another; or a wildcard site and its apex,
// which the wildcard does not match) each send assertions with their
// default audience, the origin of the host the request matched: their
// iss and aud always differ. The load check must not refuse them.
func TestAssertionSitesWhoseHostsNeverMeetLoad(t *testing.T) {
	for name, sites := range map[string]string{
		"wildcard and another domain": `
http://*.example.com {
	jit_auth {
		assertion
	}
	respond ok
}
http://other.org {
	jit_auth {
		allow group admins
		assertion
	}
	respond ok
}`,
		"wildcard and its apex": `
http://*.example.com {
	jit_auth {
		assertion
	}
	respond ok
}
http://example.com {
	jit_auth {
		allow group admins
		assertion
	}
	respond ok
}`,
		// Caddyfile sites are terminal: a request for other.org never
		// reaches the catch-all, whose iss is then never other.org's.
		"catch-all and a named host": `
http:// {
	jit_auth {
		assertion
	}
	respond ok
}
http://other.org {
	jit_auth {
		allow group admins
		assertion
	}
	respond ok
}`,
	} {
		t.Run(name, func(t *testing.T) {
			err := validateSites(t, sites)
			if err != nil {
				t.Fatalf("refused at load, though the two sites never share a host (so never an iss): %v", err)
			}
		})
	}
}

// validateSites validates sites under global options with one OIDC
// connection (never reached: validation does not discover).
func validateSites(t *testing.T, sites string) error {
	t.Helper()
	dir := t.TempDir()
	return validate(t, fmt.Sprintf(`{
	admin off
	storage file_system %s/storage
	jit_auth {
		store sqlite %s/users.db
		connection corp {
			oidc https://idp.example a b
		}
	}
}
%s
`, dir, dir, sites))
}

package caddymodule_test

import (
	"fmt"
	"testing"
)

// An application that drops a default identity header (header
// -Remote-Email) sends nothing of the user's under that name, so
// carrying the assertion there does not put the token "in place of the
// user's" email: the upstream never gets the email in it. That
// configuration loads: only a header the application sends is refused
// as the assertion's.
func TestAssertionInADroppedDefaultHeaderLoads(t *testing.T) {
	dir := t.TempDir()
	err := validate(t, fmt.Sprintf(`{
	admin off
	storage file_system %s/storage
	jit_auth {
		store sqlite %s/users.db
		connection corp {
			oidc https://idp.example a b
		}
	}
}
http://example.com {
	jit_auth {
		header -Remote-Email
		assertion {
			header Remote-Email
		}
	}
	respond ok
}
`, dir, dir))
	if err != nil {
		t.Fatalf("refused at load, though Remote-Email is dropped (no identity travels in it): %v", err)
	}
}

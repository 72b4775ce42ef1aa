package caddymodule_test

import (
	"testing"
)

// Two applications of one site told apart by host (the usual way to
// share a wildcard certificate; a handle block per host, and a fallback
// handle for the site's other hosts), each sending assertions with the
// default audience. The request's host is the iss, so their iss differ
// and the upstreams never confuse the two: the load check must not
// refuse them.
func TestAssertionPerHostApplicationsLoad(t *testing.T) {
	for name, site := range map[string]string{
		"named host matchers": `
http://*.example.com {
	@wiki host wiki.example.com
	handle @wiki {
		jit_auth {
			assertion
		}
		respond ok
	}
	@admin host admin.example.com
	handle @admin {
		jit_auth {
			allow group admins
			assertion
		}
		respond ok
	}
}`,
		"host and path in one matcher": `
http://*.example.com {
	@wiki {
		host wiki.example.com
		path /*
	}
	handle @wiki {
		jit_auth {
			assertion
		}
		respond ok
	}
	@admin {
		host admin.example.com
		path /*
	}
	handle @admin {
		jit_auth {
			allow group admins
			assertion
		}
		respond ok
	}
}`,
		"two site blocks one address each": `
http://wiki.example.com {
	jit_auth {
		assertion
	}
	respond ok
}
http://admin.example.com {
	jit_auth {
		allow group admins
		assertion
	}
	respond ok
}`,
		"site with two hosts and per-host handles": `
http://wiki.example.com, http://admin.example.com {
	@wiki host wiki.example.com
	handle @wiki {
		jit_auth {
			assertion
		}
		respond ok
	}
	handle {
		jit_auth {
			allow group admins
			assertion
		}
		respond ok
	}
}`,
	} {
		t.Run(name, func(t *testing.T) {
			err := validateSites(t, site)
			if err != nil {
				t.Fatalf("refused at load, though the applications are on different hosts (so different iss): %v", err)
			}
		})
	}
}

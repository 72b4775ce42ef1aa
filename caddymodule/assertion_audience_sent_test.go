package caddymodule_test

import (
	"strings"
	"testing"
)

// Two applications of one site (one open, one restricted to admins) that
// would send assertions with the same iss, key and aud are refused at
// load however the audience comes about: a configured audience equal to
// the other's default, or a handler in a named route (reachable from
// every host of its server).
func TestAssertionAudienceCollisionsAsSentAreRefused(t *testing.T) {
	for name, body := range map[string]string{
		// The operator fixes the load error by giving the admin
		// application the audience its upstream already pins (the
		// pre-upgrade default, the bare origin); the open application's
		// default is that same origin.
		"configured equals other's default": `
http://localhost:1 {
	handle /public/* {
		jit_auth {
			assertion
		}
	}
	handle /admin/* {
		jit_auth {
			allow group admins
			assertion {
				audience http://localhost:1
			}
		}
	}
	respond ok
}`,
		"configured equals other's path default": `
http://localhost:1 {
	jit_auth /public/* {
		assertion
	}
	jit_auth /admin/* {
		allow group admins
		assertion {
			audience http://localhost:1/public/*
		}
	}
	respond ok
}`,
		// A jit_auth in a named route is skipped by checkAudiences
		// (site ""), though invoked from the site: both default to the
		// origin.
		"named route": `
&(admin) {
	jit_auth {
		allow group admins
		assertion
	}
	respond admin
}
http://localhost:1 {
	handle /admin/* {
		invoke admin
	}
	handle {
		jit_auth {
			assertion
		}
		respond ok
	}
}`,
	} {
		t.Run(name, func(t *testing.T) {
			err := validateSites(t, body)
			if err == nil || !strings.Contains(err.Error(), "audience") {
				t.Fatalf("loaded (err=%v): two applications of one site send assertions with one iss, key and aud", err)
			}
		})
	}
}

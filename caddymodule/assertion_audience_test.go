package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// twoAppSite runs one plain-HTTP site with the given body ({UPSTREAM}
// replaced) and logs alice in through start (a path under the first
// handler's endpoints), returning her session cookie.
func twoAppSite(t *testing.T, body, start string) (base string, up *recordingUpstream, session string) {
	t.Helper()
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up = newRecordingUpstream(t)
	port := freePort(t)
	cfg := idp.Config()
	conns := fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
			scopes openid email profile groups
			jit off
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	runCaddyfile(t, fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n%s\n}\n", globalOptions(dir, conns), port, strings.ReplaceAll(body, "{UPSTREAM}", up.url)))
	base = fmt.Sprintf("http://localhost:%d", port)
	b := newBrowser(t)
	idp.QueueUser(alice())
	resp, _, visited := b.follow(base+start, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d after %v", resp.StatusCode, visited)
	}
	c := b.cookie(base, "jitauth_session")
	if c == nil {
		t.Fatal("no session cookie after login")
	}
	return base, up, c.Value
}

// Two applications on one host (jit_auth /public/* and jit_auth
// /admin/*) sign with the same key and the same iss. An assertion the
// open application minted for alice must not verify at the admin
// application's upstream when that upstream verifies as the README says
// (pin issuer, audience, algorithm): the admin application refuses alice
// (403), and whoever sees the open upstream's requests (its log, a
// compromised or echoing upstream: the threat the assertion is for) must
// not hold a credential for the admin upstream.
func TestAssertionOfOneApplicationDoesNotVerifyAtAnother(t *testing.T) {
	base, up, session := twoAppSite(t, `
	jit_auth /public/* {
		assertion
	}
	jit_auth /admin/* {
		allow group admins
		assertion
	}
	reverse_proxy {UPSTREAM}`, "/.jitauth/start/corp?rd=/public/welcome")

	if st := getWithSession(t, base, "/admin/x", session); st != http.StatusForbidden {
		t.Fatalf("/admin/x for alice (not in admins): status %d, want 403", st)
	}
	if _, reached := up.take("/admin/x"); reached {
		t.Fatal("/admin/x reached the upstream")
	}
	if st := getWithSession(t, base, "/public/x", session); st != http.StatusOK {
		t.Fatalf("/public/x: status %d", st)
	}
	seen, ok := up.take("/public/x")
	if !ok {
		t.Fatal("/public/x did not reach the upstream")
	}
	tok := seen.header.Get("Jit-Assertion")
	if tok == "" {
		t.Fatal("no assertion on /public/x")
	}
	// The public upstream's verifier, per the README, accepts it: the
	// site's JWKS, issuer = the site's origin, audience = the origin and
	// the application's paths, ES256.
	if _, err := assertionVerifier(base, base+"/public/*", nil).Verify(context.Background(), tok); err != nil {
		t.Fatalf("the /public/* application's own upstream refuses its assertion: %v", err)
	}
	// The admin upstream's verifier refuses it, whether it pins its
	// default audience or the bare origin.
	for _, aud := range []string{base + "/admin/*", base} {
		if _, err := assertionVerifier(base, aud, nil).Verify(context.Background(), tok); err == nil {
			t.Errorf("an assertion minted by the /public/* application for alice verifies with audience %s at the /admin/* application's upstream "+
				"(same iss, same key), although that application refuses alice with 403", aud)
		}
	}
}

// Two applications of one site that would send assertions with one
// audience are refused at load, the message naming both and the fix;
// one named application attached twice, or applications with audiences
// of their own, load.
func TestAssertionAudienceSharedByTwoApplicationsIsRefused(t *testing.T) {
	for name, c := range map[string]struct{ site, want string }{
		"handle blocks": {`
	handle /public/* {
		jit_auth {
			assertion
		}
	}
	handle /admin/* {
		jit_auth {
			allow group admins
			assertion
		}
	}`, "the default audience (the site's origin) from one site"},
		"one path": {`
	jit_auth /api/* {
		assertion
	}
	jit_auth /api/* {
		allow group admins
		assertion
	}`, "the default audience (the site's origin followed by /api/*)"},
		"configured": {`
	jit_auth /public/* {
		assertion {
			audience api://wiki
		}
	}
	jit_auth /admin/* {
		allow group admins
		assertion {
			audience api://wiki
		}
	}`, "the audience api://wiki"},
		"named twice": {`
	handle /a/* {
		jit_auth app
	}
	handle /b/* {
		jit_auth app
	}`, ""},
		"own audiences": {`
	handle /public/* {
		jit_auth {
			assertion {
				audience api://public
			}
		}
	}
	handle /admin/* {
		jit_auth {
			allow group admins
			assertion {
				audience api://admin
			}
		}
	}`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			err := validate(t, fmt.Sprintf(`{
	admin off
	storage file_system %s/storage
	jit_auth {
		store sqlite %s/users.db
		connection corp {
			oidc https://idp.example a b
		}
		application app {
			assertion
		}
	}
}
http://localhost:1 {%s
	respond ok
}
`, dir, dir, c.site))
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "audience of its own")):
				t.Fatalf("got %v, want an error naming %q and the fix", err, c.want)
			}
		})
	}
}

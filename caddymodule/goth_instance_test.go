package caddymodule_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// gothInstanceSite is a Caddyfile with one JIT connection "github" of
// the goth connector: at the GitHub Enterprise gh when gh is set, at
// github.com when it is nil.
func gothInstanceSite(dir string, port int, gh *fakeGitHubServer, up string) string {
	conn := "\t\tconnection github {\n\t\t\tprovider github gh-key gh-secret\n"
	if gh != nil {
		conn += fmt.Sprintf(`			auth_url %[1]s/login/oauth/authorize
			token_url %[1]s/login/oauth/access_token
			profile_url %[1]s/api/v3/user
			email_url %[1]s/api/v3/user/emails
`, gh.URL)
	}
	conn += "\t\t\tjit\n\t\t}"
	return fmt.Sprintf("{%s\n}\nhttp://localhost:%d {\n\tjit_auth\n\treverse_proxy %s\n}\n", globalOptions(dir, conn), port, up)
}

// signInAs signs a new browser in at base and returns the Remote-User
// the upstream saw.
func signInAs(t *testing.T, base string, up *upstream) string {
	t.Helper()
	resp, body, visited := newBrowser(t).follow(base+"/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in: %d %s (%v)", resp.StatusCode, body, visited)
	}
	return up.lastHeaders(t).Get("Remote-User")
}

// seedBareGitHubIdentity stores the user "legacy" with the identity an
// earlier release gave GitHub's user 4242 on connection "github": the
// provider's bare name as its issuer, whatever instance it came from.
func seedBareGitHubIdentity(t *testing.T, dir string) {
	t.Helper()
	s := openStore(t, dir)
	now := time.Now().UTC()
	if _, err := s.CreateUser(t.Context(), &provisioner.User{Username: "legacy", Email: "legacy@example.com", EmailVerified: true},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "github", Issuer: "github", Subject: "4242"},
			RawClaims: []byte(`{}`), CreatedAt: now, LastLoginAt: now}); err != nil {
		t.Fatal(err)
	}
	s.Close()
}

// A goth connection repointed from one instance to another (a GitHub
// Enterprise moved, gitlab.com traded for a self-hosted GitLab) keeps
// its name: the identities were keyed by the provider's name alone, so
// the new instance's user 4242 signed in as the local user of the old
// instance's user 4242. They are new identities now.
func TestGothRepointedConnectionDoesNotSignInTheOldInstancesUser(t *testing.T) {
	first := fakeGitHub(t, fakeGitHubUser{})
	second := fakeGitHub(t, fakeGitHubUser{login: "mallory", emails: githubEmails(githubAddr{"mallory@example.net", true, true})})
	dir, up, port := t.TempDir(), newUpstream(t), freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)

	runCaddyfile(t, gothInstanceSite(dir, port, first, up.hostPort()))
	if got := signInAs(t, base, up); got != "octocat@example.com" {
		t.Fatalf("first instance's user signed in as %q", got)
	}
	reloadInProcess(t, gothInstanceSite(dir, port, second, up.hostPort()))
	if got := signInAs(t, base, up); got != "mallory@example.net" {
		t.Fatalf("the second instance's user 4242 signed in as %q, want a user of its own (mallory@example.net)", got)
	}
	if users := allUsers(t, openStore(t, dir)); len(users) != 2 {
		t.Fatalf("store: %+v; want two users", users)
	}
}

// An identity an earlier release stored under the provider's bare name
// for a connection with a configured instance is that instance's: it
// signs in as before after the upgrade, and only once it was taken as
// that instance's does repointing the connection leave it behind.
func TestGothIdentityOfAnEarlierReleaseSignsInAfterUpgrade(t *testing.T) {
	first := fakeGitHub(t, fakeGitHubUser{})
	second := fakeGitHub(t, fakeGitHubUser{login: "mallory", emails: githubEmails(githubAddr{"mallory@example.net", true, true})})
	dir, up, port := t.TempDir(), newUpstream(t), freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	seedBareGitHubIdentity(t, dir)

	runCaddyfile(t, gothInstanceSite(dir, port, first, up.hostPort()))
	if got := signInAs(t, base, up); got != "legacy" {
		t.Fatalf("the stored identity signed in as %q, want legacy", got)
	}
	reloadInProcess(t, gothInstanceSite(dir, port, second, up.hostPort()))
	if got := signInAs(t, base, up); got != "mallory@example.net" {
		t.Fatalf("after repointing, the second instance's user 4242 signed in as %q, want mallory@example.net", got)
	}
}

// A connection that ran on the provider's own instance (github.com)
// after the upgrade holds that instance's identities under the bare
// name: repointing it to an instance of one's own does not hand them to
// that instance's users.
func TestGothDefaultInstanceIdentityNotTakenByARepointedConnection(t *testing.T) {
	second := fakeGitHub(t, fakeGitHubUser{login: "mallory", emails: githubEmails(githubAddr{"mallory@example.net", true, true})})
	dir, up, port := t.TempDir(), newUpstream(t), freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	seedBareGitHubIdentity(t, dir)

	// On github.com: nothing is contacted at start.
	runCaddyfile(t, gothInstanceSite(dir, port, nil, up.hostPort()))
	reloadInProcess(t, gothInstanceSite(dir, port, second, up.hostPort()))
	if got := signInAs(t, base, up); got != "mallory@example.net" {
		t.Fatalf("the repointed connection's user 4242 signed in as %q, want mallory@example.net", got)
	}
}

package caddymodule_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// <user> in the admin API is "a local ID or a username", looked
// up as an ID first. A username is provider-chosen (the default
// templates take preferred_username when the email is not verified), so
// a user can be given a username that is another user's local ID. An
// operator who then disables "that user" by the username the list shows
// disables the other user, and can never address the first one by name.
func TestAdminRefNamingTwoUsersIsRefused(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice's login: %d", resp.StatusCode)
	}
	aliceID := s.upstream.lastHeaders(t).Get("X-Auth-Local-Id")
	if aliceID == "" {
		t.Fatal("no local ID for alice")
	}
	// Mallory's provider lets her choose preferred_username; her email is
	// not verified, so the default templates take it as her username.
	s.queue(&oidcUser{sub: "mallory-sub", claims: map[string]any{
		"email": "mallory@example.net", "email_verified": false,
		"name": "Mallory", "preferred_username": aliceID,
	}})
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("mallory's login: %d", resp.StatusCode)
	}
	malloryName := s.upstream.lastHeaders(t).Get("Remote-User")
	if malloryName != aliceID {
		t.Skipf("mallory's username is %q, not alice's ID: not reachable this way", malloryName)
	}
	// The operator sees mallory listed under that username and disables
	// her by it: that names two users, so it is refused, and nobody is
	// disabled.
	var view struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Status   string `json:"status"`
	}
	if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/"+url.PathEscape(malloryName)+"/disable", `{"reason":"abuse"}`, nil); code != http.StatusConflict {
		t.Errorf("POST /jit_auth/users/%s/disable (mallory's username, alice's ID): %d, want 409", malloryName, code)
	}
	if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users/alice@example.com", "", &view); code != http.StatusOK || view.Status != "active" || view.ID != aliceID {
		t.Errorf("alice after the refused disable: %d %+v, want her active", code, view)
	}
	// Each is reachable by the key that names only her.
	var mallory struct {
		ID string `json:"id"`
	}
	var list struct {
		Users []struct {
			ID       string `json:"id"`
			Username string `json:"username"`
		} `json:"users"`
	}
	if code := adminCall(t, admin, http.MethodGet, "/jit_auth/users?q=mallory", "", &list); code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	for _, u := range list.Users {
		if u.Username == malloryName {
			mallory.ID = u.ID
		}
	}
	if mallory.ID == "" {
		t.Fatal("mallory is not in the list")
	}
	if code := adminCall(t, admin, http.MethodPost, "/jit_auth/users/"+mallory.ID+"/disable", `{"reason":"abuse"}`, &view); code != http.StatusOK || view.Username != malloryName {
		t.Errorf("disable by mallory's ID: %d %+v", code, view)
	}
}

// A username with '/' cannot be addressed by name in the admin API or
// `caddy jit-users` unless the handler reads the escaped path: the CLI
// escapes it as ops%2Fbob, and a handler that split the decoded path at
// the '/' would answer "unknown jit_auth admin route". Sign-in no longer
// gives such a name (names from claims are letters, digits and ._-, an
// email's name a plain address), but a directory kept from an earlier
// version, or a third-party store, may hold one.
func TestAdminUsernameWithSlashIsReachable(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin})
	const name = "ops/bob"
	if _, err := openStore(t, s.dir).CreateUser(t.Context(), &provisioner.User{Username: name},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp.example", Subject: "bob-sub"}}); err != nil {
		t.Fatal(err)
	}
	// Exactly the path `caddy jit-users show ops/bob` requests (userPath).
	code, body := adminRaw(t, admin, http.MethodGet, "/jit_auth/users/"+url.PathEscape(name), "")
	if code != http.StatusOK {
		t.Errorf("GET /jit_auth/users/%s: %d %s; want the user %s", url.PathEscape(name), code, body, name)
	}
}

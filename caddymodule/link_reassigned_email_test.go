package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// A provider that gives a user's address to someone else (a mailbox
// reassigned to a new hire) vouches for it under the newcomer's own
// subject. To that provider they are two accounts: with link
// verified_email the newcomer's first sign-in through the same
// connection must not join the previous holder's local user (their
// roles, their data upstream), but end on the account conflict page.
func TestLinkRefusesASecondSubjectOfTheSameIssuer(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "link verified_email"})
	st := openStore(t, s.dir)
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice's login: %d", resp.StatusCode)
	}
	users := allUsers(t, st)
	if len(users) != 1 {
		t.Fatalf("users: %+v", users)
	}
	before := s.upstream.count()

	newcomer := alice()
	newcomer.sub = "newcomer-sub"
	newcomer.claims["name"], newcomer.claims["preferred_username"] = "New Hire", "newhire"
	b := newBrowser(t)
	s.queue(newcomer)
	resp, body := s.login(b, "corp", "/")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "email address") || s.hasSession(b) {
		t.Errorf("newcomer with alice's reassigned address: %d, session %v, upstream reached %d times\n%s",
			resp.StatusCode, s.hasSession(b), s.upstream.count()-before, body)
	}
	if ids, err := st.Identities(context.Background(), users[0].ID); err != nil || len(ids) != 1 {
		t.Errorf("alice's identities: %d, %v; want her own alone", len(ids), err)
	}
}

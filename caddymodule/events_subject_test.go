package caddymodule_test

import (
	"net/http"
	"testing"
)

// The audit events of a login and a logout ("user logged in", "user
// logged out", "login denied") carry the provider subject, as the README
// promises every outcome does: a JIT-off login named by its verified
// email has no local ID, and two provider accounts that held one address
// at different times (a recycled mailbox) are told apart only by it.
func TestLoginAuditEventsCarryTheProviderSubject(t *testing.T) {
	s := startSiteOpts(t, siteOptions{auditLog: true})

	// JIT off (partner): the session is named by the verified email,
	// nothing is stored; the audit line is all that says who it was.
	s.queue(alice())
	b := newBrowser(t)
	if resp, _ := s.login(b, "partner", "/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("JIT-off login: %d", resp.StatusCode)
	}
	if resp, _ := b.logout(s.base, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	// JIT on (corp).
	s.queue(alice())
	if resp, _ := s.login(newBrowser(t), "corp", "/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("JIT-on login: %d", resp.StatusCode)
	}

	for _, msg := range []string{"user logged in", "user logged out"} {
		entries := logEntries(t, s.logFile(), msg)
		if len(entries) == 0 {
			t.Errorf("no %q audit event", msg)
			continue
		}
		for _, e := range entries {
			if e["subject"] != "alice-sub" {
				t.Errorf("%q audit event without the provider subject (want subject alice-sub): %v", msg, e)
			}
		}
	}
}

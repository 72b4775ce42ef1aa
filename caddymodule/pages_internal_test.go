package caddymodule

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

func TestWaitText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1 second", 300 * time.Millisecond: "1 second", 999 * time.Millisecond: "1 second",
		time.Second: "1 second", 1001 * time.Millisecond: "2 seconds", 1500 * time.Millisecond: "2 seconds", 3 * time.Second: "3 seconds",
		5*time.Minute - time.Millisecond: "300 seconds", -time.Second: "1 second",
	} {
		if got := waitText(d); got != want {
			t.Errorf("waitText(%v) = %q, want %q", d, got, want)
		}
	}
}

// Every page escapes what an attacker chooses (a display name, a
// username, a return URL, a claim): no markup or script URL gets through.
func TestEveryPageEscapesAttackerText(t *testing.T) {
	const evil = `"><script>alert(1)</script><b x='`
	for _, d := range []pageData{
		{Title: evil, Message: evil, Link: "javascript:alert(1)", LinkLabel: evil, Status: 400},
		{Title: evil, Message: evil, Options: []pageOption{{Href: "javascript:alert(1)", Label: evil}}},
		{Title: evil, Form: &consentForm{Action: evil, CSRF: evil, Error: evil, Provider: evil, Claims: evil, Roles: evil, Username: evil, AskUsername: true,
			Attributes: []provisioner.AttributeValue{{Name: evil, Value: evil}}}},
		{Title: evil, MFA: &mfaForm{Action: evil, CSRF: evil, Error: evil, Enrol: true, Secret: evil}},
		{Title: evil, MFA: &mfaForm{Codes: []string{evil}, Continue: "javascript:alert(1)"}},
		{Title: evil, Message: evil, Logout: &logoutForm{Action: evil, CSRF: evil, ReturnTo: evil}},
	} {
		w := httptest.NewRecorder()
		renderPage(w, 200, d)
		page := w.Body.String()
		if strings.Contains(page, "<script") || strings.Contains(page, "<b x") || strings.Contains(page, `href="javascript:`) || !strings.Contains(page, "&lt;script&gt;") {
			t.Errorf("%s page lets markup through:\n%s", d.page().Name(), page)
		}
	}
}

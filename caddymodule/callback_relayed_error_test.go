package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// An error answer on the callback comes through the browser: anyone who
// starts a login of their own can send invalid_client with any text, as
// often as they like. It is no proof that the connection's settings are
// wrong, so it logs no ERROR and suggests no change ("check its
// client_id", "register … as a redirect URI"), counts as a refused login
// (provider_error), not a failed one, answers no 5xx, and what it repeats
// of the attacker's text is bounded and says it came through the
// browser.
func TestCallbackErrorAnswerThroughTheBrowserIsNotAMisconfiguration(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, auditLog: true})
	before := scrapeMetrics(t, admin)

	forged := "ATTACKER-TEXT rotate the client secret now\n{\"level\":\"error\",\"msg\":\"forged\"}" + strings.Repeat("x", 5000)
	for _, code := range []string{"invalid_client", "redirect_uri_mismatch", "invalid_scope"} {
		b := newBrowser(t)
		state := startLogin(t, b, s.base, "corp")
		resp, body := b.get(s.base + "/.jitauth/callback/corp?" + url.Values{
			"state": {state}, "error": {code}, "error_description": {forged}}.Encode())
		if resp.StatusCode >= 500 {
			t.Errorf("%s: status %d: an anonymous request answers a server error: %s", code, resp.StatusCode, body)
		}
		if b.cookie(s.base, "jitauth_session") != nil {
			t.Fatalf("%s: a session was issued", code)
		}
	}

	after := scrapeMetrics(t, admin)
	failed := `jit_auth_logins_total{connection="corp",outcome="failed"}`
	refused := `jit_auth_logins_total{connection="corp",outcome="refused"}`
	providerError := `jit_auth_denials_total{reason="provider_error"}`
	if got := after[failed] - before[failed]; got != 0 {
		t.Errorf("%s went up by %v: anyone can fail logins at will", failed, got)
	}
	if got := after[refused] - before[refused]; got != 3 {
		t.Errorf("%s went up by %v, want 3", refused, got)
	}
	if got := after[providerError] - before[providerError]; got != 3 {
		t.Errorf("%s went up by %v, want 3", providerError, got)
	}

	logs := mustReadFile(t, s.logFile())
	warned := 0
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "ATTACKER-TEXT") {
			continue
		}
		if len(line) > 2000 {
			t.Errorf("a log line repeats %d bytes of the browser's text", len(line))
		}
		for _, bad := range []string{`"level":"error"`, "sign-in misconfigured", `"fix"`, "check its", "as a redirect URI", "scopes"} {
			if strings.Contains(line, bad) {
				t.Errorf("a log line with the browser's text holds %q: %.400s", bad, line)
			}
		}
		if strings.Contains(line, `"level":"warn"`) && strings.Contains(line, "through the browser") {
			warned++
		}
	}
	if warned != 3 {
		t.Errorf("%d warnings saying the answer came through the browser, want 3:\n%s", warned, logs)
	}
	for _, e := range logEntries(t, s.logFile(), "forged") {
		t.Errorf("the browser's text forged a log entry: %v", e)
	}
}

// The error code of a provider's refusal on the callback (access_denied
// and the rest) comes through the browser too: the audit line "login
// refused" and the Caddy event repeat only what an OAuth 2 error code
// may hold (printable ASCII but '"' and '\'), bounded: no escape
// sequence for a terminal, no control character, no half of a UTF-8
// character.
func TestCallbackErrorCodeIsCleanedBeforeItIsRepeated(t *testing.T) {
	s := startSiteOpts(t, siteOptions{auditLog: true})
	b := newBrowser(t)
	state := startLogin(t, b, s.base, "corp")
	code := "access_denied\x1b[2J\r\n\"forged\":\"x\\y\"" + strings.Repeat("é", 40)
	resp, body := b.get(s.base + "/.jitauth/callback/corp?" + url.Values{"state": {state}, "error": {code}}.Encode())
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "did not sign you in (access_denied") {
		t.Fatalf("status %d, want the 401 page naming the code: %s", resp.StatusCode, body)
	}
	entries := logEntries(t, s.logFile(), "login refused")
	if len(entries) != 1 {
		t.Fatalf("%d audit lines \"login refused\", want 1", len(entries))
	}
	got, _ := entries[0]["provider_error"].(string)
	if !strings.HasPrefix(got, "access_denied") || len(got) > 64 {
		t.Errorf("provider_error = %q, want the code, at most 64 bytes", got)
	}
	for _, r := range got {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			t.Errorf("provider_error = %q holds %q, which no OAuth 2 error code does", got, r)
			break
		}
	}
}

// What the browser brings in error_description is repeated without the
// characters that let text forge or hide parts of a log line in a
// terminal or a viewer: C1 controls (U+009B is an 8-bit escape, U+0085 a
// line break), bidirectional overrides (U+202E shows the rest of the line
// reversed) and the line and paragraph separators.
func TestCallbackErrorDescriptionDropsUnicodeControls(t *testing.T) {
	s := startSiteOpts(t, siteOptions{auditLog: true})
	b := newBrowser(t)
	state := startLogin(t, b, s.base, "corp")
	desc := "MARK \u009b2J\u0085\u202ereversed\u2066\u2069\u2028next\u2029end"
	resp, body := b.get(s.base + "/.jitauth/callback/corp?" + url.Values{"state": {state}, "error": {"invalid_scope"}, "error_description": {desc}}.Encode())
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	found := false
	for _, line := range strings.Split(mustReadFile(t, s.logFile()), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		for k, v := range e {
			if sv, ok := v.(string); ok && strings.Contains(sv, "MARK") {
				found = true
				if i := strings.IndexAny(sv, "\u009b\u0085\u202e\u2066\u2069\u2028\u2029"); i >= 0 {
					t.Errorf("%s %q holds %q", k, sv, []rune(sv[i:])[0])
				}
			}
		}
	}
	if !found {
		t.Fatal("the description is not in the log")
	}
}

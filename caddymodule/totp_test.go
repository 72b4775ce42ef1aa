package caddymodule_test

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

var (
	secretRE   = regexp.MustCompile(`<code id="secret">([A-Z2-7]+)</code>`)
	recoveryRE = regexp.MustCompile(`<li><code>([a-z0-9-]+)</code></li>`)
)

// mfaSite is a site whose application requires TOTP from corp (JIT on)
// and skips it for partner (JIT off).
func mfaSite(t *testing.T, o siteOptions) *site {
	t.Helper()
	o.globalExtra += `
		application app {
			mfa totp {
				skip_for partner
			}
		}`
	o.application = "app"
	return startSiteOpts(t, o)
}

// codeAt is the TOTP code of secret at t, as an authenticator app shows it.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// submitCode posts code on the MFA page shown in page.
func (s *site) submitCode(b *browser, page, code string) (*http.Response, string) {
	s.t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	action := regexp.MustCompile(`name="action" value="(\w+)"`).FindStringSubmatch(page)
	formAction := regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(page)
	if m == nil || action == nil || formAction == nil {
		s.t.Fatalf("no MFA form on the page:\n%s", page)
	}
	return b.postForm(s.base+html.UnescapeString(formAction[1]), url.Values{
		"csrf": {html.UnescapeString(m[1])}, "action": {action[1]}, "code": {code},
	})
}

// enrol logs u in through corp and enrols a TOTP factor, returning the
// secret, the recovery codes and the browser, now fully signed in.
func (s *site) enrol(u *oidcUser) (string, []string, *browser) {
	s.t.Helper()
	b := newBrowser(s.t)
	s.queue(u)
	resp, page := s.login(b, "corp", "/secret")
	if resp.Request.URL.Path != "/.jitauth/mfa" {
		s.t.Fatalf("login ended at %s, want the MFA page", resp.Request.URL)
	}
	m := secretRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, `<img src="data:image/png;base64,`) {
		s.t.Fatalf("enrolment page without secret or QR code:\n%s", page)
	}
	resp, page = s.submitCode(b, page, codeAt(s.t, m[1], time.Now()))
	codes := recoveryRE.FindAllStringSubmatch(page, -1)
	if resp.StatusCode != http.StatusOK || len(codes) != 10 {
		s.t.Fatalf("enrolment: %d, %d recovery codes\n%s", resp.StatusCode, len(codes), page)
	}
	var out []string
	for _, c := range codes {
		out = append(out, c[1])
	}
	return m[1], out, b
}

// signInToMFA logs u in through corp and returns the MFA page.
func (s *site) signInToMFA(u *oidcUser) (*browser, string) {
	s.t.Helper()
	b := newBrowser(s.t)
	s.queue(u)
	resp, page := s.login(b, "corp", "/secret")
	if resp.Request.URL.Path != "/.jitauth/mfa" || strings.Contains(page, "<img") || !strings.Contains(page, "recovery code") {
		s.t.Fatalf("login ended at %s, want the MFA verification page:\n%s", resp.Request.URL, page)
	}
	return b, page
}

func TestTOTPEnrolmentAndLogin(t *testing.T) {
	s := mfaSite(t, siteOptions{auditLog: true})
	st := openStore(t, s.dir)
	ctx := context.Background()

	// The federated login leaves a session that owes the factor: it
	// reaches only the MFA page, not the upstream's pages or its admin
	// pages, not as a browser and not as an API client.
	b := newBrowser(t)
	s.queue(alice())
	resp, page := s.login(b, "corp", "/secret")
	if resp.Request.URL.Path != "/.jitauth/mfa" || resp.Request.URL.Query().Get("rd") != "/secret" {
		t.Fatalf("login ended at %s, want the MFA page", resp.Request.URL)
	}
	for _, path := range []string{"/secret", "/admin/users", "/"} {
		if resp, _ := b.get(s.base + path); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/.jitauth/mfa") {
			t.Errorf("pre-MFA navigation to %s: %d to %q, want a redirect to the MFA page", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		resp := b.do(http.MethodGet, s.base+path, http.Header{"Accept": {"application/json"}})
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("pre-MFA API call to %s: %d, want 401", path, resp.StatusCode)
		}
		resp = b.do(http.MethodPost, s.base+path, nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("pre-MFA POST to %s: %d, want 401", path, resp.StatusCode)
		}
	}
	if s.upstream.hits != 0 {
		t.Fatalf("the upstream was reached %d times before the second factor", s.upstream.hits)
	}

	// Enrolment: a wrong code saves nothing; the right one saves the
	// secret, sealed, and shows recovery codes once.
	secret := secretRE.FindStringSubmatch(page)[1]
	resp, body := s.submitCode(b, page, wrongCode(t, secret))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not right") {
		t.Fatalf("wrong enrolment code: %d\n%s", resp.StatusCode, body)
	}
	u := allUsers(t, st)[0]
	if _, err := st.TOTP(ctx, u.ID); err == nil {
		t.Fatal("a factor was saved before a correct code")
	}
	if got := secretRE.FindStringSubmatch(body); got == nil || got[1] != secret {
		t.Fatal("the enrolment page changed the secret after a wrong code")
	}
	resp, body = s.submitCode(b, body, codeAt(t, secret, time.Now()))
	codes := recoveryRE.FindAllStringSubmatch(body, -1)
	if resp.StatusCode != http.StatusOK || len(codes) != 10 {
		t.Fatalf("enrolment: %d with %d codes", resp.StatusCode, len(codes))
	}
	factor, err := st.TOTP(ctx, u.ID)
	if err != nil || bytes.Contains(factor.SealedSecret, []byte(secret)) || len(factor.RecoveryHashes) != 10 {
		t.Fatalf("stored factor: %v; sealed secret holds the clear secret: %v", err, err == nil && bytes.Contains(factor.SealedSecret, []byte(secret)))
	}
	for _, c := range codes {
		for _, h := range factor.RecoveryHashes {
			if strings.Contains(h, c[1]) {
				t.Fatal("a recovery code is stored in the clear")
			}
		}
	}
	if resp, _ := b.get(s.base + "/secret"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after enrolment: %d", resp.StatusCode)
	}
	if got := s.upstream.lastHeaders(t).Get("Remote-User"); got != "alice@example.com" {
		t.Errorf("Remote-User = %q", got)
	}

	// A later login asks for a code. A fresh one (the next time step, as
	// a phone a little ahead shows it) works; the same code again, or an
	// older one, does not.
	next := codeAt(t, secret, time.Now().Add(30*time.Second))
	b2, page := s.signInToMFA(alice())
	resp, _ = s.submitCode(b2, page, next)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/secret" {
		t.Fatalf("later login with a fresh code: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	b3, page := s.signInToMFA(alice())
	for _, code := range []string{next, codeAt(t, secret, time.Now())} {
		resp, body := s.submitCode(b3, page, code)
		if resp.StatusCode != http.StatusUnauthorized || !s.hasNoUpstreamAccess(b3) {
			t.Errorf("replayed code %s: %d\n%s", code, resp.StatusCode, body)
		}
		page = body
	}

	// A recovery code works once, and never again.
	rc := codes[3][1]
	b4, page := s.signInToMFA(alice())
	if resp, _ := s.submitCode(b4, page, strings.ToUpper(rc)); resp.StatusCode != http.StatusOK {
		t.Fatalf("recovery code: %d", resp.StatusCode)
	}
	b5, page := s.signInToMFA(alice())
	if resp, _ := s.submitCode(b5, page, rc); resp.StatusCode != http.StatusUnauthorized || !s.hasNoUpstreamAccess(b5) {
		t.Errorf("the same recovery code again: %d", resp.StatusCode)
	}
	if f, _ := st.TOTP(ctx, u.ID); len(f.RecoveryHashes) != 9 {
		t.Errorf("%d recovery codes left, want 9", len(f.RecoveryHashes))
	}

	// skip_for: partner's users pass without a second factor.
	b6 := newBrowser(t)
	s.queue(alice())
	if resp, _ := s.login(b6, "partner", "/p"); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/p" {
		t.Errorf("partner login: %d at %s, want the upstream without MFA", resp.StatusCode, resp.Request.URL)
	}

	logs := mustReadFile(t, s.logFile())
	for _, event := range []string{`"msg":"totp enrolled"`, `"msg":"second factor accepted"`, `"msg":"totp code refused"`} {
		if !strings.Contains(logs, event) {
			t.Errorf("no %s audit event", event)
		}
	}
	if strings.Contains(logs, secret) || strings.Contains(logs, rc) {
		t.Error("a TOTP secret or recovery code is in the log")
	}
}

// hasNoUpstreamAccess reports that b's session does not reach the upstream.
func (s *site) hasNoUpstreamAccess(b *browser) bool {
	resp, _ := b.get(s.base + "/secret")
	return resp.StatusCode != http.StatusOK
}

// wrongCode is a 6-digit code valid in no step near now.
func wrongCode(t *testing.T, secret string) string {
	t.Helper()
	now := time.Now()
	valid := map[string]bool{}
	for i := -2; i <= 2; i++ {
		valid[codeAt(t, secret, now.Add(time.Duration(i)*30*time.Second))] = true
	}
	for n := 0; ; n++ {
		if c := fmt.Sprintf("%06d", n*7919%1000000); !valid[c] {
			return c
		}
	}
}

// Wrong codes one at a time: 3 are checked, the 4th at once is refused
// with 429 and Retry-After, and so is the right code during the wait;
// refused attempts are not counted; after the wait the right code works
// and resets the count. The rest is in totp_ratelimit_test.go.
func TestTOTPWrongCodesAreRateLimited(t *testing.T) {
	s := mfaSite(t, siteOptions{})
	checkTOTPRateLimit(t, s, openStore(t, s.dir))
}

func TestTOTPAdminReset(t *testing.T) {
	admin := freePort(t)
	s := mfaSite(t, siteOptions{adminPort: admin})
	st := openStore(t, s.dir)
	s.enrol(alice())
	u := allUsers(t, st)[0]

	if code := adminCall(t, admin, http.MethodDelete, "/jit_auth/users/alice@example.com/totp", "", nil); code != http.StatusOK {
		t.Fatalf("admin reset: %d", code)
	}
	if _, err := st.TOTP(context.Background(), u.ID); err == nil {
		t.Fatal("the factor is still stored after the reset")
	}
	// The next login enrols again. The reset signed alice out to the
	// second, as a sign-out everywhere does, so it comes in a later one.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	b := newBrowser(t)
	s.queue(alice())
	if _, page := s.login(b, "corp", "/"); secretRE.FindStringSubmatch(page) == nil {
		t.Errorf("after a reset, the login does not offer enrolment:\n%s", page)
	}
	// Unknown users and routes are clear errors.
	if code := adminCall(t, admin, http.MethodDelete, "/jit_auth/users/nobody/totp", "", nil); code != http.StatusNotFound {
		t.Errorf("reset of an unknown user: %d", code)
	}
}

// A factor saved by one enrolment is never replaced by another: whoever
// holds only the first factor cannot swap in their own authenticator.
func TestTOTPEnrolmentNeverReplacesAFactor(t *testing.T) {
	s := mfaSite(t, siteOptions{})
	// Two tabs start enrolment; the first finishes.
	b := newBrowser(t)
	s.queue(alice())
	_, pageA := s.login(b, "corp", "/")
	attacker := newBrowser(t)
	s.queue(alice())
	_, pageB := s.login(attacker, "corp", "/")
	secretA := secretRE.FindStringSubmatch(pageA)[1]
	secretB := secretRE.FindStringSubmatch(pageB)[1]
	if resp, _ := s.submitCode(b, pageA, codeAt(t, secretA, time.Now())); resp.StatusCode != http.StatusOK {
		t.Fatalf("first enrolment: %d", resp.StatusCode)
	}
	resp, _ := s.submitCode(attacker, pageB, codeAt(t, secretB, time.Now()))
	if resp.Request.URL.Path != "/.jitauth/mfa" || !s.hasNoUpstreamAccess(attacker) {
		t.Errorf("second enrolment: %d at %s, want the verification page", resp.StatusCode, resp.Request.URL)
	}
	// The stored factor is A's: a code from A's secret verifies.
	b2, page := s.signInToMFA(alice())
	if resp, _ := s.submitCode(b2, page, codeAt(t, secretA, time.Now().Add(30*time.Second))); resp.StatusCode != http.StatusOK {
		t.Errorf("the first enrolment's secret no longer works: %d", resp.StatusCode)
	}
}

// The second-factor form is the session's own: posted with any other
// CSRF token, even with the right code, it saves nothing and does not
// complete the login.
func TestTOTPFormRefusesAForeignCSRFToken(t *testing.T) {
	s := mfaSite(t, siteOptions{})
	st := openStore(t, s.dir)
	b := newBrowser(t)
	s.queue(alice())
	resp, page := s.login(b, "corp", "/secret")
	if resp.Request.URL.Path != "/.jitauth/mfa" {
		t.Fatalf("login ended at %s, want the MFA page", resp.Request.URL)
	}
	secret := secretRE.FindStringSubmatch(page)[1]
	real := csrfRE.FindStringSubmatch(page)[1]
	action := regexp.MustCompile(`name="action" value="(\w+)"`).FindStringSubmatch(page)[1]
	formAction := html.UnescapeString(regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindStringSubmatch(page)[1])
	for _, token := range []string{"", "guess", real[:len(real)-1], real + "A"} {
		resp, body := b.postForm(s.base+formAction, url.Values{"csrf": {token}, "action": {action}, "code": {codeAt(t, secret, time.Now())}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("CSRF token %q: %d\n%s", token, resp.StatusCode, body)
		}
	}
	if _, err := st.TOTP(context.Background(), allUsers(t, st)[0].ID); err == nil {
		t.Fatal("a factor was saved through a forged form")
	}
	if resp, _ := b.get(s.base + "/secret"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/.jitauth/mfa") {
		t.Fatalf("after the forged forms: %d to %q, want the MFA page still", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// The second-factor form sent after the session ended (expired, signed
// out in another tab) answers with a page that leads to sign in, not a
// redirect: the page says why the code was not checked.
func TestMFAFormAfterTheSessionEndedShowsAPage(t *testing.T) {
	s := mfaSite(t, siteOptions{})
	b := newBrowser(t)
	resp, body := b.postRaw(s.base+"/.jitauth/mfa?rd=%2Fsecret", url.Values{"csrf": {"stale"}, "action": {"verify"}, "code": {"123456"}})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
		t.Fatalf("the form without a session: %d to %q, want 401 and a page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.Contains(body, "Sign in again") || !strings.Contains(body, `href="/.jitauth/login?rd=%2Fsecret"`) {
		t.Fatalf("the page does not lead to sign in and back:\n%s", body)
	}
}

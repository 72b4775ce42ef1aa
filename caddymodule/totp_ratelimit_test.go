package caddymodule_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// burstSize is how many codes a guesser sends at once in these tests.
const burstSize = 30

// checkTOTPRateLimit is the user's view of the TOTP rate limit on site s
// with store st: one attempt at a time, then a burst on a fresh session.
func checkTOTPRateLimit(t *testing.T, s *site, st provisioner.Store) {
	t.Helper()
	secret, _, _ := s.enrol(alice())
	userID := allUsers(t, st)[0].ID

	b, page := s.signInToMFA(alice())
	for i := 1; i <= 3; i++ {
		resp, body := s.submitCode(b, page, wrongCode(t, secret))
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not right") {
			t.Fatalf("wrong code %d: %d, want 401 (3 are checked)", i, resp.StatusCode)
		}
		page = body
	}
	var retry int
	for i := 4; i <= 5; i++ {
		resp, body := s.submitCode(b, page, wrongCode(t, secret))
		n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusTooManyRequests || err != nil || n < 1 {
			t.Fatalf("wrong code %d at once: %d, Retry-After %q, want 429 with a wait", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		retry, page = n, body
	}
	// While the delay runs, even the right code is refused.
	if resp, _ := s.submitCode(b, page, codeAt(t, secret, time.Now().Add(30*time.Second))); resp.StatusCode != http.StatusTooManyRequests || !s.hasNoUpstreamAccess(b) {
		t.Errorf("right code during the delay: %d, want 429", resp.StatusCode)
	}
	if f := storedTOTP(t, st, userID); f.Failures != 3 {
		t.Errorf("stored count after 3 wrong and 3 refused codes: %d, want 3 (refused attempts are not counted)", f.Failures)
	}
	// After the wait the server asked for, the right code is checked and
	// accepted, and the count starts again.
	time.Sleep(time.Duration(retry) * time.Second)
	if resp, _ := s.submitCode(b, page, codeAt(t, secret, time.Now().Add(30*time.Second))); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/secret" {
		t.Fatalf("right code after the wait: %d at %s, want the upstream", resp.StatusCode, resp.Request.URL)
	}
	if f := storedTOTP(t, st, userID); f.Failures != 0 {
		t.Errorf("stored count after an accepted code: %d, want 0", f.Failures)
	}

	// A burst of wrong codes at once on one pre-MFA session, as a script
	// would send them: at most 3 are checked, the rest are refused.
	b, page = s.signInToMFA(alice())
	checkTOTPBurst(t, b, page, wrongCode(t, secret), []string{s.base})
	if f := storedTOTP(t, st, userID); f.Failures != 3 {
		t.Errorf("stored count after the burst: %d, want 3", f.Failures)
	}
	if !s.hasNoUpstreamAccess(b) {
		t.Error("the burst's session reaches the upstream")
	}
}

func storedTOTP(t *testing.T, st provisioner.Store, userID string) *provisioner.TOTP {
	t.Helper()
	f, err := st.TOTP(t.Context(), userID)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var formActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

// checkTOTPBurst posts burstSize copies of code on the MFA form in page,
// all at once, with b's cookies, spread over the instances at bases, and
// checks that at most 3 were checked (401) and the rest refused (429
// with Retry-After).
func checkTOTPBurst(t *testing.T, b *browser, page, code string, bases []string) {
	t.Helper()
	csrf := csrfRE.FindStringSubmatch(page)
	action := formActionRE.FindStringSubmatch(page)
	if csrf == nil || action == nil || !strings.Contains(page, `value="verify"`) {
		t.Fatalf("no MFA verification form on the page:\n%s", page)
	}
	form := url.Values{"csrf": {html.UnescapeString(csrf[1])}, "action": {"verify"}, "code": {code}}.Encode()
	type answer struct {
		status     int
		retryAfter string
		err        error
	}
	answers := make([]answer, burstSize)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range answers {
		target := bases[i%len(bases)] + html.UnescapeString(action[1])
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, target, strings.NewReader(form))
			if err != nil {
				answers[i].err = err
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			<-start
			resp, err := b.client.Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			resp.Body.Close()
			answers[i] = answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
		})
	}
	close(start)
	wg.Wait()
	checked, refused := 0, 0
	for i, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("code %d: %v", i, a.err)
		case a.status == http.StatusUnauthorized:
			checked++
		case a.status == http.StatusTooManyRequests:
			if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 {
				t.Errorf("code %d: 429 with Retry-After %q", i, a.retryAfter)
			}
			refused++
		default:
			t.Errorf("code %d: %d, want 401 or 429", i, a.status)
		}
	}
	if checked > 3 || checked+refused != burstSize {
		t.Errorf("of %d wrong codes at once, %d were checked (401) and %d refused (429); want at most 3 checked, the rest refused",
			burstSize, checked, refused)
	}
}

// The same user-level checks with the PostgreSQL store.
func TestTOTPWrongCodesAreRateLimitedPostgres(t *testing.T) {
	_, connString := pgSchema(t)
	s := mfaSite(t, siteOptions{store: fmt.Sprintf("store postgres %q", connString)})
	checkTOTPRateLimit(t, s, openPGStore(t, connString))
}

// Two Caddy processes sharing one PostgreSQL store: a burst of wrong
// codes on one pre-MFA session, split across both, gets at most 3 codes
// checked in all, since each instance asks the store, which decides
// under the factor's row lock.
func TestTOTPRateLimitTwoInstancesSharePostgres(t *testing.T) {
	_, connString := pgSchema(t)
	a, b2, _ := twoPGInstances(t, connString, "", withTOTP)
	secret, _, _ := a.enrol(alice())
	st := openPGStore(t, connString)
	userID := allUsers(t, st)[0].ID

	// One pre-MFA session (signed in through A; cookies are per host, not
	// per port, so the same browser holds it for B, as behind a load
	// balancer), its codes sent half to A and half to B.
	b, page := a.signInToMFA(alice())
	checkTOTPBurst(t, b, page, wrongCode(t, secret), []string{a.base, b2.base})
	if f := storedTOTP(t, st, userID); f.Failures != 3 {
		t.Errorf("stored count after the burst across two instances: %d, want 3", f.Failures)
	}
}

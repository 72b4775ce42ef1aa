package caddymodule_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// pendingAt logs alice in through corp up to the consent (or username)
// page and returns the browser, the page and a copy of the pending
// login's cookie, as a script that copied it would hold it.
func (s *site) pendingAt(path string) (*browser, string, string) {
	s.t.Helper()
	b := newBrowser(s.t)
	s.queue(alice())
	resp, page := s.login(b, "corp", path)
	if resp.Request.URL.Path != "/.jitauth/consent" {
		s.t.Fatalf("login ended at %s, want the consent page", resp.Request.URL)
	}
	c := b.cookie(s.base, "jitauth_pending")
	if c == nil {
		s.t.Fatal("no pending login cookie")
	}
	return b, page, c.Value
}

// consentAnswer is one answer to the consent page sent with a given
// pending cookie, from a client that holds no other cookie.
type consentAnswer struct {
	status  int
	body    string
	session bool // a session cookie was set
	err     error
}

// answerWith posts the consent form of page with pending as the only
// cookie; it is safe to call from several goroutines.
func (s *site) answerWith(pending, page, action, username string) consentAnswer {
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		return consentAnswer{err: io.ErrUnexpectedEOF}
	}
	form := url.Values{"csrf": {html.UnescapeString(m[1])}, "action": {action}}
	if username != "" {
		form.Set("username", username)
	}
	req, err := http.NewRequest(http.MethodPost, s.base+"/.jitauth/consent", strings.NewReader(form.Encode()))
	if err != nil {
		return consentAnswer{err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "jitauth_pending", Value: pending})
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return consentAnswer{err: err}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := consentAnswer{status: resp.StatusCode, body: string(body)}
	for _, c := range resp.Cookies() {
		if c.Name == "jitauth_session" && c.Value != "" {
			a.session = true
		}
	}
	return a
}

// wantAlreadyAnswered checks that a is the "already answered" page
// with no session.
func wantAlreadyAnswered(t *testing.T, what string, a consentAnswer) {
	t.Helper()
	if a.err != nil || a.status != http.StatusBadRequest || !strings.Contains(a.body, "already answered") || a.session {
		t.Errorf("%s: %d (session %v, %v), want 400 \"already answered\" and no session:\n%s", what, a.status, a.session, a.err, a.body)
	}
}

// A declined pending login, replayed with Allow (and a username in mode
// username), provisions nothing: no user, no identity, no consent record
// in the SQLite file.
func TestConsentDeclinedLoginNeverProvisions(t *testing.T) {
	for _, mode := range []string{"consent", "username"} {
		t.Run(mode, func(t *testing.T) {
			s := startSiteOpts(t, siteOptions{corpJIT: "mode " + mode})
			st := openStore(t, s.dir)
			b, page, pending := s.pendingAt("/report")
			if resp, body := s.answer(b, page, "decline", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "nothing about you was stored") {
				t.Fatalf("decline: %d\n%s", resp.StatusCode, body)
			}
			for _, name := range []string{"", "alice2"} {
				wantAlreadyAnswered(t, "Allow replayed after Decline", s.answerWith(pending, page, "allow", name))
			}
			wantAlreadyAnswered(t, "Decline replayed", s.answerWith(pending, page, "decline", ""))
			if users := allUsers(t, st); len(users) != 0 {
				t.Fatalf("a declined login provisioned %d users: %+v", len(users), users)
			}
			_, err := st.UserByIdentity(t.Context(), provisioner.IdentityKey{Connection: "corp", Issuer: s.idp.Issuer(), Subject: "alice-sub"})
			if err == nil {
				t.Fatal("the declined identity is linked in the store")
			}
			if s.upstream.hits != 0 {
				t.Errorf("the upstream was reached %d times", s.upstream.hits)
			}
		})
	}
}

// Two Allow posts of one pending login at once (a double click, two
// tabs): one user, one session; the other answer is refused.
func TestConsentConcurrentAllowProvisionsOnce(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode consent"})
	st := openStore(t, s.dir)
	_, page, pending := s.pendingAt("/report")
	const n = 8
	answers := make([]consentAnswer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			<-start
			answers[i] = s.answerWith(pending, page, "allow", "")
		})
	}
	close(start)
	wg.Wait()
	sessions := 0
	for i, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("answer %d: %v", i, a.err)
		case a.session:
			sessions++
			if a.status != http.StatusFound {
				t.Errorf("answer %d set a session with %d, want a redirect", i, a.status)
			}
		default:
			wantAlreadyAnswered(t, "a concurrent Allow", a)
		}
	}
	if sessions != 1 {
		t.Errorf("%d of %d concurrent Allow posts got a session, want 1", sessions, n)
	}
	users := allUsers(t, st)
	if len(users) != 1 || users[0].Consents["corp"].At.IsZero() {
		t.Fatalf("after concurrent Allow posts: %+v, want one user with the consent", users)
	}
	// Provisioned once: no later login was recorded on top of the
	// creation by a losing answer.
	if u := users[0]; u.LastLoginAt.After(u.CreatedAt) || u.UpdatedAt.After(u.CreatedAt) {
		t.Errorf("the user was provisioned more than once: created %v, updated %v, last login %v", u.CreatedAt, u.UpdatedAt, u.LastLoginAt)
	}
}

// A taken username asks again under a fresh pending login: the retry
// with a free name works, also from the same form in a second tab; the
// first pending cookie, and after success the last one, are spent.
func TestConsentUsernameRetryAndReplay(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode username"})
	st := openStore(t, s.dir)
	ctx := t.Context()
	if _, err := st.CreateUser(ctx, &provisioner.User{Username: "carol"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "legacy", Issuer: "legacy", Subject: "carol"}}); err != nil {
		t.Fatal(err)
	}
	b, page, first := s.pendingAt("/report")
	secondTab := page // the same form, opened in another tab

	resp, body := s.answer(b, page, "allow", "carol")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "taken") || !strings.Contains(body, `name="username"`) {
		t.Fatalf("taken username: %d\n%s", resp.StatusCode, body)
	}
	c := b.cookie(s.base, "jitauth_pending")
	if c == nil || c.Value == first {
		t.Fatal("a refused username did not issue a fresh pending login")
	}
	// The first cookie is spent: a replay with a free name is refused.
	wantAlreadyAnswered(t, "first pending cookie after a taken username", s.answerWith(first, page, "allow", "mallory"))
	if _, err := st.UserByUsername(ctx, "mallory"); err == nil {
		t.Fatal("the spent pending login provisioned mallory")
	}

	// The retry, from the second tab's copy of the form: the browser now
	// holds the fresh cookie, and the form's token still matches.
	resp, _ = s.answer(b, secondTab, "allow", "alice.l")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/report" {
		t.Fatalf("free username after a taken one: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	last := c.Value
	before, err := st.UserByUsername(ctx, "alice.l")
	if err != nil {
		t.Fatal(err)
	}

	// After the success, neither pending cookie answers again, and the
	// store is left as it was.
	wantAlreadyAnswered(t, "first pending cookie after success", s.answerWith(first, page, "allow", "alice2"))
	wantAlreadyAnswered(t, "last pending cookie after success", s.answerWith(last, page, "allow", "alice3"))
	users := allUsers(t, st)
	if len(users) != 2 {
		t.Fatalf("%d users, want carol and alice.l: %+v", len(users), users)
	}
	after, err := st.UserByUsername(ctx, "alice.l")
	if err != nil || !after.LastLoginAt.Equal(before.LastLoginAt) || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("a replayed answer changed the user: %+v, was %+v (%v)", after, before, err)
	}
}

// Replaying the pending cookie of a login already allowed is refused
// and changes nothing in the store (no new login recorded, no consent
// rewritten).
func TestConsentReplayAfterAllowChangesNothing(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode consent"})
	st := openStore(t, s.dir)
	b, page, pending := s.pendingAt("/report")
	if resp, _ := s.answer(b, page, "allow", ""); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/report" {
		t.Fatalf("allow: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	users := allUsers(t, st)
	if len(users) != 1 {
		t.Fatalf("%d users after allow", len(users))
	}
	before := users[0]
	for _, action := range []string{"allow", "decline"} {
		wantAlreadyAnswered(t, action+" replayed after Allow", s.answerWith(pending, page, action, ""))
	}
	after := allUsers(t, st)
	if len(after) != 1 || !after[0].LastLoginAt.Equal(before.LastLoginAt) || !after[0].UpdatedAt.Equal(before.UpdatedAt) ||
		!after[0].Consents["corp"].At.Equal(before.Consents["corp"].At) {
		t.Errorf("a replayed answer changed the store: %+v, was %+v", after, before)
	}
}

// Every refused username spends one pending login and issues another;
// one provider login gets a bounded number of them (each takes a place
// in the replay set), then must start again.
func TestConsentRetriesAreBounded(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpJIT: "mode username"})
	st := openStore(t, s.dir)
	b, page, _ := s.pendingAt("/")
	for i := 1; ; i++ {
		resp, body := s.answer(b, page, "allow", "admin")
		if strings.Contains(body, "Too many tries") {
			if i != 11 || resp.StatusCode != http.StatusBadRequest || b.cookie(s.base, "jitauth_pending") != nil {
				t.Fatalf("refused after %d answers with %d (pending cookie kept: %v), want after 10 retries, 400, cookie cleared",
					i, resp.StatusCode, b.cookie(s.base, "jitauth_pending") != nil)
			}
			break
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not allowed") || i > 11 {
			t.Fatalf("answer %d: %d\n%s", i, resp.StatusCode, body)
		}
		page = body
	}
	if resp, _ := s.answer(b, page, "allow", "alice.l"); resp.StatusCode != http.StatusBadRequest || s.hasSession(b) {
		t.Errorf("an answer after the last retry: %d, session %v", resp.StatusCode, s.hasSession(b))
	}
	if users := allUsers(t, st); len(users) != 0 {
		t.Errorf("%d users, want none", len(users))
	}
}

package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// grafanaExploreURL is a deep link of the kind dashboards and query
// tools put their whole state in (Grafana's Explore, Prometheus' graph
// page, a saved search): a JSON document in the query, percent-encoded
// as a browser sends it, with one PromQL query per job.
func grafanaExploreURL(jobs ...string) string {
	type query struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	}
	var qs []query
	for i, job := range jobs {
		qs = append(qs, query{
			RefID: string(rune('A' + i%26)),
			Expr:  fmt.Sprintf(`histogram_quantile(0.99,sum(rate(http_server_request_duration_seconds_bucket{job="%s",namespace="production",status_code!~"5.."}[5m]))by(le,route))`, job),
		})
	}
	left, _ := json.Marshal(map[string]any{
		"datasource": "prometheus-production-eu-west-1",
		"queries":    qs,
		"range":      map[string]string{"from": "now-6h", "to": "now"},
	})
	return "/explore?orgId=1&left=" + url.QueryEscape(string(left))
}

var sevenJobs = []string{"api-gateway", "billing-service", "checkout-frontend", "inventory-worker", "search-indexer", "notification-sender", "payments-ledger"}

// nearlyEightKiB is a deep link just under the 8 KiB a return URL may
// have: 28 queries.
func nearlyEightKiB(t *testing.T) string {
	t.Helper()
	var jobs []string
	for i := range 4 {
		for _, j := range sevenJobs {
			jobs = append(jobs, fmt.Sprintf("%s-%d", j, i))
		}
	}
	deep := grafanaExploreURL(jobs...)
	if n := len(deep); n <= 7<<10 || n > 8<<10 {
		t.Fatalf("the deep link is %d bytes; want one just under 8 KiB", n)
	}
	return deep
}

// A deep link of a little over 2 KiB (a colleague's Grafana Explore
// link with seven queries), opened in a browser that is not signed in
// yet, comes back after signing in, as the README promises: it used to
// be dropped for being over 2,048 bytes, and the user landed on "/".
func TestLongDeepLinkComesBackAfterSignIn(t *testing.T) {
	// One connection: a page without a session goes straight to it.
	s := startSiteWith(t, "connections corp")
	b := newBrowser(t)
	deep := grafanaExploreURL(sevenJobs...)
	if n := len(deep); n <= 2048 || n > 3072 {
		t.Fatalf("the deep link is %d bytes; this test wants one a little over 2 KiB", n)
	}
	// Sanity: a short link of the same kind does come back, so what
	// follows is about the length alone.
	s.queue(alice())
	resp, _, visited := b.follow(s.base+"/explore?orgId=1&left=%7B%7D", nil)
	if got := resp.Request.URL.RequestURI(); resp.StatusCode != http.StatusOK || got != "/explore?orgId=1&left=%7B%7D" {
		t.Fatalf("a short deep link: landed on %q with %d (visited %v)", got, resp.StatusCode, visited)
	}

	b = newBrowser(t)
	s.queue(alice())
	resp, _, visited = b.follow(s.base+deep, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("signing in from a %d-byte deep link ended with %d (visited %d URLs)", len(deep), resp.StatusCode, len(visited))
	}
	if got := resp.Request.URL.RequestURI(); got != deep {
		shown := got
		if len(shown) > 80 {
			shown = shown[:80] + "…"
		}
		start := ""
		if len(visited) > 1 {
			start = visited[1]
			if len(start) > 120 {
				start = start[:120] + "…"
			}
		}
		t.Errorf("after signing in from a %d-byte deep link the browser landed on %q (%d bytes), not on the URL it asked for; the sign-in started at %s",
			len(deep), shown, len(got), start)
	}
	if !strings.Contains(s.upstream.lastHeaders(t).Get("Remote-User"), "alice") {
		t.Errorf("the upstream did not see alice")
	}
}

// shortURI is u's path and query for a message, cut to 80 bytes.
func shortURI(u *url.URL) string {
	s := u.RequestURI()
	if len(s) > 80 {
		s = s[:80] + fmt.Sprintf("… (%d bytes)", len(s))
	}
	return s
}

// checkCookieSizes fails when b was sent a cookie a browser would not
// keep: over 4,096 bytes of name and value.
func checkCookieSizes(t *testing.T, b *browser) {
	t.Helper()
	for _, c := range b.setCookies {
		if n := len(c.Name) + len(c.Value); n > 4096 {
			t.Errorf("cookie %s is %d bytes; browsers keep at most 4,096", c.Name, n)
		}
	}
}

// A deep link just under 8 KiB comes back through every step that
// carries the page asked for: the consent page (the pending login's
// cookie), the second factor (its rd, at enrolment and at each later
// sign-in), the sign-out page's form, and the sign-in link of a form
// sent after the session ended (its Referer).
func TestLongDeepLinkComesBackThroughEveryStep(t *testing.T) {
	deep := nearlyEightKiB(t)

	t.Run("consent", func(t *testing.T) {
		s := startSiteOpts(t, siteOptions{handlerBlock: "connections corp", corpJIT: "mode consent"})
		b := newBrowser(t)
		s.queue(alice())
		resp, page, _ := b.follow(s.base+deep, nil)
		if resp.Request.URL.Path != "/.jitauth/consent" {
			t.Fatalf("the sign-in ended at %s with %d, want the consent page", shortURI(resp.Request.URL), resp.StatusCode)
		}
		resp, _ = s.answer(b, page, "allow", "")
		if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != deep {
			t.Errorf("after consenting: %d at %s, want the deep link", resp.StatusCode, shortURI(resp.Request.URL))
		}
		checkCookieSizes(t, b)
	})

	t.Run("second factor", func(t *testing.T) {
		s := mfaSite(t, siteOptions{})
		b := newBrowser(t)
		s.queue(alice())
		resp, page := s.login(b, "corp", deep)
		if resp.Request.URL.Path != "/.jitauth/mfa" || resp.Request.URL.Query().Get("rd") != deep {
			t.Fatalf("the sign-in ended at %s, want the MFA page going on to the deep link", shortURI(resp.Request.URL))
		}
		secret := secretRE.FindStringSubmatch(page)
		if secret == nil {
			t.Fatalf("no enrolment on the MFA page:\n%s", page)
		}
		_, page = s.submitCode(b, page, codeAt(t, secret[1], time.Now()))
		cont := regexp.MustCompile(`<a class="button" href="([^"]+)">Continue</a>`).FindStringSubmatch(page)
		if cont == nil || html.UnescapeString(cont[1]) != deep {
			t.Fatalf("the recovery codes page does not continue to the deep link:\n%.600s", page)
		}
		// A later sign-in asks for the code, then goes on.
		b = newBrowser(t)
		s.queue(alice())
		resp, page = s.login(b, "corp", deep)
		if resp.Request.URL.Path != "/.jitauth/mfa" {
			t.Fatalf("the second sign-in ended at %s, want the MFA page", shortURI(resp.Request.URL))
		}
		resp, _ = s.submitCode(b, page, codeAt(t, secret[1], time.Now().Add(30*time.Second)))
		if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != deep {
			t.Errorf("after the code: %d at %s, want the deep link", resp.StatusCode, shortURI(resp.Request.URL))
		}
	})

	t.Run("sign-out, and a form sent after the session ended", func(t *testing.T) {
		s := startSiteWith(t, "connections corp")
		b := newBrowser(t)
		s.queue(alice())
		if resp, _ := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
		resp, _ := b.logout(s.base, deep)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != deep {
			t.Errorf("signing out with a deep rd: %d to %.80q, want 303 to the deep link", resp.StatusCode, resp.Header.Get("Location"))
		}
		if s.hasSession(b) {
			t.Error("still signed in after signing out")
		}

		// Browsers send at most 4,096 bytes of Referer.
		ref := deep[:strings.LastIndex(deep[:4000], "%")]
		resp = newBrowser(t).do(http.MethodPost, s.base+"/notes", http.Header{
			"Sec-Fetch-Mode": {"navigate"}, "Referer": {s.base + ref},
			"Content-Type": {"application/x-www-form-urlencoded"},
		})
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		link := regexp.MustCompile(`<a class="button" href="([^"]+)">Sign in</a>`).FindStringSubmatch(string(body))
		if resp.StatusCode != http.StatusUnauthorized || link == nil {
			t.Fatalf("a form sent without a session: %d, want 401 with a sign-in link:\n%s", resp.StatusCode, body)
		}
		if u, err := url.Parse(html.UnescapeString(link[1])); err != nil || u.Query().Get("rd") != ref {
			t.Errorf("the sign-in link does not come back to the %d-byte page the form was on: %.120q", len(ref), link[1])
		}
	})
}

// A return path that does not compress (8 KiB of random characters)
// cannot ride in the sealed flow cookie, which browsers keep only up to
// 4 KiB: the sign-in still goes on, comes back to "/", and the log says
// why, never a 500 or a cookie a browser would drop.
func TestUncompressibleReturnPathFallsBackToRoot(t *testing.T) {
	s := startSiteOpts(t, siteOptions{handlerBlock: "connections corp", auditLog: true})
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
	rng := rand.New(rand.NewSource(1))
	var sb strings.Builder
	sb.WriteString("/x?t=")
	for sb.Len() < 8<<10 {
		sb.WriteByte(alphabet[rng.Intn(len(alphabet))])
	}
	random := sb.String()
	b := newBrowser(t)
	s.queue(alice())
	resp, _, visited := b.follow(s.base+random, nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/" {
		t.Fatalf("signing in from an uncompressible %d-byte link: %d at %s (%d hops), want / after signing in",
			len(random), resp.StatusCode, shortURI(resp.Request.URL), len(visited))
	}
	checkCookieSizes(t, b)
	log := mustReadFile(t, s.logFile())
	if !strings.Contains(log, "too long to carry through the sign-in") || !strings.Contains(log, `"return_url_bytes":8192`) {
		t.Errorf("the log does not say why the sign-in came back to /:\n%s", log)
	}
	if strings.Contains(log, random[5:40]) {
		t.Error("the log holds the return URL, which may carry tokens")
	}
}

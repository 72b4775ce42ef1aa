package caddymodule_test

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sameSiteClient is a browser that honours SameSite (Go's cookie jar does
// not): a cross-site POST carries only the SameSite=None cookies, as
// every current browser sends it. It talks to Caddy over plain HTTP from
// a trusted proxy that says the browser came over HTTPS, so the module
// sets its cookies exactly as on a public HTTPS site (__Host- names,
// Secure, the flow cookie of a CrossSitePoster SameSite=None).
type sameSiteClient struct {
	t       *testing.T
	base    string
	cookies map[string]*http.Cookie
	client  *http.Client
	// sameSiteAnswer makes signIn post the provider's answer as a
	// same-site form (a provider on a sibling host of the site): the
	// browser then sends the SameSite=Lax session cookie with it.
	sameSiteAnswer bool
}

func (c *sameSiteClient) send(method, rawURL string, form url.Values, crossSite bool) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, strings.Replace(rawURL, "https://", "http://", 1), body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	req.Header.Set("X-Forwarded-Proto", "https")
	if strings.HasPrefix(req.URL.String(), c.base) {
		if crossSite {
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		for _, ck := range c.cookies {
			if crossSite && method == http.MethodPost && ck.SameSite != http.SameSiteNoneMode {
				continue // a Lax cookie stays home on a cross-site POST
			}
			req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if strings.HasPrefix(req.URL.String(), c.base) {
		for _, ck := range resp.Cookies() {
			if ck.MaxAge < 0 {
				delete(c.cookies, ck.Name)
			} else {
				c.cookies[ck.Name] = ck
			}
		}
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// signIn starts a sign-in (the site's sign-in link) to the provider, and posts the
// provider's form back cross-site, as its page does in a browser.
func (c *sameSiteClient) signIn(p *formPostProvider, sub string) (*http.Response, string) {
	c.t.Helper()
	p.mu.Lock()
	p.sub = sub
	p.mu.Unlock()
	cur := c.base + "/.jitauth/start/partner?rd=%2Fsecret"
	for i := 0; i < 5; i++ {
		resp, page := c.send(http.MethodGet, cur, nil, false)
		if resp.StatusCode == http.StatusOK && strings.HasPrefix(cur, p.URL) {
			action := html.UnescapeString(regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page)[1])
			v := url.Values{}
			for _, m := range formFieldRE.FindAllStringSubmatch(page, -1) {
				v.Set(m[1], html.UnescapeString(m[2]))
			}
			return c.send(http.MethodPost, action, v, !c.sameSiteAnswer)
		}
		loc, err := resp.Location()
		if err != nil {
			c.t.Fatalf("no redirect from %s: %d %s", cur, resp.StatusCode, page)
		}
		cur = loc.String()
	}
	c.t.Fatal("the provider's page was never reached")
	return nil, ""
}

// A sign-in that ends without a session ends the session of another
// identity the browser holds (S16), also when the provider answers with
// a cross-site form POST (connector.CrossSitePoster: SAML's POST binding,
// OIDC form_post), which the browser sends without the SameSite=Lax
// session cookie: the previous person must not stay signed in behind
// the "this site does not admit your account" page.
func TestRefusedCrossSitePostSignInEndsThePreviousSession(t *testing.T) {
	provider, base, c := startFormPostSite(t, false)
	if resp, body := c.signIn(provider, "carol"); resp.StatusCode != http.StatusFound {
		t.Fatalf("carol's sign-in: %d %s", resp.StatusCode, body)
	}
	if ck := c.cookies["__Host-jitauth_session"]; ck == nil || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("carol has no SameSite=Lax session cookie: %+v", ck)
	}
	if resp, body := c.send(http.MethodGet, base+"/secret", nil, false); resp.StatusCode != http.StatusOK || !strings.Contains(body, "carol@partner.example") {
		t.Fatalf("carol is not signed in: %d %q", resp.StatusCode, body)
	}

	// Mallory sits down at the same browser and signs in; the site does
	// not admit her.
	resp, body := c.signIn(provider, "mallory")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "does not admit") {
		t.Fatalf("mallory's sign-in: %d %s", resp.StatusCode, body)
	}
	if resp, body := c.send(http.MethodGet, base+"/secret", nil, false); resp.StatusCode == http.StatusOK {
		t.Errorf("after a sign-in the site refused (cross-site POST callback), the browser still reaches the upstream as the previous user: %q", body)
	}
}

// startFormPostSite starts a site behind a trusted proxy that says the
// browser came over HTTPS, whose one connection, partner, is the
// cross-site form POST connector (formPost) with JIT, and which admits
// only carol. With faultyStore the store is test_failing (storeDown).
func startFormPostSite(t *testing.T, faultyStore bool) (*formPostProvider, string, *sameSiteClient) {
	t.Helper()
	dir := t.TempDir()
	provider := newFormPostProvider(t, "provider-key")
	up := newUpstream(t)
	base := fmt.Sprintf("http://localhost:%d", freePort(t))
	conn := fmt.Sprintf("\t\tconnection partner {\n\t\t\tformpost %s provider-key\n\t\t\tjit\n\t\t}", provider.URL)
	cfg := fmt.Sprintf("{\n\tservers {\n\t\ttrusted_proxies static 127.0.0.1/8\n\t}%s\n}\n%s {\n\tjit_auth {\n\t\tallow email carol@partner.example\n\t}\n\treverse_proxy %s\n}\n",
		globalOptions(dir, conn), base, up.hostPort())
	if faultyStore {
		runCaddyJSON(t, adaptCaddyfile(t, cfg, `"backend":"sqlite"`, `"backend":"test_failing"`))
	} else {
		runCaddyfile(t, cfg)
	}
	return provider, base, &sameSiteClient{t: t, base: base, cookies: map[string]*http.Cookie{}, client: &http.Client{
		Timeout:       20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// A sign-in through a form POST connector that fails for a passing
// reason (here the user store is down) does not sign out the person
// whose session the browser sent with the answer: only a session the
// browser may hold but did not send (a cross-site POST leaves the
// SameSite=Lax cookie home) is ended blind. A provider that answers
// same-site (a sibling host) sends the session cookie along, and
// carol's second sign-in failing must leave her signed in.
func TestFailedSameSitePostSignInKeepsTheSessionItCarries(t *testing.T) {
	provider, base, c := startFormPostSite(t, true)
	defer storeDown.Store(false)
	c.sameSiteAnswer = true
	if resp, body := c.signIn(provider, "carol"); resp.StatusCode != http.StatusFound {
		t.Fatalf("carol's sign-in: %d %s", resp.StatusCode, body)
	}
	if c.cookies["__Host-jitauth_session"] == nil {
		t.Fatal("carol has no session cookie")
	}

	storeDown.Store(true)
	resp, body := c.signIn(provider, "carol")
	storeDown.Store(false)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("carol's second sign-in with the store down: %d %s", resp.StatusCode, body)
	}
	for _, ck := range resp.Cookies() {
		if strings.HasPrefix(ck.Name, "__Host-jitauth_session") && ck.MaxAge < 0 {
			t.Errorf("the failed sign-in deleted %s, though the browser sent carol's own session with the answer", ck.Name)
		}
	}
	if resp, body := c.send(http.MethodGet, base+"/secret", nil, false); resp.StatusCode != http.StatusOK || !strings.Contains(body, "carol@partner.example") {
		t.Errorf("carol is signed out after her second sign-in failed for a passing reason: %d %q", resp.StatusCode, body)
	}
}

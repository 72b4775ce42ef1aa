package devidp

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/html"
)

// Login drives the provider's HTML login form the way a browser would.
//
// loginPageURL is the URL of its login page, where the authorization
// endpoint redirected to (an authorization URL works too: redirects within
// the provider are followed). Login GETs it with c, fills in username and
// password, submits the form and follows redirects as long as they stay on
// the provider's origin (scheme://host:port of loginPageURL). It returns the
// first response whose Location leaves that origin, unread and with its
// body open: normally the 302 to the relying party's redirect URI carrying
// code and state (or error). c's cookie jar, if any, is used; c's own
// CheckRedirect is not.
//
// It fails if the form is not found, the provider rejects the credentials,
// or the flow ends on the provider without redirecting elsewhere.
func Login(c *http.Client, loginPageURL, username, password string) (*http.Response, error) {
	start, err := url.Parse(loginPageURL)
	if err != nil {
		return nil, fmt.Errorf("devidp login: %w", err)
	}
	if !start.IsAbs() {
		return nil, fmt.Errorf("devidp login: %q is not an absolute URL", loginPageURL)
	}
	origin := start.Scheme + "://" + start.Host

	if c == nil {
		c = http.DefaultClient
	}
	cc := *c
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme+"://"+req.URL.Host != origin {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}

	resp, err := cc.Get(loginPageURL)
	if err != nil {
		return nil, fmt.Errorf("devidp login: %w", err)
	}
	if left(resp, origin) {
		// No login form: e.g. the provider redirected an error back.
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("devidp login: reading login page: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("devidp login: GET %s: %s: %s", resp.Request.URL, resp.Status, snippet(body))
	}
	action, values, err := parseLoginForm(body)
	if err != nil {
		return nil, fmt.Errorf("devidp login: %s: %w", resp.Request.URL, err)
	}
	values.Set("username", username)
	values.Set("password", password)
	target, err := resp.Request.URL.Parse(action)
	if err != nil {
		return nil, fmt.Errorf("devidp login: form action: %w", err)
	}

	resp, err = cc.PostForm(target.String(), values)
	if err != nil {
		return nil, fmt.Errorf("devidp login: %w", err)
	}
	if left(resp, origin) {
		return resp, nil
	}
	body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("devidp login: credentials of %q rejected", username)
	}
	return nil, fmt.Errorf("devidp login: flow ended at the provider: %s %s: %s", resp.Status, resp.Request.URL, snippet(body))
}

// left reports whether resp is a redirect away from origin.
func left(resp *http.Response, origin string) bool {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return false
	}
	loc, err := resp.Location()
	return err == nil && loc.Scheme+"://"+loc.Host != origin
}

// parseLoginForm finds the form with a password field and returns its
// action and the values of its named inputs.
func parseLoginForm(page []byte) (action string, values url.Values, err error) {
	doc, err := html.Parse(strings.NewReader(string(page)))
	if err != nil {
		return "", nil, err
	}
	var found bool
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if found {
			return
		}
		if n.Type == html.ElementNode && n.Data == "form" {
			vals := url.Values{}
			hasPassword := false
			var collect func(*html.Node)
			collect = func(m *html.Node) {
				if m.Type == html.ElementNode && m.Data == "input" {
					name, typ, val := attr(m, "name"), attr(m, "type"), attr(m, "value")
					if typ == "password" {
						hasPassword = true
					}
					if name != "" && typ != "submit" {
						vals.Set(name, val)
					}
				}
				for ch := m.FirstChild; ch != nil; ch = ch.NextSibling {
					collect(ch)
				}
			}
			collect(n)
			if hasPassword {
				found, action, values = true, attr(n, "action"), vals
				return
			}
		}
		for ch := n.FirstChild; ch != nil; ch = ch.NextSibling {
			walk(ch)
		}
	}
	walk(doc)
	if !found {
		return "", nil, errors.New("no login form on the page")
	}
	return action, values, nil
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

package caddymodule

import (
	"fmt"
	"net/http"
	"net/mail"
	"strings"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// AllowRule admits users who match every field it sets. An application
// with allow rules admits a user when any rule matches; with none, every
// user who logs in through one of its connections.
type AllowRule struct {
	// EmailDomains admits verified email addresses in exactly these
	// domains (up to ASCII letter case; sub-domains are not included).
	EmailDomains []string `json:"email_domains,omitempty"`
	// Emails admits exactly these verified email addresses (up to ASCII
	// letter case).
	Emails []string `json:"emails,omitempty"`
	// Groups admits users the provider placed in any of these groups
	// (exact match).
	Groups []string `json:"groups,omitempty"`
	// Roles admits local users holding any of these local roles (exact
	// match); users of connections with JIT off hold none.
	Roles []string `json:"roles,omitempty"`
	// Connections admits users who logged in through any of these
	// connections.
	Connections []string `json:"connections,omitempty"`
}

// validate checks and normalises a rule.
func (r *AllowRule) validate() error {
	if len(r.EmailDomains)+len(r.Emails)+len(r.Groups)+len(r.Roles)+len(r.Connections) == 0 {
		return fmt.Errorf("an allow rule needs email_domain, email, group, role or connection")
	}
	for _, list := range [][]string{r.EmailDomains, r.Emails, r.Groups, r.Roles, r.Connections} {
		for _, v := range list {
			if p := runtimePlaceholder(v); p != "" {
				return fmt.Errorf("allow: %s is not resolved here, and the rule would compare its text; write the value, or {$NAME} to take it from the environment when the Caddyfile is read", p)
			}
		}
	}
	for i, d := range r.EmailDomains {
		d = lowerASCIIString(strings.TrimSpace(d))
		if d == "" || strings.ContainsAny(d, "@ \t/\\") || !strings.Contains(d, ".") && d != "localhost" {
			return fmt.Errorf("allow email_domain %q is not a domain name (write example.com, not @example.com or a URL)", r.EmailDomains[i])
		}
		r.EmailDomains[i] = d
	}
	for i, e := range r.Emails {
		local, domain, ok := splitEmail(e)
		if !ok {
			return fmt.Errorf("allow email %q is not a plain email address", e)
		}
		r.Emails[i] = local + "@" + domain
	}
	for _, g := range r.Groups {
		if err := provisioner.CheckGroupName(g); err != nil {
			return fmt.Errorf("allow group: %v; provider groups with commas or control characters are dropped, so this rule could never match", err)
		}
	}
	return nil
}

// matches reports whether the session's user satisfies every field set.
func (r *AllowRule) matches(s *Session) bool {
	if len(r.EmailDomains) > 0 || len(r.Emails) > 0 {
		local, domain, ok := splitEmail(s.Email)
		if !ok || !s.EmailVerified {
			return false
		}
		if len(r.EmailDomains) > 0 && !contains(r.EmailDomains, domain) {
			return false
		}
		if len(r.Emails) > 0 && !contains(r.Emails, local+"@"+domain) {
			return false
		}
	}
	if len(r.Groups) > 0 && !containsAny(r.Groups, s.Groups) {
		return false
	}
	if len(r.Roles) > 0 && !containsAny(r.Roles, s.Roles) {
		return false
	}
	if len(r.Connections) > 0 && !contains(r.Connections, s.Connection) {
		return false
	}
	return true
}

// splitEmail parses a bare address strictly (S10): exactly one "@", no
// display name, comments, quoting or angle brackets, so "a@evil@corp.com"
// and `"x@corp.com"@evil.com` are not addresses at corp.com. The result
// has its ASCII letters in lower case and nothing else folded: a Kelvin
// sign is not a "k", so "\u212Aate@corp.com" is another mailbox than
// kate@corp.com, as linking by email holds too (provisioner).
func splitEmail(addr string) (local, domain string, ok bool) {
	if addr == "" || len(addr) > 254 || strings.Count(addr, "@") != 1 || strings.ContainsAny(addr, " \t\r\n<>()\",;:\\[]") {
		return "", "", false
	}
	parsed, err := mail.ParseAddress(addr)
	if err != nil || parsed.Name != "" || parsed.Address != addr {
		return "", "", false
	}
	local, domain, _ = strings.Cut(lowerASCIIString(addr), "@")
	if local == "" || domain == "" || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", "", false
	}
	return local, domain, true
}

// lowerASCIIString lower-cases the ASCII letters of s and nothing else.
func lowerASCIIString(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	return string(b)
}

func contains(list []string, v string) bool {
	for _, e := range list {
		if e == v {
			return true
		}
	}
	return false
}

func containsAny(list, vs []string) bool {
	for _, v := range vs {
		if contains(list, v) {
			return true
		}
	}
	return false
}

// admits reports whether the application admits the session's user.
func (h *Handler) admits(s *Session) bool {
	if len(h.Allow) == 0 {
		return true
	}
	for i := range h.Allow {
		if h.Allow[i].matches(s) {
			return true
		}
	}
	return false
}

// renderNotAdmitted answers a signed-in user whom the application's
// allow rules refuse, on its pages and its second-factor page alike.
func renderNotAdmitted(w http.ResponseWriter) {
	renderError(w, http.StatusForbidden, "Access denied", "Your account is signed in, but this site does not admit it.", "")
}

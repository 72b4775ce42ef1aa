package caddymodule

import (
	"io"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Default identity headers and the session field each carries.
var defaultHeaders = []headerSpec{
	{name: "Remote-User", field: fieldUsername},
	{name: "Remote-Email", field: fieldEmail},
	{name: "Remote-Name", field: fieldName},
	{name: "Remote-Groups", field: fieldGroups},
}

// sessionField selects what a default header carries; a custom header
// carries a placeholder template instead.
type sessionField int

const (
	fieldTemplate sessionField = iota
	fieldUsername
	fieldEmail
	fieldName
	fieldGroups
)

// headerSpec is one identity header sent upstream.
type headerSpec struct {
	name     string // canonical header name
	field    sessionField
	template string // for fieldTemplate
}

// headerKey folds a header name for comparison: lower case, with "_"
// and "." read as "-". Servers and frameworks that map headers to
// variables (CGI, PHP, Django, Rack) treat Remote_User, Remote.User and
// Remote-User alike, so a client copy under any spelling must go (S1).
// (Caddy drops "_" and "." spellings itself unless a server's
// expected_underscore_headers or expected_dot_headers lets them in.)
func headerKey(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + ('a' - 'A')
		case c == '_' || c == '.':
			b[i] = '-'
		}
	}
	return string(b)
}

// sameHeaderKey compares a header name with a folded key without
// allocating; it is on the hot path.
func sameHeaderKey(name, key string) bool {
	if len(name) != len(key) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_' || c == '.':
			c = '-'
		}
		if c != key[i] {
			return false
		}
	}
	return true
}

// stripIdentityHeaders deletes every client-supplied copy of the
// identity headers, under any case or "_"/"-" spelling, and reports
// whether h has a Connection field (which stripConnectionTokens reads),
// so that a request without one is not looked up again.
func stripIdentityHeaders(h http.Header, keys []string) (connection bool) {
	for name := range h {
		if isIdentityKey(name, keys) {
			delete(h, name)
		} else if name == "Connection" {
			connection = true
		}
	}
	return connection
}

// mergeKeys returns the sorted union of two sorted key lists.
func mergeKeys(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// Request variables that carry what one jit_auth handler did to a
// request on to the later ones in the same chain (see cleanRequest).
const (
	varCleaned     = "jit_auth.cleaned"
	varHeldCookies = "jit_auth.held_cookies"
)

// cleanedBySite is varCleaned's value after a siteCleaner; a jit_auth
// handler sets true.
const cleanedBySite = "site"

// cleanRequest runs first, on every request. The first jit_auth handler
// a request meets removes the client's copies of the identity headers of
// every jit_auth handler of the configuration: from the headers, from
// the Connection header's list of hop-by-hop names, and from trailers.
// Later handlers of the same request leave the headers alone, since they
// may carry what an earlier handler set; they only put back the module's
// cookies that an earlier handler withheld from the next handler (see
// passOn), so that they can read the session.
//
// With a single jit_auth handler in the request's server (App.alone),
// the common case, there is no later handler to tell, and nothing is
// recorded.
func (h *Handler) cleanRequest(r *http.Request) {
	ctx := r.Context()
	if !h.app.alone(h.peers) {
		if cleaned := caddyhttp.GetVar(ctx, varCleaned); cleaned != nil {
			if held, ok := caddyhttp.GetVar(ctx, varHeldCookies).(*heldCookies); ok && held.line != "" {
				r.Header["Cookie"] = append(r.Header["Cookie"], held.line)
				held.line = ""
			}
			// After a siteCleaner alone, this is still the first jit_auth
			// handler: no identity is set yet, and whatever a handler in
			// between added to the identity headers goes too.
			if cleaned != cleanedBySite {
				return
			}
		}
	}
	keys := h.app.identityKeys
	if keys == nil { // a handler not provisioned by Caddy
		keys = h.stripKeys
	}
	stripRequest(r, keys)
	if !h.app.alone(h.peers) {
		caddyhttp.SetVar(ctx, varCleaned, true)
	}
}

// stripRequest removes the client's copies of the identity headers named
// by keys: from the headers, from the Connection header's list, and from
// trailers.
func stripRequest(r *http.Request, keys []string) {
	if stripIdentityHeaders(r.Header, keys) {
		stripConnectionTokens(r.Header, keys)
	}
	if r.Trailer != nil {
		// A client that announces trailers gets a Trailer map, and
		// net/http adds every trailer field it then sends to it when the
		// body ends, announced or not; reverse_proxy forwards them.
		stripIdentityHeaders(r.Trailer, keys)
		if r.Body != nil {
			r.Body = &trailerGuard{ReadCloser: r.Body, trailer: r.Trailer, keys: keys}
		}
	}
}

// stripConnectionTokens removes identity header names from the
// Connection header. A proxy deletes the headers a client names there
// (RFC 9110, section 7.6.1), as reverse_proxy does, so
// "Connection: Remote-User" would take the module's own Remote-User off
// the forwarded request.
func stripConnectionTokens(h http.Header, keys []string) {
	lines := h["Connection"]
	kept := lines[:0]
	changed := false
	for _, line := range lines {
		if !hasIdentityToken(line, keys) {
			kept = append(kept, line)
			continue
		}
		changed = true
		var b strings.Builder
		for tok := range strings.SplitSeq(line, ",") {
			if t := textproto.TrimString(tok); t != "" && !isIdentityKey(t, keys) {
				if b.Len() > 0 {
					b.WriteString(", ")
				}
				b.WriteString(t)
			}
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	switch {
	case !changed:
	case len(kept) == 0:
		delete(h, "Connection")
	default:
		h["Connection"] = kept
	}
}

// hasIdentityToken reports whether a comma-separated list names an
// identity header; it does not allocate.
func hasIdentityToken(line string, keys []string) bool {
	for tok := range strings.SplitSeq(line, ",") {
		if isIdentityKey(textproto.TrimString(tok), keys) {
			return true
		}
	}
	return false
}

func isIdentityKey(name string, keys []string) bool {
	for _, k := range keys {
		if sameHeaderKey(name, k) {
			return true
		}
	}
	return false
}

// trailerGuard removes identity fields from a request's trailers once
// the body has been read to its end, which is when net/http fills them
// in, and before reverse_proxy copies them for the upstream.
type trailerGuard struct {
	io.ReadCloser
	trailer http.Header
	keys    []string
}

func (g *trailerGuard) Read(p []byte) (int, error) {
	n, err := g.ReadCloser.Read(p)
	if err == io.EOF {
		stripIdentityHeaders(g.trailer, g.keys)
	}
	return n, err
}

// headerValue cleans a value for use in a header: a provider's name or
// email could carry CR, LF or other controls, which would make the
// upstream request invalid or split it.
func headerValue(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return strings.Map(func(r rune) rune {
				if r < ' ' || r == 0x7f {
					return ' '
				}
				return r
			}, s)
		}
	}
	return s
}

// setIdentity sets the identity headers (delete-then-set: an empty value
// still replaces whatever was there) and the {http.auth.user.*}
// placeholders for s.
func (h *Handler) setIdentity(r *http.Request, repl *caddy.Replacer, s *Session) {
	id := s.identity
	if id == nil { // a session not from the cache: a bearer token's, or one whose profile changed
		id = newForwardedIdentity(s)
	}
	// Values an earlier handler set would shadow the provider, which
	// answers after the replacer's own values.
	repl.DeleteByPrefix(userPlaceholderPrefix)
	repl.Map(id.placeholders)

	// One backing array for every header's value: each header gets its
	// own one-element, full-capacity slice of it, so an append by a later
	// handler copies instead of writing into a neighbour, and an in-place
	// edit (header_up's replace) touches only this request's value.
	vals := make([]string, len(h.headers))
	for i, hs := range h.headers {
		switch hs.field {
		case fieldUsername:
			vals[i] = id.username
		case fieldEmail:
			vals[i] = id.email
		case fieldName:
			vals[i] = id.name
		case fieldGroups:
			vals[i] = id.groupsAndRoles
		default:
			vals[i] = headerValue(repl.ReplaceAll(hs.template, ""))
		}
		r.Header[hs.name] = vals[i : i+1 : i+1]
	}
}

// forwardedIdentity is what an admitted session sends upstream by
// default: the header values, made safe for a header, and the provider
// of the {http.auth.user.*} placeholders. A cached session computes it
// once (Session.prepare), so an authenticated request only reads it.
type forwardedIdentity struct {
	username, email, name, groupsAndRoles string
	placeholders                          caddy.ReplacerFunc
}

func newForwardedIdentity(s *Session) *forwardedIdentity {
	groups := strings.Join(s.Groups, ",")
	roles := strings.Join(s.Roles, ",")
	id := &forwardedIdentity{
		username:       headerValue(s.Username),
		email:          headerValue(s.Email),
		name:           headerValue(s.Name),
		groupsAndRoles: headerValue(groupsAndRoles(s, groups, roles)),
	}
	id.placeholders = identityPlaceholders(s, id, groups, roles)
	return id
}

// userPlaceholderPrefix starts every placeholder of the signed-in user.
const userPlaceholderPrefix = "http.auth.user."

// identityPlaceholders answers the {http.auth.user.*} placeholders for
// s. One provider, made once per cached session, is one entry in the
// replacer's list per request; setting the nine values one by one took
// the replacer's lock nine times and grew its map, which was the largest
// part of the module's own cost per request (bench/README.md).
//
// The values are the headers' (id), made safe for a header like them:
// the README has operators put these placeholders in header_up, and a
// provider's name, email or subject may hold a newline, which Go's
// transport refuses (a 502 on every request of that user). They are
// cleaned here, once per session, not per request.
func identityPlaceholders(s *Session, id *forwardedIdentity, groups, roles string) caddy.ReplacerFunc {
	subject := headerValue(s.Subject)
	groups, roles = headerValue(groups), headerValue(roles)
	connection, localID := headerValue(s.Connection), headerValue(s.UserID)
	return func(key string) (any, bool) {
		field, ok := strings.CutPrefix(key, userPlaceholderPrefix)
		if !ok {
			return nil, false
		}
		switch field {
		case "id":
			return id.username, true
		case "email":
			return id.email, true
		case "name":
			return id.name, true
		case "groups":
			return groups, true
		case "roles":
			return roles, true
		case "connection":
			return connection, true
		case "subject":
			return subject, true
		case "local_id":
			return localID, true
		case "provisioned":
			return strconv.FormatBool(s.Provisioned()), true
		}
		return nil, false
	}
}

// groupsAndRoles is what Remote-Groups carries: the provider's groups
// and the local roles, without duplicates. An upstream that must tell
// them apart sets its own headers from {http.auth.user.groups} and
// {http.auth.user.roles}.
func groupsAndRoles(s *Session, groups, roles string) string {
	switch {
	case len(s.Roles) == 0:
		return groups
	case len(s.Groups) == 0:
		return roles
	}
	all := make([]string, 0, len(s.Groups)+len(s.Roles))
	all = append(append(all, s.Groups...), s.Roles...)
	slices.Sort(all)
	return strings.Join(slices.Compact(all), ",")
}

package caddymodule

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/net/http/httpguts"
)

// The match field (Handler.MatcherSetsRaw) decides which requests need a
// login by the path Caddy routes on: decoded, cleaned and compared
// without letter case. The upstream receives the path as the client
// sent it and may read it otherwise, so a path written to be read one
// way by Caddy and another way by the upstream would reach a protected
// part of the upstream without a login:
//
//   - Tomcat and other Servlet containers drop ";" path parameters, so
//     "/admin;x/y" and "/public/..;/admin/y" are /admin/y to them;
//   - IIS and Windows file systems read "\" as "/" and drop trailing
//     dots and spaces from a segment ("/admin./y", "/admin%20/y");
//   - C servers stop at a NUL; some stacks decode twice ("%252e");
//   - routers that do not resolve dot segments see "/admin/%2e%2e/y"
//     under /admin/;
//   - most servers merge "//" and resolve dot segments, which Caddy's
//     path matcher does too, but a matcher that reads the path through
//     a placeholder ({path} in an expression) gets it as sent;
//   - IIS's URL Rewrite module, and PHP frameworks written for it, take
//     the path from an X-Original-URL or X-Rewrite-URL header when there
//     is one, so "GET /" with "X-Original-URL: /admin/y" is /admin/y;
//   - a Host with a trailing dot is the same name to DNS and to most
//     servers, but not to Caddy's host matcher (otherHost);
//   - web frameworks take a POST for the method its X-HTTP-Method-Override
//     field or _method parameter names (methodOverrides), in the query
//     or in the body (formReadings);
//   - an HTTP/2 or HTTP/3 Extended CONNECT (RFC 8441, RFC 9220: CONNECT
//     with a :protocol) reaches the upstream as the HTTP/1.1 upgrade it
//     stands for, GET with Upgrade: <protocol> (upgradeReadings).
//
// So the match field selects a request when Caddy's reading or any of
// these readings is selected. Browsers send none of these forms (they
// resolve dot segments and escape what they send), so ordinary requests
// are read once; a crafted one needs a login when any reading does.

// matchesAnyReading reports whether h's match field selects r under
// Caddy's reading of its path or under another an upstream may make.
func (h *Handler) matchesAnyReading(r *http.Request) (bool, error) {
	match, err := h.matcherSets.AnyMatchWithError(r)
	if match || err != nil {
		return match, err
	}
	return eachOtherReading(r, h.matcherSets.AnyMatchWithError)
}

// eachOtherReading calls try on r read each other way an upstream may
// read it (readingsOf), putting r back after each, until try says true
// or fails.
func eachOtherReading(r *http.Request, try func(*http.Request) (bool, error)) (bool, error) {
	return readingsOf(r).each(r, try)
}

// requestReadings are the readings of a request other than Caddy's.
type requestReadings struct {
	paths   []string // differentReadings
	host    string   // otherHost, or ""
	methods []string // methodOverrides
	form    bool     // a body that may name a method too (bodyMayNameMethod)
	upgrade string   // the protocol of an upgrade a matcher may read otherwise (upgradeOf), or ""
	// excess says r has more readings than are tried (maxReadings):
	// each then says true without trying any.
	excess bool
}

// maxOverrideFields bounds the fields that name another path or method
// (X-Original-URL, X-HTTP-Method-Override, a query's _method, …) read
// from one request; a client or proxy sends one or two.
const maxOverrideFields = 16

// maxReadings bounds the readings of one request that are tried. Each is
// a pass through the matchers, or, for a site's cleaning step, a walk of
// its routes that tries the readings of a jit_auth handler with a match
// field again: their number is the product of the paths, methods and
// hosts, so that a request of a few KiB with a hundred override fields
// of each kind took minutes of CPU. A request with more asks for a
// login, or is refused, as one that reads another way does; what
// browsers and proxies send has a handful.
const maxReadings = 128

func readingsOf(r *http.Request) requestReadings {
	if overrideFields(r) > maxOverrideFields {
		return requestReadings{excess: true}
	}
	rs := requestReadings{paths: differentReadings(r), host: otherHost(r.Host), methods: methodOverrides(r),
		form: bodyMayNameMethod(r), upgrade: upgradeOf(r)}
	if rs.count() > maxReadings {
		return requestReadings{excess: true}
	}
	return rs
}

// overrideFields counts r's fields that name another path or method
// (pathOverrides, methodOverrides), without reading them.
func overrideFields(r *http.Request) int {
	n := 0
	for k, vs := range r.Header {
		if k == "" || k[0]|0x20 != 'x' { // all five begin so, in any spelling
			continue
		}
		if sameHeaderKey(k, "x-original-url") || sameHeaderKey(k, "x-rewrite-url") || sameHeaderKey(k, "x-http-method-override") ||
			sameHeaderKey(k, "x-http-method") || sameHeaderKey(k, "x-method-override") {
			n += len(vs)
		}
	}
	forEachFormField(r.URL.RawQuery, func(k, _ string) {
		if isMethodField(k) {
			n++
		}
	})
	return n
}

// count is how many readings each tries at most: every method (Caddy's,
// the overrides, those a body may name) with every host and path, and
// again for an upgrade.
func (rs requestReadings) count() int {
	methods, hosts := 1+len(rs.methods), 1
	if rs.form {
		methods += len(formOverridable)
	}
	if rs.host != "" {
		hosts = 2
	}
	n := methods * hosts * (1 + len(rs.paths))
	if rs.upgrade != "" {
		n *= 2
	}
	return n
}

// none reports whether there is no reading but Caddy's: almost every
// request.
func (rs requestReadings) none() bool {
	return rs.paths == nil && rs.host == "" && rs.methods == nil && !rs.form && rs.upgrade == "" && !rs.excess
}

// each calls try on r read each way of rs, putting r back after each,
// until try says true or fails: each combination of a method (Caddy's,
// one of rs.methods, or one the body names: formReadings), a host
// (Caddy's, or rs.host) and a path (Caddy's, or one of rs.paths), but
// Caddy's own, which is the caller's; and, for an Extended CONNECT, the
// upgrade it stands for (upgradeReadings).
func (rs requestReadings) each(r *http.Request, try func(*http.Request) (bool, error)) (bool, error) {
	if rs.none() {
		return false, nil
	}
	if rs.excess {
		return true, nil
	}
	if ok, err := rs.eachWithMethods(r, append([]string{""}, rs.methods...), try); ok || err != nil {
		return ok, err
	}
	if ok, err := rs.upgradeReadings(r, try); ok || err != nil {
		return ok, err
	}
	return rs.formReadings(r, try)
}

// eachWithMethods is each for the methods given ("": Caddy's).
func (rs requestReadings) eachWithMethods(r *http.Request, methods []string, try func(*http.Request) (bool, error)) (bool, error) {
	hosts := []string{""} // "": Caddy's
	if rs.host != "" {
		hosts = append(hosts, rs.host)
	}
	for _, m := range methods {
		for _, h := range hosts {
			ok, err := aside(r, func(r *http.Request) (bool, error) {
				if m != "" {
					r.Method = m
				}
				if h != "" {
					r.Host = h
				}
				if m != "" || h != "" {
					if ok, err := aside(r, try); ok || err != nil {
						return ok, err
					}
				}
				for _, p := range rs.paths {
					if ok, err := readAs(r, p, try); ok || err != nil {
						return ok, err
					}
				}
				return false, nil
			})
			if ok || err != nil {
				return ok, err
			}
		}
	}
	return false, nil
}

// methodOverrides are the methods r asks an upstream to take it for
// instead of its own: Rails, Laravel, Symfony, Express's method-override
// and ASP.NET Core read X-HTTP-Method-Override (or X-HTTP-Method,
// X-Method-Override) and a _method parameter on a POST, so "@delete
// method DELETE" would let "POST" with "X-HTTP-Method-Override: DELETE"
// pass. They are upper-cased, as Caddy's method matcher compares; a
// body's _method is read only when it matters (formReadings).
//
// The request's own method has two more readings. Caddy's method
// matcher compares letter case, but Symfony, Laravel, Django and Flask
// upper-case the method they get, so "delete" is DELETE to them; and
// Rails, Express, Flask, Django, Spring and Go's ServeMux run a GET
// route for HEAD (without sending its body, but with its headers and
// its effects), so "@reads method GET" would let HEAD pass.
func methodOverrides(r *http.Request) []string {
	var methods []string
	add := func(v string) {
		v = strings.ToUpper(strings.TrimSpace(v))
		if v != "" && len(v) <= maxMethodLen && v != r.Method && !slices.Contains(methods, v) {
			methods = append(methods, v)
		}
	}
	add(r.Method) // when it has a lower-case letter
	if strings.EqualFold(r.Method, http.MethodHead) {
		add(http.MethodGet)
	}
	for k, vs := range r.Header {
		if sameHeaderKey(k, "x-http-method-override") || sameHeaderKey(k, "x-http-method") || sameHeaderKey(k, "x-method-override") {
			for _, v := range vs {
				add(v)
			}
		}
	}
	// The query's _method, under every spelling a framework reads as it
	// (%5Fmethod, PHP's .method, _method%00x; see isMethodField).
	forEachFormField(r.URL.RawQuery, func(k, v string) {
		if isMethodField(k) {
			add(v)
		}
	})
	return methods
}

// extendedConnectProtocol is the protocol an Extended CONNECT asks for
// (RFC 8441 over HTTP/2, RFC 9220 over HTTP/3: CONNECT with a :protocol
// pseudo-header), or "" for any other request. Go's HTTP/2 server puts
// it in the header as ":protocol" (only with GODEBUG http2xconnect=1);
// quic-go's HTTP/3 server puts it in r.Proto instead of "HTTP/3.0".
// Neither lets such a field or Proto through otherwise: HTTP/1 refuses a
// field named ":protocol", and quic-go refuses a :protocol on any other
// request. The method is compared without letter case, so a "connect"
// that an upstream upper-cases is read so too.
func extendedConnectProtocol(r *http.Request) string {
	if !strings.EqualFold(r.Method, http.MethodConnect) {
		return ""
	}
	if p := r.Header.Get(":protocol"); p != "" {
		return p
	}
	if r.ProtoMajor == 3 && r.Proto != "" && !strings.HasPrefix(r.Proto, "HTTP/") {
		return r.Proto
	}
	return ""
}

// upgradeOf is the protocol r asks to switch to when a header matcher
// may read that request otherwise than reverse_proxy does: an Extended
// CONNECT's (extendedConnectProtocol), or that of an HTTP/1.1 upgrade
// whose Connection and Upgrade fields are not spelled as upgradeHeader
// spells them (Connection exactly "Upgrade", the protocol in lower case).
// reverse_proxy takes the token "upgrade" anywhere in Connection, in any
// letter case, and the first Upgrade value in any case (upgradeType), as
// WebSocket servers do (RFC 6455, section 4.2.1), while Caddy's header
// matcher compares values with their case: "Connection: upgrade" or
// "Upgrade: WebSocket" would walk past "@websockets header Connection
// *Upgrade*" and open the WebSocket all the same. "" for any other
// request, and for the handshake as browsers spell it.
func upgradeOf(r *http.Request) string {
	if p := extendedConnectProtocol(r); p != "" {
		return p
	}
	up := r.Header["Upgrade"]
	if len(up) == 0 || !httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade") {
		return ""
	}
	p := strings.ToLower(up[0])
	if c := r.Header["Connection"]; len(c) == 1 && c[0] == "Upgrade" && len(up) == 1 && up[0] == p {
		return ""
	}
	return p
}

// upgradeReadings tries r, when it is an Extended CONNECT or an upgrade
// spelled otherwise (rs.upgrade, upgradeOf), as the HTTP/1.1 upgrade it
// stands for, with each of rs's methods,
// hosts and paths: reverse_proxy sends a WebSocket's (RFC 9220) to the
// upstream as GET with Upgrade: websocket, Connection: Upgrade and a
// Sec-WebSocket-Key, so "@pages method GET" or Caddy's documented
// "@websockets header Upgrade websocket" would let it pass unread. Every
// protocol is read so, not only the websocket reverse_proxy converts:
// that is what an Extended CONNECT means (RFC 8441, section 5), and what
// an upstream or proxy that takes it as such reads. The request's header
// is given back afterwards.
func (rs requestReadings) upgradeReadings(r *http.Request, try func(*http.Request) (bool, error)) (bool, error) {
	if rs.upgrade == "" {
		return false, nil
	}
	orig := r.Header
	r.Header = upgradeHeader(orig, rs.upgrade)
	defer func() { r.Header = orig }()
	return rs.eachWithMethods(r, append([]string{http.MethodGet}, rs.methods...), try)
}

// upgradeHeader is header as reverse_proxy sends it for an Extended
// CONNECT for protocol: without ":protocol", with Upgrade and Connection
// set, and for a WebSocket with a Sec-WebSocket-Key (reverse_proxy makes
// a random one; what a matcher can ask of it is that there is one).
func upgradeHeader(header http.Header, protocol string) http.Header {
	h := header.Clone()
	if h == nil {
		h = http.Header{}
	}
	delete(h, ":protocol")
	h.Set("Upgrade", protocol)
	h.Set("Connection", "Upgrade")
	if strings.EqualFold(protocol, "websocket") && h.Get("Sec-WebSocket-Key") == "" {
		h.Set("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA==")
	}
	return h
}

// otherHost is host (a Host field, perhaps with a port) without the
// trailing dots of its name, or "" when it has none. "admin.example.com."
// is admin.example.com to DNS and to most servers behind Caddy, but not
// to Caddy's host matcher: in a catch-all site, "@admin host
// admin.example.com" would let it pass to the site's other routes.
func otherHost(host string) string {
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		name, port = host[:i], host[i:]
	}
	if !strings.HasSuffix(name, ".") {
		return ""
	}
	if name = strings.TrimRight(name, "."); name == "" {
		return ""
	}
	return name + port
}

// differentReadings are r's other readings (otherReadings) that differ
// from Caddy's. A path without ";", "\\", "%" or "//" and with no
// segment ending in "." (which dot segments do too) reads the same every
// way, and is let through without reading it again: that is almost every
// request, and the cleaning step asks on each request of its site.
func differentReadings(r *http.Request) []string {
	escaped := r.URL.EscapedPath()
	overrides := pathOverrides(r.Header)
	if readsAlike(escaped) && overrides == nil {
		return nil
	}
	var readings []string
	add := func(p string) {
		if p != r.URL.Path {
			readings = appendNew(readings, p)
		}
	}
	for _, p := range otherReadings(escaped) {
		add(p)
	}
	for _, o := range overrides {
		if p, err := url.PathUnescape(o); err == nil {
			add(p)
		}
		for _, p := range otherReadings(o) {
			add(p)
		}
	}
	return readings
}

// pathOverrides returns the escaped paths of r's X-Original-URL and
// X-Rewrite-URL fields, under any spelling (headerKey), or nil when there
// are none. Caddy is the proxy here, so a client sent them: what a proxy
// in front of Caddy puts there asks for a login on that path too, never
// for less.
func pathOverrides(h http.Header) []string {
	var paths []string
	for k, vs := range h {
		if !sameHeaderKey(k, "x-original-url") && !sameHeaderKey(k, "x-rewrite-url") {
			continue
		}
		for _, v := range vs {
			v = strings.TrimSpace(v)
			if i := strings.Index(v, "://"); i >= 0 {
				// An absolute URL: its path starts after the authority.
				v = v[i+3:]
				if j := strings.IndexByte(v, '/'); j >= 0 {
					v = v[j:]
				} else {
					v = "/"
				}
			}
			if i := strings.IndexAny(v, "?#"); i >= 0 {
				v = v[:i]
			}
			if !strings.HasPrefix(v, "/") {
				v = "/" + v
			}
			paths = append(paths, v)
		}
	}
	return paths
}

// readAs calls match with r's path read as p (see aside).
func readAs[T any](r *http.Request, p string, match func(*http.Request) (T, error)) (T, error) {
	return aside(r, func(r *http.Request) (T, error) {
		r.URL.Path, r.URL.RawPath = p, ""
		return match(r)
	})
}

// aside calls f with a copy of r's URL in r, which f may change (a path
// read otherwise, a rewrite on the way), and then gives r back its URL,
// method, request URI and host. It changes r itself rather than a copy of r
// because matchers also read the path through placeholders ({path} in an
// expression matcher), and those answer from the request Caddy's server
// made the replacer for, which is r: a copy would show them Caddy's
// reading only.
func aside[T any](r *http.Request, f func(*http.Request) (T, error)) (T, error) {
	orig, method, uri, host := r.URL, r.Method, r.RequestURI, r.Host
	u := *orig
	r.URL = &u
	defer func() { r.URL, r.Method, r.RequestURI, r.Host = orig, method, uri, host }()
	return f(r)
}

// readsAlike reports whether an escaped path (as URL.EscapedPath gives
// it) reads the same every way, without reading it.
func readsAlike(escaped string) bool {
	return !strings.ContainsAny(escaped, `;\%`) && !strings.Contains(escaped, "./") &&
		!strings.HasSuffix(escaped, ".") && !strings.Contains(escaped, "//")
}

// maxDecodes bounds how many times otherReadings decodes a path: a
// stack that decodes twice is known; three covers one more layer.
const maxDecodes = 3

// otherReadings returns the paths an upstream may read the escaped
// request path as, besides Caddy's reading: cleaned (dot segments
// resolved, "//" merged, a trailing slash kept, as Caddy's path matcher
// cleans) and, when the path has dot segments, with each kept as a
// segment of its own ("_"), for routers that match before resolving
// them; a path with control characters is read both cut at the first
// NUL and without them. It returns nil for a path that every reading
// takes alike.
func otherReadings(escaped string) []string {
	if !strings.ContainsAny(escaped, `;\%.`) && !strings.Contains(escaped, "//") {
		return nil
	}
	p := escaped
	for range maxDecodes {
		u, err := url.PathUnescape(p)
		if err != nil || u == p {
			break
		}
		p = u
	}
	p = strings.ReplaceAll(p, `\`, "/")
	var readings []string
	add := func(p string) {
		resolved, literal, dots := segmentReadings(p)
		readings = appendNew(readings, resolved)
		if dots {
			readings = appendNew(readings, literal)
		}
	}
	if i := strings.IndexByte(p, 0); i >= 0 {
		add(p[:i])
	}
	add(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, p))
	return readings
}

// segmentReadings reads each segment of p as a Servlet container and
// Windows do (";" parameters and trailing dots and spaces dropped), and
// returns p so read and cleaned, p so read with dot segments kept as
// "_", and whether there were any.
func segmentReadings(p string) (resolved, literal string, dots bool) {
	segs := strings.Split(p, "/")
	lit := make([]string, len(segs))
	for i, s := range segs {
		s, _, _ = strings.Cut(s, ";")
		if s != "." && s != ".." {
			s = strings.TrimRight(s, ". ")
		}
		segs[i], lit[i] = s, s
		if s == "." || s == ".." {
			lit[i], dots = "_", true
		}
	}
	return caddyhttp.CleanPath(strings.Join(segs, "/"), true), strings.Join(lit, "/"), dots
}

func appendNew(list []string, s string) []string {
	for _, e := range list {
		if e == s {
			return list
		}
	}
	return append(list, s)
}

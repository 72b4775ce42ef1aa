package caddymodule

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.uber.org/zap"
)

// The interconnection check needs to know where each application is
// used, to name its sites in the error. Only the http app knows, and
// the jit_auth app cannot ask for it in its own Provision: the http
// app's handlers load the jit_auth app, so that would be a cycle. A
// handler, though, is provisioned by the http app, which is then the
// first of its context's modules: the first jit_auth handler to be
// provisioned reads every route of every server from there and checks
// every application at once. Routes already set up have typed handlers;
// the route being set up, and those after it, still have their JSON.

// attachment is one route that a jit_auth handler protects.
type attachment struct {
	// where names the route for people: site addresses and paths.
	where string
	// name is the named application attached, or "" for an inline one.
	name string
	// app is the inline application (nil for a named one).
	app *Application
	// site is the server and hosts the route belongs to, and narrowed
	// says a route around the handler matches more than the host (see
	// warnPartialCoverage).
	site     string
	narrowed bool
	// siteCleaned: the handler is in a top-level route that matches on
	// the host alone, which gets a siteCleaner when every handler in it
	// is narrowed, so the whole site is cleaned either way.
	siteCleaned bool
	// paths are those of the handler's own matcher, which the default
	// assertion audience names (newAssertionSigner).
	paths []string
	// server is the handler's server; hosts those its site matches
	// (empty: no host matcher; nil: any host, in a named route or
	// handle_errors; see hostsMeet).
	server string
	hosts  []string
	// inErrors: the handler is in the server's handle_errors routes.
	inErrors bool
}

// onceResult is the outcome of a check made once.
type onceResult struct {
	once sync.Once
	err  error
}

// checkInterconnections runs the check once per configuration, from the
// first handler provisioned; later handlers get the same answer.
func (a *App) checkInterconnections(ctx caddy.Context, h *Handler) error {
	a.interconnect.once.Do(func() {
		var httpApp *caddyhttp.App
		for _, m := range ctx.Modules() {
			if app, ok := m.(*caddyhttp.App); ok {
				httpApp = app
				break
			}
		}
		var atts []attachment
		if httpApp != nil {
			atts = findAttachments(httpApp)
			a.warnPartialCoverage(atts)
			a.warnRoutesBefore(httpApp)
			a.warnOtherPorts(httpApp, atts)
			a.warnErrorsOnly(atts)
		} else {
			// Not under the http app (a handler built by hand): this
			// handler is all there is to check.
			atts = []attachment{{where: "this route", name: h.ApplicationName, app: &h.Application}}
		}
		a.interconnect.err = a.checkAttachments(atts)
	})
	return a.interconnect.err
}

// checkAttachments finds every connection with JIT off that an
// application requiring mfa totp offers without skip_for, across every
// named application and every inline one, and reports them in one error.
func (a *App) checkAttachments(atts []attachment) error {
	used := map[string][]string{} // named application → where
	apps := map[string]*Application{}
	var errs []string
	for _, at := range atts {
		if at.name != "" {
			used[at.name] = append(used[at.name], at.where)
			continue
		}
		label := "the inline jit_auth application at " + at.where
		if err := at.app.validate(a, label); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		apps[label] = at.app
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	for name, ap := range a.Applications {
		where := ", not attached to any site"
		if w := used[name]; len(w) > 0 {
			slices.Sort(w)
			where = " at " + strings.Join(slices.Compact(w), ", ")
		}
		apps[fmt.Sprintf("application %q%s", name, where)] = ap
	}
	if err := a.checkAudiences(atts); err != nil {
		return err
	}
	if err := a.checkRedirectURLs(atts); err != nil {
		return err
	}
	refused, accepted := a.mfaConflicts(apps)
	for _, c := range accepted {
		a.logger.Warn("mfa totp conflict accepted (on_conflict warn): users of this connection have no local user for a second factor and are refused at login",
			zap.String("connection", c.connection), zap.Strings("applications", c.apps))
	}
	if len(refused) > 0 {
		return mfaConflictError(refused)
	}
	return nil
}

// checkAudiences refuses two applications that send assertions one
// upstream could take for the other's: the same iss (configured alike,
// or the origin of one server and a host both may be reached by), the
// same key, and the same aud. Its upstream would accept the other's
// assertions, made for users its own application may refuse. It compares the audiences as they will be
// sent (audienceSender.collides), and counts a handler in a named route
// or in handle_errors as reachable by every host of its server.
func (a *App) checkAudiences(atts []attachment) error {
	var senders []audienceSender
	for i, at := range atts {
		ap, id := at.app, fmt.Sprint(i) // each inline attachment is an application
		if at.name != "" {
			ap, id = a.Applications[at.name], "application "+at.name
		}
		if ap == nil || ap.Assertion == nil {
			continue
		}
		x := audienceSender{id: id, where: at.where, server: at.server, hosts: at.hosts,
			issuer: ap.Assertion.Issuer, configured: ap.Assertion.Audience, scope: strings.Join(at.paths, ",")}
		for _, y := range senders {
			if y.id != x.id && x.collides(y) {
				from := " from one site"
				if x.issuer != "" || y.issuer != "" {
					from = ""
				}
				return fmt.Errorf("the jit_auth applications at %s and %s both send assertions with %s%s, so the upstream of either would accept the other's; "+
					"give each an audience of its own (assertion { audience … }, not the default of the other) or a path matcher of its own (jit_auth /admin/* { … }), which the default audience names",
					y.where, x.where, x.describe(), from)
			}
		}
		senders = append(senders, x)
	}
	return nil
}

// audienceSender is an application that sends assertions, as
// checkAudiences compares them.
type audienceSender struct {
	id, where, server string
	// hosts are those of the site (see hostsMeet): empty for a site
	// without a host matcher, nil when any host of the server may reach
	// the handler (a named route, handle_errors).
	hosts []string
	// issuer is the configured issuer, "" for the default: the origin.
	issuer string
	// configured is the configured audience, "" for the default: the
	// issuer followed by scope.
	configured, scope string
}

func (x audienceSender) describe() string {
	base := "the site's origin"
	if x.issuer != "" {
		base = "the issuer"
	}
	var aud string
	switch {
	case x.configured != "":
		aud = "the audience " + x.configured
	case x.scope != "":
		aud = "the default audience (" + base + " followed by " + x.scope + ")"
	default:
		aud = "the default audience (" + base + ")"
	}
	if x.issuer != "" {
		return "the issuer " + x.issuer + " and " + aud
	}
	return aud
}

// collides reports whether x and y may send one iss and one aud.
func (x audienceSender) collides(y audienceSender) bool {
	if !x.issuerMeets(y) {
		return false
	}
	// From here on both send one iss.
	switch {
	case x.configured != "" && y.configured != "":
		return x.configured == y.configured
	case x.configured == "" && y.configured == "":
		return x.scope == y.scope
	case x.configured != "":
		return y.mayDefaultTo(x.configured)
	default:
		return x.mayDefaultTo(y.configured)
	}
}

// issuerMeets reports whether x and y may send one iss. Default issuers
// are origins, so they meet only on one server (one set of ports) and a
// host both may be reached by.
func (x audienceSender) issuerMeets(y audienceSender) bool {
	switch {
	case x.issuer != "" && y.issuer != "":
		return x.issuer == y.issuer
	case x.issuer == "" && y.issuer == "":
		return x.server == y.server && hostsMeet(x.hosts, y.hosts)
	case x.issuer != "":
		return y.mayBeOrigin(x.issuer)
	default:
		return x.mayBeOrigin(y.issuer)
	}
}

// mayDefaultTo reports whether x's default audience may be aud: its
// issuer followed by its scope.
func (x audienceSender) mayDefaultTo(aud string) bool {
	if x.issuer != "" {
		return aud == x.issuer+x.scope
	}
	_, rest, ok := strings.Cut(aud, "://")
	if !ok {
		return false
	}
	path := ""
	if k := strings.IndexByte(rest, '/'); k >= 0 {
		path = rest[k:]
	}
	return path == x.scope && x.mayBeOrigin(strings.TrimSuffix(aud, path))
}

// mayBeOrigin reports whether o may be the origin of a request x's site
// serves: scheme://host[:port] of a host the site may be reached by (any
// port; the listener's decides).
func (x audienceSender) mayBeOrigin(o string) bool {
	scheme, hostport, ok := strings.Cut(o, "://")
	if !ok || scheme == "" || hostport == "" || strings.IndexByte(hostport, '/') >= 0 {
		return false
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if len(x.hosts) == 0 || anyHost(x.hosts) {
		return true // its origin is whatever host reached it
	}
	return hostsMeet(x.hosts, []string{strings.Trim(host, "[]")})
}

// hostsMeet reports whether one request host may reach both sites, as
// Caddy matches hosts: case-insensitively, a '*' label standing for one
// label. nil is any host (a named route, handle_errors, a placeholder);
// an empty list is a site without a host matcher, which the Caddyfile
// orders after the sites with hosts, so it meets only another such site
// or any host.
func hostsMeet(a, b []string) bool {
	if a == nil || b == nil || anyHost(a) || anyHost(b) {
		return true
	}
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	for _, h := range a {
		for _, k := range b {
			if hostPatternsMeet(h, k) {
				return true
			}
		}
	}
	return false
}

// anyHost reports whether hosts has a placeholder, which any host may
// fill.
func anyHost(hosts []string) bool {
	return slices.ContainsFunc(hosts, func(h string) bool { return strings.Contains(h, "{") })
}

// hostPatternsMeet reports whether some host matches both Caddy host
// patterns.
func hostPatternsMeet(a, b string) bool {
	al, bl := strings.Split(strings.ToLower(a), "."), strings.Split(strings.ToLower(b), ".")
	if len(al) != len(bl) {
		return false
	}
	for i := range al {
		if al[i] != bl[i] && al[i] != "*" && bl[i] != "*" {
			return false
		}
	}
	return true
}

// findAttachments lists every jit_auth handler in the http app's
// servers, in a stable order.
func findAttachments(app *caddyhttp.App) []attachment {
	var out []attachment
	for _, name := range sortedKeys(app.Servers) {
		srv := app.Servers[name]
		if srv == nil {
			continue
		}
		sc := scope{server: name, listen: srv.Listen}
		hostless := hostlessServer(srv)
		for i := range srv.Routes {
			r := &srv.Routes[i]
			first := len(out)
			walkRoutes(caddyhttp.RouteList{*r}, sc, &out)
			if hostless || !narrows(r.MatcherSetsRaw, r.MatcherSets) {
				for j := first; j < len(out); j++ {
					out[j].siteCleaned = true // see installSiteCleaner
				}
			}
		}
		if srv.Errors != nil {
			errSc := sc
			errSc.note = "handle_errors"
			first := len(out)
			walkRoutes(srv.Errors.Routes, errSc, &out)
			for j := first; j < len(out); j++ {
				out[j].inErrors = true
			}
		}
		for _, rn := range sortedKeys(srv.NamedRoutes) {
			if r := srv.NamedRoutes[rn]; r != nil {
				named := sc
				named.note = "named route " + rn
				walkRoutes(caddyhttp.RouteList{*r}, named, &out)
			}
		}
	}
	return out
}

// scope is what the routes around a handler match.
type scope struct {
	server string
	listen []string
	// note says where in the server the routes are, when not its
	// main routes: handle_errors, or a named route.
	note  string
	hosts []string
	paths []string
	// narrowed: a route on the way matches on more than the host.
	narrowed bool
}

// String names the scope as a Caddyfile reader would recognise it:
// site addresses (with the port when it is not 80 or 443), then paths.
func (s scope) String() string {
	var b strings.Builder
	if s.note != "" {
		b.WriteString(s.note + " in ")
	}
	if len(s.hosts) > 0 {
		port := s.port()
		for i, h := range s.hosts {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(h + port)
		}
	} else {
		fmt.Fprintf(&b, "server %s (%s)", s.server, strings.Join(s.listen, " "))
	}
	var paths []string
	for _, p := range s.paths {
		if !strings.HasPrefix(p, "/.jitauth/") {
			paths = append(paths, p)
		}
	}
	if len(paths) > 0 {
		b.WriteString(" " + strings.Join(paths, " "))
	}
	return b.String()
}

// port is ":<port>" when the server listens on one port other than 80
// and 443, so sites on one host and several ports can be told apart.
func (s scope) port() string {
	if len(s.listen) != 1 {
		return ""
	}
	addr := s.listen[0]
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		if p := addr[i+1:]; p != "" && p != "80" && p != "443" {
			return ":" + p
		}
	}
	return ""
}

func (s scope) with(hosts, paths []string) scope {
	if len(hosts) > 0 {
		s.hosts = hosts
	}
	if len(paths) > 0 {
		s.paths = append(slices.Clone(s.paths), paths...)
	}
	return s
}

func walkRoutes(routes caddyhttp.RouteList, sc scope, out *[]attachment) {
	groups := groupHosts{}
	for i := range routes {
		r := &routes[i]
		hosts, paths := routeMatchers(r)
		inner := groups.narrow(sc.with(hosts, paths), r.Group, hosts, !narrows(r.MatcherSetsRaw, r.MatcherSets))
		inner.narrowed = inner.narrowed || narrows(r.MatcherSetsRaw, r.MatcherSets)
		if r.HandlersRaw != nil {
			for _, raw := range r.HandlersRaw {
				walkRawHandler(raw, inner, out)
			}
			continue
		}
		for _, mh := range r.Handlers {
			switch h := mh.(type) {
			case *Handler:
				*out = append(*out, attachmentOf(h, inner))
			case *caddyhttp.Subroute:
				walkRoutes(h.Routes, inner, out)
			}
		}
	}
}

func attachmentOf(h *Handler, sc scope) attachment {
	site := sc.server + " " + strings.Join(sc.hosts, " ")
	if sc.note != "" {
		site = "" // error routes and named routes: no site-wide coverage to expect
	}
	// The handler's own matcher (jit_auth /admin/*) names the route too.
	_, own := matcherStrings(h.MatcherSetsRaw, h.matcherSets)
	sc = sc.with(matcherStrings(h.MatcherSetsRaw, h.matcherSets))
	hosts := []string{} // a site without a host matcher
	switch {
	case sc.note != "":
		hosts = nil // named routes and handle_errors: any host
	case len(sc.hosts) > 0:
		hosts = sc.hosts
	}
	at := attachment{where: sc.String(), site: site, narrowed: sc.narrowed, paths: own, server: sc.server, hosts: hosts}
	if h.ApplicationName != "" {
		at.name = h.ApplicationName
		return at
	}
	app := h.Application
	at.app = &app
	return at
}

// narrows reports whether matcher sets match on more than the host.
func narrows(raw caddyhttp.RawMatcherSets, typed caddyhttp.MatcherSets) bool {
	for _, set := range raw {
		for name := range set {
			if name != "host" {
				return true
			}
		}
	}
	for _, set := range typed {
		for _, m := range set {
			if _, ok := m.(*caddyhttp.MatchHost); !ok {
				return true
			}
		}
	}
	return false
}

// warnPartialCoverage warns about sites where every jit_auth handler sits
// in a route that matches only some requests (a handle block, a route
// matcher): the handler never runs on the site's other requests, so they
// keep client-supplied identity headers and the module's cookies.
func (a *App) warnPartialCoverage(atts []attachment) {
	covered := map[string]bool{}
	for _, at := range atts {
		if at.site != "" && !at.narrowed {
			covered[at.site] = true
		}
	}
	warned := map[string]bool{}
	for _, at := range atts {
		if at.site == "" || !at.narrowed || at.siteCleaned || covered[at.site] || warned[at.where] {
			continue
		}
		warned[at.where] = true
		a.logger.Warn("jit_auth runs only on the requests its route matches; the site's other requests reach their handlers with client-supplied identity headers (Remote-User, …) and the module's cookies. Put jit_auth at the site level with the matcher as its argument (jit_auth /path/* …), or in JSON the matcher in the handler's match field on a route without one",
			zap.String("route", at.where))
	}
}

// warnRoutesBefore warns about top-level routes for the same hosts as a
// later one with jit_auth, that have no jit_auth themselves: a site
// address with a path (example.com/public/*) next to the site's own
// block, or a JSON route with a path matcher before the protected one.
// The requests they take never meet jit_auth, nor a siteCleaner (which
// sits in the later route), so they keep client-supplied identity
// headers and the module's cookies.
func (a *App) warnRoutesBefore(app *caddyhttp.App) {
	for _, name := range sortedKeys(app.Servers) {
		srv := app.Servers[name]
		if srv == nil || hostlessServer(srv) {
			continue // one site, cleaned whole (coverHostlessServer)
		}
		type top struct {
			hosts string
			where string
			jit   bool
		}
		var tops []top
		for i := range srv.Routes {
			r := &srv.Routes[i]
			var atts []attachment
			walkRoutes(caddyhttp.RouteList{*r}, scope{}, &atts)
			hosts, paths := routeMatchers(r)
			hosts = slices.Clone(hosts)
			slices.Sort(hosts)
			sc := scope{server: name, listen: srv.Listen}.with(hosts, paths)
			tops = append(tops, top{hosts: strings.Join(hosts, " "), where: sc.String(), jit: len(atts) > 0})
		}
		warned := map[int]bool{}
		for k, t := range tops {
			if !t.jit {
				continue
			}
			for j := range k {
				if tops[j].jit || tops[j].hosts != t.hosts || warned[j] {
					continue
				}
				warned[j] = true
				a.logger.Warn("a route for the same hosts as a jit_auth route comes before it and has no jit_auth: the requests it takes reach their handlers with client-supplied identity headers (Remote-User, …) and the module's cookies. Move it into the site's block (handle /path/* { … } there is cleaned), or give it a jit_auth",
					zap.String("route", tops[j].where), zap.String("jit_auth_route", t.where))
			}
		}
	}
}

// warnErrorsOnly warns about a server whose only jit_auth handlers are
// in its handle_errors routes: the requests that are not errors never
// meet one, nor a cleaning step (which goes where jit_auth is), so they
// reach their handlers with client-supplied identity headers and the
// module's cookies.
func (a *App) warnErrorsOnly(atts []attachment) {
	warned := map[string]bool{}
	for _, at := range atts {
		if !at.inErrors || warned[at.server] || slices.ContainsFunc(atts, func(o attachment) bool { return o.server == at.server && !o.inErrors }) {
			continue
		}
		warned[at.server] = true
		a.logger.Warn("jit_auth is only in handle_errors here: requests that are not errors never meet it, and reach their handlers with client-supplied identity headers (Remote-User, …) and the module's cookies. Put jit_auth in the site's routes",
			zap.String("route", at.where))
	}
}

// warnOtherPorts warns about the sites of servers (listeners) without
// jit_auth that a browser may reach on a host of a jit_auth site of
// another server: a host's cookies go to every port of it (RFC 6265),
// so their handlers get the module's session cookie, and an upstream
// may keep it in its request log (S16). A site without a host is
// reached by any host. Routes of a server with jit_auth are left to the
// checks above.
func (a *App) warnOtherPorts(app *caddyhttp.App, atts []attachment) {
	for _, name := range sortedKeys(app.Servers) {
		srv := app.Servers[name]
		if srv == nil || slices.ContainsFunc(atts, func(at attachment) bool { return at.server == name }) {
			continue
		}
		gone := false // a route before took the cookies off every request
		for i := range srv.Routes {
			r := &srv.Routes[i]
			forwards, deletes := routeForwardsCookies(r, gone)
			gone = gone || deletes && !routeMatches(r)
			if !forwards {
				continue // static answers and redirects (automatic HTTPS) keep nothing, nor a site that removes the cookies
			}
			hosts, paths := routeMatchers(r)
			at := slices.IndexFunc(atts, func(at attachment) bool {
				jitHosts := at.hosts
				if jitHosts == nil {
					// A named route's or handle_errors' handler: any host
					// of its server's sites, not any host at all (a site
					// of another host shares no cookie with it).
					jitHosts = serverHosts(app.Servers[at.server])
				}
				return cookieHostsMeet(hosts, jitHosts)
			})
			if at < 0 {
				continue
			}
			a.logger.Warn("a site on another port of a host jit_auth serves has no jit_auth: browsers send a host's cookies to all its ports, so its handlers, and an upstream behind them, get the module's session cookie. Serve it on a host name of its own, give it a jit_auth, or remove the cookies there if its app needs none (request_header -Cookie)",
				zap.String("route", scope{server: name, listen: srv.Listen}.with(hosts, paths).String()),
				zap.String("jit_auth_route", atts[at].where))
			break // one warning a server
		}
	}
}

// routeForwardsCookies reports whether r, set up or not, may hand
// requests to an upstream (reverse_proxy, and php_fastcgi, which is one)
// with their Cookie header: not when a headers handler before it took
// the header off (request_header -Cookie), nor when the proxy itself
// does (header_up -Cookie); gone says a route before r did for every
// request. deletes reports that r's own handlers take it off.
func routeForwardsCookies(r *caddyhttp.Route, gone bool) (forwards, deletes bool) {
	for _, raw := range r.HandlersRaw {
		f, d := rawHandlerForwardsCookies(raw, gone || deletes)
		if f {
			return true, deletes
		}
		deletes = deletes || d
	}
	for _, h := range r.Handlers {
		switch h := h.(type) {
		case *headers.Handler:
			deletes = deletes || h.Request != nil && deletesCookie(h.Request.Delete)
		case *reverseproxy.Handler:
			if !gone && !deletes && (h.Headers == nil || h.Headers.Request == nil || !deletesCookie(h.Headers.Request.Delete)) {
				return true, deletes
			}
		case *caddyhttp.Subroute:
			inner := gone || deletes
			for i := range h.Routes {
				sr := &h.Routes[i]
				f, d := routeForwardsCookies(sr, inner)
				if f {
					return true, deletes
				}
				inner = inner || d && !routeMatches(sr)
			}
		}
	}
	return false, deletes
}

// routeMatches reports whether r has matchers (some requests skip it).
func routeMatches(r *caddyhttp.Route) bool {
	return len(r.MatcherSetsRaw) > 0 || len(r.MatcherSets) > 0
}

// rawHandlerForwardsCookies is routeForwardsCookies for a handler's
// JSON.
func rawHandlerForwardsCookies(raw json.RawMessage, gone bool) (forwards, deletes bool) {
	type ops struct {
		Delete []string `json:"delete"`
	}
	var head struct {
		Handler string     `json:"handler"`
		Routes  []rawRoute `json:"routes"`
		Request *ops       `json:"request"` // headers
		Headers *struct {
			Request *ops `json:"request"`
		} `json:"headers"` // reverse_proxy
	}
	if json.Unmarshal(raw, &head) != nil {
		return false, false
	}
	switch head.Handler {
	case "headers":
		return false, head.Request != nil && deletesCookie(head.Request.Delete)
	case "reverse_proxy":
		return !gone && (head.Headers == nil || head.Headers.Request == nil || !deletesCookie(head.Headers.Request.Delete)), false
	}
	inner := gone
	for _, r := range head.Routes {
		routeGone := inner
		for _, hr := range r.Handle {
			f, d := rawHandlerForwardsCookies(hr, routeGone)
			if f {
				return true, false
			}
			routeGone = routeGone || d
		}
		inner = inner || routeGone && len(r.Match) == 0
	}
	return false, false
}

// deletesCookie reports whether a header operation's delete list takes
// off the Cookie header.
func deletesCookie(names []string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return n == "*" || strings.EqualFold(n, "Cookie") })
}

// serverHosts are the hosts the top-level routes of srv match on, which
// a handler anywhere in srv (a named route, handle_errors) may serve:
// empty (any host) when one of them matches on none.
func serverHosts(srv *caddyhttp.Server) []string {
	out := []string{}
	if srv == nil {
		return out
	}
	for i := range srv.Routes {
		hosts, _ := routeMatchers(&srv.Routes[i])
		if len(hosts) == 0 {
			return []string{}
		}
		out = append(out, hosts...)
	}
	return out
}

// cookieHostsMeet reports whether a browser may send to a site with
// hosts a cookie it got from a site with other: as hostsMeet, but a site
// without a host (empty) is reached by any host.
func cookieHostsMeet(hosts, other []string) bool {
	if len(hosts) == 0 || len(other) == 0 {
		return true
	}
	return hostsMeet(hosts, other)
}

// hostlessServer reports whether no top-level route of srv matches on
// the host: one site without a host, whose routes are the server's own,
// which coverHostlessServer cleans whole.
func hostlessServer(srv *caddyhttp.Server) bool {
	for i := range srv.Routes {
		if hosts, _ := routeMatchers(&srv.Routes[i]); len(hosts) > 0 {
			return false
		}
	}
	return true
}

// routeMatchers reads the host and path matchers of a route, set up or not.
func routeMatchers(r *caddyhttp.Route) (hosts, paths []string) {
	return matcherStrings(r.MatcherSetsRaw, r.MatcherSets)
}

// matcherStrings reads the host and path matchers of matcher sets, in
// their JSON or set up.
func matcherStrings(raw caddyhttp.RawMatcherSets, typed caddyhttp.MatcherSets) (hosts, paths []string) {
	for _, set := range raw {
		hosts = append(hosts, rawStrings(set["host"])...)
		paths = append(paths, rawStrings(set["path"])...)
	}
	for _, set := range typed {
		for _, m := range set {
			switch m := m.(type) {
			case *caddyhttp.MatchHost:
				hosts = append(hosts, *m...)
			case *caddyhttp.MatchPath:
				paths = append(paths, *m...)
			}
		}
	}
	return hosts, paths
}

func rawStrings(raw json.RawMessage) []string {
	var out []string
	if raw != nil && json.Unmarshal(raw, &out) != nil {
		return nil
	}
	return out
}

// rawRoute is the part of a route's JSON the walk reads.
type rawRoute struct {
	Match  caddyhttp.RawMatcherSets `json:"match"`
	Handle []json.RawMessage        `json:"handle"`
	Group  string                   `json:"group"`
}

// groupHosts narrows the hosts of routes in route groups (the
// Caddyfile's handle blocks): of a group, only the first route that
// matches a request runs, so a route that matches on the host alone
// takes its hosts' requests from the group's later routes, and a later
// route without a host matcher serves only the scope's other hosts.
type groupHosts map[string][]string

// narrow returns the scope of a route of group with the given host
// matchers, and records the hosts it takes when it matches on them
// alone (hostOnly).
func (g groupHosts) narrow(inner scope, group string, routeHosts []string, hostOnly bool) scope {
	if group == "" {
		return inner
	}
	if len(routeHosts) == 0 && len(g[group]) > 0 {
		var left []string
		for _, h := range inner.hosts {
			if !slices.ContainsFunc(g[group], func(c string) bool { return strings.EqualFold(c, h) }) {
				left = append(left, h)
			}
		}
		if len(left) > 0 {
			inner.hosts = left
		}
	}
	if len(routeHosts) > 0 && hostOnly {
		g[group] = append(g[group], routeHosts...)
	}
	return inner
}

// strictHandlerJSON decodes a handler's JSON as Caddy's module loader
// does: its inline key "handler" removed, unknown fields refused.
func strictHandlerJSON(raw json.RawMessage, h *Handler) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return err
	}
	delete(fields, "handler")
	body, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	return caddy.StrictUnmarshalJSON(body, h)
}

func walkRawHandler(raw json.RawMessage, sc scope, out *[]attachment) {
	var head struct {
		Handler string     `json:"handler"`
		Routes  []rawRoute `json:"routes"`
	}
	if json.Unmarshal(raw, &head) != nil {
		return
	}
	switch head.Handler {
	case "jit_auth":
		// Strictly, as Caddy decodes the handler (without its inline key)
		// when it loads it: one with an unknown field is left to that,
		// which refuses the configuration naming the field; read
		// leniently, the check refused it first for what the misspelt
		// field left unset.
		var h Handler
		if strictHandlerJSON(raw, &h) == nil {
			*out = append(*out, attachmentOf(&h, sc))
		}
	case "subroute":
		groups := groupHosts{}
		for _, r := range head.Routes {
			var hosts, paths []string
			for _, set := range r.Match {
				hosts = append(hosts, rawStrings(set["host"])...)
				paths = append(paths, rawStrings(set["path"])...)
			}
			inner := groups.narrow(sc.with(hosts, paths), r.Group, hosts, !narrows(r.Match, nil))
			inner.narrowed = inner.narrowed || narrows(r.Match, nil)
			for _, hr := range r.Handle {
				walkRawHandler(hr, inner, out)
			}
		}
	}
}

package caddymodule

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/rewrite"
	"go.uber.org/zap"
)

// siteCleaner cleans the requests of a site whose jit_auth handlers all
// sit in routes that match only part of it (a handle block, a route with
// a path matcher): those handlers never see the site's other requests,
// which would otherwise reach their handlers with client-supplied
// identity headers and the module's cookies (S1, S16). It runs first in
// the site's own route, so on every request of the site, and does what
// the first jit_auth handler of a request does (cleanRequest) and what
// passOn does; a jit_auth handler later on the request puts the
// module's cookies back to read the session.
//
// It also refuses a request whose path, host or method the upstream may
// read otherwise than Caddy does (readingsOf; an Extended CONNECT is read
// as the GET upgrade reverse_proxy sends) when Caddy's reading takes
// it past every jit_auth handler of the site and another reading would
// take it to one: with jit_auth in a handle /admin/* block, "/admin;/x" and
// "/public/..;/admin/x" go to the site's other routes, and a Servlet
// container behind them reads /admin/x.
type siteCleaner struct {
	app *App
	// route is the site's top-level route, whose handlers after the
	// cleaner are the site's (nil in tests that build a cleaner alone).
	route *caddyhttp.Route
	// srv, for a site without a host, is its server, whose top-level
	// routes are the site's (coverHostlessServer): the cleaner follows a
	// request through all of them, not through its own route only.
	srv *caddyhttp.Server
	// within: the cleaner is not the first handler of route but sits
	// inside it, first in its subroute (coverInvokingSites), so a walk
	// follows all of route's handlers.
	within bool
}

// CaddyModule names the cleaner in Caddy's metrics and traces; it is not
// a module of its own and cannot be configured.
func (siteCleaner) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.jit_auth", New: func() caddy.Module { return new(Handler) }}
}

func (c *siteCleaner) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h := c.endpointHandler(r); h != nil && !c.reachesOwnEndpoint(r, h) {
		// The site's sign-in endpoints, which Caddy's routes would take
		// past every jit_auth handler (one in a handle block sees only
		// its block's requests), or to one that is not theirs (a
		// catch-all block's, with another path_prefix), so a login it
		// starts would end on the site's other routes: the handler that
		// owns them answers. When the routes reach one that answers them
		// as its endpoints, that one answers, as it always did.
		return h.ServeHTTP(w, r, next)
	}
	if c.readElsewhere(r) {
		c.app.logger.Debug("refused a request that another reading takes to a jit_auth handler past which Caddy's reading takes it",
			zap.String("method", r.Method), zap.String("host", r.Host), zap.String("path", r.URL.EscapedPath()))
		renderError(w, http.StatusBadRequest, "Bad request", "This request can be read two ways, one of them leading to a page that needs a sign-in. Send it without ;, \\, encoded or trailing dots in its address, without a trailing dot in its host, without naming another method (X-HTTP-Method-Override, _method), and open a WebSocket here with the HTTP/1.1 handshake rather than an HTTP/2 or HTTP/3 CONNECT.", "")
		return nil
	}
	if caddyhttp.GetVar(r.Context(), varCleaned) == true {
		// A jit_auth handler of an earlier route cleaned it, and may
		// have set the identity headers (a site without a host, whose
		// every route has a step: coverHostlessServer).
		return next.ServeHTTP(w, r)
	}
	stripRequest(r, c.app.identityKeys)
	caddyhttp.SetVar(r.Context(), varCleaned, cleanedBySite)
	if held := withholdModuleCookies(r.Header); held != "" {
		caddyhttp.SetVar(r.Context(), varHeldCookies, &heldCookies{line: held})
	}
	return next.ServeHTTP(w, r)
}

// endpointHandler is the jit_auth handler of the site whose sign-in
// endpoints r asks for (App.endpointOwners), or nil.
func (c *siteCleaner) endpointHandler(r *http.Request) *Handler {
	var owner *Handler
	take := func(owners map[string]*Handler) {
		for prefix, h := range owners {
			// The most specific owner: /.jitauth/admin/ over /.jitauth/.
			if strings.HasPrefix(r.URL.Path, prefix) && (owner == nil || len(prefix) > len(owner.PathPrefix)) {
				owner = h
			}
		}
	}
	switch {
	case c.srv != nil:
		for i := range c.srv.Routes {
			take(c.app.endpointOwners[&c.srv.Routes[i]])
		}
	case c.route != nil:
		take(c.app.endpointOwners[c.route])
	}
	return owner
}

// walks reports whether the cleaner has routes of the site to follow a
// request through (walk).
func (c *siteCleaner) walks() bool {
	return c.srv != nil || c.route != nil && (c.within || len(c.route.Handlers) >= 2)
}

// walk follows r through the site's routes as Caddy would
// (reachesJITAuth): the handlers after the cleaner in its route, or
// every top-level route of the server of a site without a host.
func (c *siteCleaner) walk(r *http.Request, at *reachedAt) routeOutcome {
	switch {
	case c.srv != nil:
		return routesReach(c.srv.Routes, r, map[string]bool{}, at)
	case c.within:
		return reachesJITAuth(c.route.Handlers, r, map[string]bool{}, at)
	}
	return reachesJITAuth(c.route.Handlers[1:], r, map[string]bool{}, at)
}

// reachedAt is the jit_auth handler a walk of the routes met, and
// whether the request's path there was one of its endpoints.
type reachedAt struct {
	handler  *Handler
	endpoint bool
}

// reachesOwnEndpoint reports whether Caddy's routes take r to a jit_auth
// handler that answers r's path as one of its endpoints (it does so
// whatever its match field) and whose path prefix is as specific as that
// of owner, the handler the endpoints belong to. One that takes the path
// for a page of its application (a catch-all handle block's handler,
// asked for another application's path_prefix) would sign the browser in
// for its own application and forward the endpoint to the upstream; one
// with a shorter prefix (/.jitauth/ for owner's /.jitauth/admin/) would
// take it for an endpoint of its own that does not exist.
func (c *siteCleaner) reachesOwnEndpoint(r *http.Request, owner *Handler) bool {
	if !c.walks() {
		return false
	}
	var at reachedAt
	reached, _ := aside(r, func(r *http.Request) (bool, error) {
		return c.walk(r, &at) == routeReaches, nil
	})
	return reached && at.endpoint && len(at.handler.PathPrefix) >= len(owner.PathPrefix)
}

// routeInProvision is the top-level route of srv whose handlers are
// being provisioned, or nil: Caddy provisions a server's top-level routes
// one after the other, so it is the first whose handlers are not loaded
// yet (nil, or only the site cleaner installSiteCleaner put there).
func routeInProvision(srv *caddyhttp.Server) *caddyhttp.Route {
	if srv == nil {
		return nil
	}
	for i := range srv.Routes {
		r := &srv.Routes[i]
		if len(r.HandlersRaw) == 0 {
			continue
		}
		if r.Handlers == nil {
			return r
		}
		if _, ok := r.Handlers[0].(*siteCleaner); ok && len(r.Handlers) == 1 {
			return r
		}
	}
	return nil
}

// ownEndpoints records h as the handler that answers the sign-in
// endpoints at its path prefix for its site, unless an earlier one does.
// The two should answer them alike (the connections they offer, their
// second factor): otherwise a sign-in that h starts is answered by the
// other and may never complete, and the load warns, naming the fix (a
// path_prefix of h's own). It is a warning, not an error, because such
// configurations loaded before.
func (a *App) ownEndpoints(srv *caddyhttp.Server, h *Handler) {
	if route := routeInProvision(srv); route != nil {
		a.ownEndpointsOf(srv, route, h)
	}
}

// ownEndpointsOf is ownEndpoints for the site whose top-level route is
// route.
func (a *App) ownEndpointsOf(srv *caddyhttp.Server, route *caddyhttp.Route, h *Handler) {
	if a.endpointOwners == nil {
		a.endpointOwners = map[*caddyhttp.Route]map[string]*Handler{}
	}
	owners := a.endpointOwners[route]
	if owners == nil {
		owners = map[string]*Handler{}
		a.endpointOwners[route] = owners
	}
	first := owners[h.PathPrefix]
	if first == nil {
		owners[h.PathPrefix] = h
		return
	}
	if first.endpointSignature() != h.endpointSignature() {
		a.logger.Warn("two jit_auth handlers of one site answer sign-in at one path prefix with other connections, allow rules or second-factor rule: the first answers for both, so a sign-in the second starts may loop or fail; give the second a path prefix of its own (path_prefix /.jitauth-app2/) or attach both to one application",
			zap.String("server", srv.Name()), zap.String("path_prefix", h.PathPrefix),
			zap.String("first", first.endpointSignature()), zap.String("second", h.endpointSignature()))
	}
}

// endpointSignature is what decides how a handler answers its sign-in
// endpoints: the connections it offers, its second-factor rule and its
// allow rules (checked when a login completes).
func (h *Handler) endpointSignature() string {
	names := slices.Clone(h.offered(h.app))
	slices.Sort(names)
	rules, _ := json.Marshal(struct {
		MFA   *MFAConfig  `json:"m"`
		Allow []AllowRule `json:"a"`
	}{h.MFA, h.Allow})
	return strings.Join(names, ",") + "|" + string(rules)
}

// installSiteCleaner puts a siteCleaner first in the top-level route of
// the server that h is being provisioned in, when that route matches on
// the host alone (a Caddyfile site) and not every request through it is
// sure to meet a jit_auth handler before a handler that could answer or
// forward it (meetsJITAuthFirst): jit_auth in a handle block, after a
// handle block that takes some requests, in a route after a terminal
// handler. Caddy provisions a server's top-level routes one after the
// other and compiles them once all are provisioned; the route being
// provisioned is the first one whose handlers are not loaded yet, and
// Route.ProvisionHandlers appends the loaded handlers to the ones already
// there, so the cleaner stays first. A configuration the cleaner cannot
// cover (a top-level route with a path matcher, in JSON) keeps the
// load-time warning (warnPartialCoverage).
func (a *App) installSiteCleaner(srv *caddyhttp.Server) {
	r := routeInProvision(srv)
	if r == nil || r.Handlers != nil {
		return // none, or this route has its cleaner already
	}
	if narrows(r.MatcherSetsRaw, r.MatcherSets) {
		return
	}
	if meetsJITAuthFirst([]flowRoute{{Handle: r.HandlersRaw}}) {
		return // the first jit_auth handler cleans every request
	}
	r.Handlers = []caddyhttp.MiddlewareHandler{&siteCleaner{app: a, route: r}}
	a.placeHandler(srv) // a jit_auth handler later on a request must know it ran
	a.logger.Debug("jit_auth cleans every request of the site, not all of them meeting a jit_auth handler first",
		zap.String("server", srv.Name()))
}

// coverHostlessServer gives every top-level route of h's server a
// cleaning step first when the server is one site without a host
// (":8080 { … }", "http:// { … }"): Caddy lays such a site's blocks and
// directives out as the server's own routes, so the site has no route of
// its own for installSiteCleaner, and a handle block or a proxy route
// beside the one with jit_auth took its requests to the upstream with the
// client's identity headers and the module's cookies (S1, S16). Caddy
// compiles the server's routes once all are provisioned: a route not
// provisioned yet gets the step as its first handler (its own handlers
// are appended to it), one provisioned already has its handlers set up
// again behind it. Each step follows a request through all the server's
// routes, as a site's step follows it through the site's (srv): for the
// sign-in endpoints, which another route than jit_auth's may take, and
// for the readings of a path that another route takes past jit_auth. A
// route's step leaves a request alone that a jit_auth handler of an
// earlier route cleaned (see siteCleaner.ServeHTTP). A server whose every
// request meets a jit_auth handler first is left as it is.
func (a *App) coverHostlessServer(ctx caddy.Context, srv *caddyhttp.Server) {
	if srv == nil || routeInProvision(srv) == nil {
		return
	}
	if !hostlessServer(srv) || serverMeetsJITAuthFirst(srv.Routes, nil) {
		return
	}
	var metrics *caddyhttp.Metrics
	for _, m := range ctx.Modules() {
		if app, ok := m.(*caddyhttp.App); ok {
			metrics = app.Metrics
			break
		}
	}
	added := false
	for i := range srv.Routes {
		r := &srv.Routes[i]
		if len(r.Handlers) == 0 && len(r.HandlersRaw) == 0 {
			continue // nothing to answer or forward
		}
		if len(r.Handlers) > 0 {
			if c, done := r.Handlers[0].(*siteCleaner); done {
				c.srv = srv // installSiteCleaner's, for this route alone
				continue
			}
		}
		provisioned := r.Handlers != nil
		r.Handlers = append([]caddyhttp.MiddlewareHandler{&siteCleaner{app: a, route: r, srv: srv}}, r.Handlers...)
		added = true
		if provisioned && len(r.HandlersRaw) == 0 {
			// Its raw handlers were loaded and let go: this sets up the
			// handler chain again, loading nothing.
			_ = r.ProvisionHandlers(ctx, metrics)
		}
	}
	if !added {
		return
	}
	a.placeHandler(srv) // a jit_auth handler later on a request must know a step ran
	if !slices.ContainsFunc(srv.Routes, func(r caddyhttp.Route) bool {
		return len(r.MatcherSetsRaw) == 0 && len(r.MatcherSets) == 0
	}) {
		// Nothing takes a path that no matcher names: the sign-in
		// endpoints reach no route, and a sign-in ends on an empty page.
		a.logger.Warn("this site without a host has no route that takes every request, so the sign-in endpoints (/.jitauth/…) reach no route and signing in fails; put jit_auth at the site level with the matcher as its argument (jit_auth /app/* …), or add a catch-all handle block",
			zap.String("server", srv.Name()))
	}
}

// serverMeetsJITAuthFirst is meetsJITAuthFirst over a server's top-level
// routes while they are provisioned: those set up already read from
// their handlers, the others from their JSON. An invoke of a named route
// that first marks counts as a jit_auth handler.
func serverMeetsJITAuthFirst(routes caddyhttp.RouteList, first map[string]bool) bool {
	flow := make([]flowRoute, 0, len(routes))
	for i := range routes {
		r := &routes[i]
		fr := flowRoute{Match: r.MatcherSetsRaw, Group: r.Group, Terminal: r.Terminal, Handle: r.HandlersRaw}
		if len(fr.Match) == 0 && len(r.MatcherSets) > 0 {
			fr.Match = caddyhttp.RawMatcherSets{{}} // matches some requests
		}
		if r.HandlersRaw == nil && len(r.Handlers) > 0 {
			cleans, ok := typedHandlersMeetJITAuth(r.Handlers, first)
			switch {
			case cleans:
				fr.Handle = []json.RawMessage{json.RawMessage(`{"handler":"jit_auth"}`)}
			case !ok:
				fr.Handle = []json.RawMessage{json.RawMessage(`{"handler":"static_response"}`)}
			default:
				fr.Handle = nil
			}
		}
		flow = append(flow, fr)
	}
	return meetsJITAuthFirst(flow)
}

// typedHandlersMeetJITAuth is handlersMeetJITAuth for handlers set up
// already; first marks the named routes whose every request meets a
// jit_auth handler first, which an invoke of them does too.
func typedHandlersMeetJITAuth(handlers []caddyhttp.MiddlewareHandler, first map[string]bool) (cleans, ok bool) {
	for _, h := range handlers {
		switch h := h.(type) {
		case *Handler, *siteCleaner:
			return true, false
		case *caddyhttp.Invoke:
			return first[h.Name], false
		case *caddyhttp.Subroute:
			return serverMeetsJITAuthFirst(h.Routes, first), false
		default:
			m, isModule := h.(caddy.Module)
			if !isModule || !passThrough[strings.TrimPrefix(string(m.CaddyModule().ID), "http.handlers.")] {
				return false, false
			}
		}
	}
	return false, true
}

// coverInvokingSites gives a site that reaches jit_auth through a named
// route (invoke) its cleaning step. Caddy provisions a server's named
// routes after its top-level routes, which it has compiled by then, so
// installSiteCleaner, run while h's own top-level route is provisioned,
// never sees such a site: a handle block in front of the invoke took its
// requests to the upstream with the client's identity headers and the
// module's cookies (S1, S16). A Caddyfile site is a top-level route
// matching on the host with one subroute, which Caddy compiles on each
// request, so the step goes first in that subroute, and follows a
// request through the whole site route (invoke included, reachesJITAuth)
// for the readings of a path. The named route's handler h owns the
// site's sign-in endpoints at its path prefix unless a handler of the
// site's own does (ownEndpointsOf), so the step hands them to it when
// the site's routes would take them past the invoke. A site without a
// host is coverHostlessInvoke's; a JSON site whose route has a path
// matcher is not changed.
func (a *App) coverInvokingSites(ctx caddy.Context, srv *caddyhttp.Server, h *Handler) {
	if srv == nil || routeInProvision(srv) != nil {
		return // a top-level route: installSiteCleaner's
	}
	named := map[string]bool{}
	for name, r := range srv.NamedRoutes {
		var atts []attachment
		if r != nil {
			walkRoutes(caddyhttp.RouteList{*r}, scope{}, &atts)
		}
		named[name] = len(atts) > 0
	}
	// A named route that invokes one with jit_auth reaches it too (a
	// chain of invokes): the site invoking the first is covered alike.
	// Named routes are provisioned in no set order, so one may still be
	// JSON here.
	for changed := true; changed; {
		changed = false
		for name, r := range srv.NamedRoutes {
			if !named[name] && r != nil && routeInvokesAny(r, named) {
				named[name], changed = true, true
			}
		}
	}
	if hostlessServer(srv) {
		a.coverHostlessInvoke(ctx, srv, h, named)
		return
	}
	for i := range srv.Routes {
		r := &srv.Routes[i]
		if len(r.Handlers) != 1 || narrows(r.MatcherSetsRaw, r.MatcherSets) {
			continue
		}
		sub, ok := r.Handlers[0].(*caddyhttp.Subroute)
		if !ok || !invokesAny(sub.Routes, named) {
			continue
		}
		// h answers the site's sign-in endpoints when the site's routes
		// take them elsewhere (a handle /app/* { invoke … } block beside
		// a catch-all proxy): the step hands them to it.
		a.ownEndpointsOf(srv, r, h)
		if first := sub.Routes; len(first) > 0 && len(first[0].Handlers) > 0 {
			if _, done := first[0].Handlers[0].(*siteCleaner); done {
				continue // a second jit_auth of the named routes
			}
		}
		step := caddyhttp.Route{Handlers: []caddyhttp.MiddlewareHandler{&siteCleaner{app: a, route: r, within: true}}}
		if err := step.ProvisionHandlers(ctx, nil); err != nil {
			continue // loads nothing: it has no raw handlers
		}
		sub.Routes = append(caddyhttp.RouteList{step}, sub.Routes...)
		a.placeHandler(srv) // a jit_auth handler later on a request must know it ran
	}
}

// coverHostlessInvoke is coverInvokingSites for a site without a host,
// whose blocks and directives are the server's own top-level routes
// (coverHostlessServer): when one of them invokes a named route with
// jit_auth, every one gets a cleaning step, which follows a request
// through all of them (srv). Those routes are compiled by now, so the
// step can go only first in a route's subroute (a handle, route or
// handle_path block), which Caddy compiles on each request; a route
// that answers or forwards by itself (a bare reverse_proxy /api/* …)
// cannot get one, and the load warns about it.
func (a *App) coverHostlessInvoke(ctx caddy.Context, srv *caddyhttp.Server, h *Handler, named map[string]bool) {
	invokes := false
	for i := range srv.Routes {
		if invokesAny(caddyhttp.RouteList{srv.Routes[i]}, named) {
			invokes = true
			break
		}
	}
	// Named routes whose every request meets jit_auth first: a site
	// that invokes one before anything else is cleaned by it.
	first := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for name, r := range srv.NamedRoutes {
			if !first[name] && r != nil && serverMeetsJITAuthFirst(caddyhttp.RouteList{*r}, first) {
				first[name], changed = true, true
			}
		}
	}
	if !invokes || serverMeetsJITAuthFirst(srv.Routes, first) {
		return
	}
	// As in a site with a host: the steps hand the sign-in endpoints to h
	// when the server's routes take them elsewhere.
	a.ownEndpointsOf(srv, &srv.Routes[0], h)
	added := false
	for i := range srv.Routes {
		r := &srv.Routes[i]
		if len(r.Handlers) == 0 {
			continue
		}
		sub, ok := r.Handlers[0].(*caddyhttp.Subroute)
		if !ok {
			if serverMeetsJITAuthFirst(srv.Routes[:i], first) {
				continue // every request met jit_auth before this route
			}
			if cleans, passes := typedHandlersMeetJITAuth(r.Handlers, first); !cleans && !passes {
				hosts, paths := routeMatchers(r)
				a.logger.Warn("a route of this site without a host answers or forwards by itself, before or beside the named route with jit_auth that the site invokes: the requests it takes reach their handlers with client-supplied identity headers (Remote-User, …) and the module's cookies. Put it in a handle block (handle /path/* { … } is cleaned), or jit_auth at the site level",
					zap.String("server", srv.Name()), zap.Strings("hosts", hosts), zap.Strings("paths", paths))
			}
			continue
		}
		if first := sub.Routes; len(first) > 0 && len(first[0].Handlers) > 0 {
			if _, done := first[0].Handlers[0].(*siteCleaner); done {
				continue // a second jit_auth of the named routes
			}
		}
		step := caddyhttp.Route{Handlers: []caddyhttp.MiddlewareHandler{&siteCleaner{app: a, route: r, srv: srv}}}
		if err := step.ProvisionHandlers(ctx, nil); err != nil {
			continue // loads nothing: it has no raw handlers
		}
		sub.Routes = append(caddyhttp.RouteList{step}, sub.Routes...)
		added = true
	}
	if added {
		a.placeHandler(srv) // a jit_auth handler later on a request must know a step ran
	}
}

// cleanErrorRoutes gives srv's handle_errors routes a step that only
// cleans (no route, no srv: it walks nothing) a request that neither a
// jit_auth handler nor a site's step cleaned. Caddy runs them on a
// request that never went through the site's route, or went through
// only its matchers: a 421 for a Host other than the TLS server name
// (strict_sni_host), a route matcher that fails to evaluate in a site
// without a host (its step sits inside the route). They may forward it,
// with the client's identity headers and the module's cookies (S1, S16).
// While the server's routes are provisioned, Caddy has not set up the
// error routes yet, so a route of its own goes first there; a named
// route's handler comes after they are compiled, and the step goes first
// in their subroutes (a handle_errors block's), which Caddy compiles on
// each request. It is counted as a handler of srv (placeHandler), so a
// jit_auth handler marks a request it cleaned and the step leaves the
// identity it set.
func (a *App) cleanErrorRoutes(ctx caddy.Context, srv *caddyhttp.Server) {
	if srv == nil || srv.Errors == nil || len(srv.Errors.Routes) == 0 || a.errorsCleaned[srv] {
		return
	}
	if a.errorsCleaned == nil {
		a.errorsCleaned = map[*caddyhttp.Server]bool{}
	}
	a.errorsCleaned[srv] = true
	a.placeHandler(srv)
	if routeInProvision(srv) != nil {
		step := caddyhttp.Route{Handlers: []caddyhttp.MiddlewareHandler{&siteCleaner{app: a}}}
		srv.Errors.Routes = append(caddyhttp.RouteList{step}, srv.Errors.Routes...)
		return
	}
	a.cleanCompiledErrorRoutes(ctx, srv)
}

// cleanCompiledErrorRoutes is cleanErrorRoutes once Caddy has compiled
// the error routes: the step goes first in each of their subroutes.
func (a *App) cleanCompiledErrorRoutes(ctx caddy.Context, srv *caddyhttp.Server) {
	if srv.Errors == nil {
		return
	}
	for i := range srv.Errors.Routes {
		r := &srv.Errors.Routes[i]
		if len(r.Handlers) == 0 {
			continue
		}
		sub, ok := r.Handlers[0].(*caddyhttp.Subroute)
		if !ok {
			continue
		}
		if first := sub.Routes; len(first) > 0 && len(first[0].Handlers) > 0 {
			if _, done := first[0].Handlers[0].(*siteCleaner); done {
				continue
			}
		}
		step := caddyhttp.Route{Handlers: []caddyhttp.MiddlewareHandler{&siteCleaner{app: a}}}
		if err := step.ProvisionHandlers(ctx, nil); err != nil {
			continue // loads nothing: it has no raw handlers
		}
		sub.Routes = append(caddyhttp.RouteList{step}, sub.Routes...)
	}
}

// routeInvokesAny is invokesAny for one route, set up or not.
func routeInvokesAny(r *caddyhttp.Route, named map[string]bool) bool {
	if invokesAny(caddyhttp.RouteList{*r}, named) {
		return true
	}
	return slices.ContainsFunc(r.HandlersRaw, func(raw json.RawMessage) bool { return rawInvokesAny(raw, named) })
}

// rawInvokesAny is invokesAny for a handler's JSON.
func rawInvokesAny(raw json.RawMessage, named map[string]bool) bool {
	var head struct {
		Handler string     `json:"handler"`
		Name    string     `json:"name"`
		Routes  []rawRoute `json:"routes"`
	}
	if json.Unmarshal(raw, &head) != nil {
		return false
	}
	if head.Handler == "invoke" {
		return named[head.Name]
	}
	for _, r := range head.Routes {
		if slices.ContainsFunc(r.Handle, func(raw json.RawMessage) bool { return rawInvokesAny(raw, named) }) {
			return true
		}
	}
	return false
}

// invokesAny reports whether routes, or the subroutes in them, invoke
// one of the named routes that named marks.
func invokesAny(routes caddyhttp.RouteList, named map[string]bool) bool {
	for _, r := range routes {
		for _, h := range r.Handlers {
			switch h := h.(type) {
			case *caddyhttp.Invoke:
				if named[h.Name] {
					return true
				}
			case *caddyhttp.Subroute:
				if invokesAny(h.Routes, named) {
					return true
				}
			}
		}
	}
	return false
}

// flowRoute is the part of a route's JSON that decides which requests
// go on through it.
type flowRoute struct {
	Match    caddyhttp.RawMatcherSets `json:"match"`
	Handle   []json.RawMessage        `json:"handle"`
	Group    string                   `json:"group"`
	Terminal bool                     `json:"terminal"`
}

// passThrough are handlers that always call the next one and neither
// answer nor forward a request, so a request passes them unchanged on
// its way to a jit_auth handler.
var passThrough = map[string]bool{
	"vars": true, "map": true, "headers": true, "rewrite": true, "request_body": true,
	"tracing": true, "log_append": true, "log_name": true, "encode": true,
}

// meetsJITAuthFirst reports whether every request through routes reaches
// a jit_auth handler before any handler that could answer or forward it.
// It errs on the side of no: a route it cannot read, a handler it does
// not know, or a route some requests skip (a matcher, a route group
// another route may have claimed) in front of the jit_auth handler all
// say no, and the site then gets a siteCleaner.
func meetsJITAuthFirst(routes []flowRoute) bool {
	groups := map[string]bool{}
	for _, r := range routes {
		// A request surely takes this route when nothing matches on it
		// and no earlier route of its group could have claimed it.
		sure := len(r.Match) == 0 && (r.Group == "" || !groups[r.Group])
		if r.Group != "" {
			groups[r.Group] = true
		}
		cleans, ok := handlersMeetJITAuth(r.Handle)
		switch {
		case cleans && sure:
			return true
		case !cleans && !ok:
			// A handler that may answer or forward before any jit_auth.
			return false
		}
		// Some requests skip this route, or it only passes them on:
		// they go on to the next route unless the route is terminal.
		if r.Terminal && sure {
			return false
		}
	}
	return false
}

// handlersMeetJITAuth reports whether a route's handlers start, after
// pass-through handlers, with a jit_auth handler (or a subroute that
// meets one first): cleans. ok reports that every handler is a
// pass-through one, so the request goes on to the next route.
func handlersMeetJITAuth(handlers []json.RawMessage) (cleans, ok bool) {
	for _, raw := range handlers {
		var head struct {
			Handler string      `json:"handler"`
			Routes  []flowRoute `json:"routes"`
		}
		if json.Unmarshal(raw, &head) != nil {
			return false, false
		}
		switch {
		case head.Handler == "jit_auth":
			return true, false
		case head.Handler == "subroute":
			return meetsJITAuthFirst(head.Routes), false
		case !passThrough[head.Handler]:
			return false, false
		}
	}
	return false, true
}

// readElsewhere reports whether r has another reading (of its path, host
// or method: readingsOf) that the site's routes would take to a
// jit_auth handler while Caddy's reading reaches none (see siteCleaner).
func (c *siteCleaner) readElsewhere(r *http.Request) bool {
	if !c.walks() {
		return false
	}
	readings := readingsOf(r)
	if readings.none() {
		return false
	}
	reaches := func(r *http.Request) (bool, error) {
		return c.walk(r, nil) == routeReaches, nil
	}
	if caddys, _ := aside(r, reaches); caddys {
		return false
	}
	other, _ := readings.each(r, reaches)
	return other
}

// routeOutcome is what a request meets going through handlers.
type routeOutcome int

const (
	routePasses  routeOutcome = iota // on to what follows
	routeReaches                     // a jit_auth handler
	routeAnswers                     // a handler that answers or forwards it first
)

// reachesJITAuth follows r through provisioned handlers as Caddy would
// route it: into subroutes, taking each route whose matchers match and
// whose group has not been taken yet (groups), rewriting r as the
// rewrites on the way do (handle_path strips its prefix), and stopping
// at a terminal route or at a handler that answers, and reports whether
// it meets a jit_auth handler that asks it for a login. A route matcher
// that fails with an error is taken as not matching. The caller gives r
// back what the rewrites changed (aside).
//
// When at is not nil, it is told the handler met, and whether r's path,
// when it got there, was one of that handler's endpoints.
func reachesJITAuth(handlers []caddyhttp.MiddlewareHandler, r *http.Request, groups map[string]bool, at *reachedAt) routeOutcome {
	for _, h := range handlers {
		switch h := h.(type) {
		case *rewrite.Rewrite:
			if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
				h.Rewrite(r, repl)
			}
		case *Handler:
			// One whose match field leaves the request alone passes it
			// on without a login (an error there asks for one); its own
			// endpoints it answers whatever the field says.
			endpoint := strings.HasPrefix(r.URL.Path, h.PathPrefix)
			if at != nil {
				at.handler, at.endpoint = h, endpoint
			}
			if h.matcherSets == nil || endpoint {
				return routeReaches
			}
			if match, err := h.matchesAnyReading(r); match || err != nil {
				return routeReaches
			}
			if at != nil {
				at.handler = nil
			}
		case *siteCleaner:
		case *caddyhttp.Subroute:
			if out := routesReach(h.Routes, r, groups, at); out != routePasses {
				return out
			}
		case *caddyhttp.Invoke:
			// The named route runs with what follows invoke as its next.
			srv, _ := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
			if srv == nil || srv.NamedRoutes[h.Name] == nil {
				return routeAnswers
			}
			if out := routesReach(caddyhttp.RouteList{*srv.NamedRoutes[h.Name]}, r, groups, at); out != routePasses {
				return out
			}
		default:
			m, ok := h.(caddy.Module)
			if !ok || !passThrough[strings.TrimPrefix(string(m.CaddyModule().ID), "http.handlers.")] {
				return routeAnswers
			}
		}
	}
	return routePasses
}

func routesReach(routes caddyhttp.RouteList, r *http.Request, groups map[string]bool, at *reachedAt) routeOutcome {
	for i := range routes {
		route := &routes[i]
		if route.Group != "" && groups[route.Group] {
			continue
		}
		if match, err := route.MatcherSets.AnyMatchWithError(r); len(route.MatcherSets) > 0 && (!match || err != nil) {
			continue
		}
		if route.Group != "" {
			groups[route.Group] = true
		}
		if out := reachesJITAuth(route.Handlers, r, groups, at); out != routePasses {
			return out
		}
		if route.Terminal {
			return routeAnswers
		}
	}
	return routePasses
}

package caddymodule

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
type siteCleaner struct{ app *App }

// CaddyModule names the cleaner in Caddy's metrics and traces; it is not
// a module of its own and cannot be configured.
func (siteCleaner) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.jit_auth", New: func() caddy.Module { return new(Handler) }}
}

func (c *siteCleaner) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	stripRequest(r, c.app.identityKeys)
	caddyhttp.SetVar(r.Context(), varCleaned, true)
	if held := withholdModuleCookies(r.Header); held != "" {
		caddyhttp.SetVar(r.Context(), varHeldCookies, &heldCookies{line: held})
	}
	return next.ServeHTTP(w, r)
}

// installSiteCleaner puts a siteCleaner first in the top-level route of
// the server that h is being provisioned in, when that route matches on
// the host alone (a Caddyfile site) and every jit_auth handler inside it
// is in a narrower route. Caddy provisions a server's top-level routes
// one after the other and compiles them once all are provisioned; the
// route being provisioned is the first one whose handlers are not loaded
// yet, and Route.ProvisionHandlers appends the loaded handlers to the
// ones already there, so the cleaner stays first. A configuration the
// cleaner cannot cover (a top-level route with a path matcher, in JSON)
// keeps the load-time warning (warnPartialCoverage).
func (a *App) installSiteCleaner(ctx caddy.Context) {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil {
		return
	}
	for i := range srv.Routes {
		r := &srv.Routes[i]
		if len(r.HandlersRaw) == 0 {
			continue
		}
		if len(r.Handlers) == 1 {
			if _, ok := r.Handlers[0].(*siteCleaner); ok {
				return // this route, already cleaned
			}
		}
		if r.Handlers != nil {
			continue // provisioned already
		}
		// The route being provisioned, which holds h.
		if narrows(r.MatcherSetsRaw, r.MatcherSets) {
			return
		}
		var atts []attachment
		walkRoutes(caddyhttp.RouteList{*r}, scope{server: srv.Name()}, &atts)
		for _, at := range atts {
			if !at.narrowed {
				return // a jit_auth handler there sees every request
			}
		}
		r.Handlers = []caddyhttp.MiddlewareHandler{&siteCleaner{app: a}}
		a.handlers++ // a jit_auth handler later on a request must know it ran
		a.logger.Debug("jit_auth cleans every request of the site, its handlers being in narrower routes",
			zap.String("server", srv.Name()), zap.Int("route", i))
		return
	}
}

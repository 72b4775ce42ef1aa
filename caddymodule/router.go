package caddymodule

import (
	"net/http"
	"strings"
	"time"
)

// endpoint is one page or action under the path prefix. Adding an
// endpoint is adding one row to endpointTable; the method check, the
// wait for the store and the 404 are the router's, in one place.
type endpoint struct {
	// methods are the HTTP methods the endpoint answers; any other gets
	// 405 with an Allow header.
	methods []string
	// needsStore holds the request until the configuration's store has
	// started (see storeReady).
	needsStore bool
	// serve answers the request; name is what follows the endpoint's own
	// segment ("corp" in start/corp), empty if nothing does.
	serve func(h *Handler, w http.ResponseWriter, r *http.Request, name string)
}

// endpointTable maps the first path segment after the prefix to its
// endpoint.
var endpointTable = map[string]endpoint{
	"login":    {methods: []string{http.MethodGet, http.MethodHead}, serve: withoutName((*Handler).serveLoginPage)},
	"start":    {methods: []string{http.MethodGet, http.MethodHead}, serve: (*Handler).serveStart},
	"callback": {methods: []string{http.MethodGet, http.MethodPost}, needsStore: true, serve: (*Handler).serveCallback},
	"consent":  {methods: []string{http.MethodGet, http.MethodPost}, needsStore: true, serve: withoutName((*Handler).serveConsent)},
	"mfa":      {methods: []string{http.MethodGet, http.MethodPost}, needsStore: true, serve: withoutName((*Handler).serveMFA)},
	"logout":   {methods: []string{http.MethodGet, http.MethodHead, http.MethodPost}, needsStore: true, serve: withoutName((*Handler).serveLogout)},
	// health answers every method, as it always has: load balancers
	// probe with whatever they are configured to send.
	"health": {serve: withoutName(serveHealth)},
	// backchannel-logout/<connection> takes the provider's logout tokens
	// (backchannel.go).
	"backchannel-logout": {methods: []string{http.MethodPost}, needsStore: true, serve: (*Handler).serveBackchannelLogout},
	// logged-out is where the provider returns after logout there
	// (logout_provider.go).
	"logged-out": {methods: []string{http.MethodGet, http.MethodHead}, serve: withoutName((*Handler).serveLoggedOut)},
	// jwks.json publishes the keys that sign identity assertions
	// (assertion_keys.go).
	"jwks.json": {methods: []string{http.MethodGet, http.MethodHead}, serve: withoutName(serveJWKS)},
	// ready is health plus the store (readiness.go).
	"ready": {methods: []string{http.MethodGet, http.MethodHead}, serve: withoutName(serveReady)},
}

// serveEndpoint answers a request under the path prefix; rest is the
// path after the prefix.
func (h *Handler) serveEndpoint(w http.ResponseWriter, r *http.Request, rest string) {
	if uses := h.storeUses(); uses.begin() {
		defer uses.end()
	}
	w.Header().Set("Cache-Control", "no-store")
	segment, name, _ := strings.Cut(rest, "/")
	e, ok := endpointTable[segment]
	if !ok {
		renderError(w, http.StatusNotFound, "Not found", "There is no such sign-in page.", h.PathPrefix+"login")
		return
	}
	if e.methods != nil && !allowMethods(w, r, e.methods...) {
		return
	}
	if e.needsStore && !h.storeReady(w, r) {
		return
	}
	e.serve(h, w, r, name)
}

// withoutName adapts an endpoint that takes no name segment.
func withoutName(serve func(*Handler, http.ResponseWriter, *http.Request)) func(*Handler, http.ResponseWriter, *http.Request, string) {
	return func(h *Handler, w http.ResponseWriter, r *http.Request, _ string) { serve(h, w, r) }
}

// serveHealth tells a load balancer that this handler answers.
func serveHealth(_ *Handler, w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// startWait bounds how long a request that needs the user store waits
// for the configuration that serves it to finish starting.
var startWait = 5 * time.Second

// storeReady holds a request that needs the user store until the
// configuration that serves it has finished starting, and answers 503
// if that takes longer than startWait: Caddy starts its apps in no set
// order, so the http app can take requests a moment before the jit_auth
// app has opened the store, and a sign-in arriving in that moment
// should wait for it rather than fail.
func (h *Handler) storeReady(w http.ResponseWriter, r *http.Request) bool {
	if waitClosed(r.Context(), h.app.ready, startWait) {
		return true
	}
	if r.Context().Err() != nil {
		return false
	}
	w.Header().Set("Retry-After", "1")
	renderError(w, http.StatusServiceUnavailable, "Sign-in is starting",
		"This site is starting up. Try again in a moment.", "")
	return false
}

func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	renderError(w, http.StatusMethodNotAllowed, "Method not allowed", "This sign-in page does not accept "+r.Method+" requests.", "")
	return false
}

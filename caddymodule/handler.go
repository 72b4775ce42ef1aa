package caddymodule

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler protects a site or route: it is one application. Requests
// without a valid session are sent to log in through one of the
// application's connections; requests with one continue to the next
// handler carrying identity headers and the {http.auth.user.*}
// placeholders. Client-supplied copies of the identity headers are
// always removed first.
//
// Connections, the store and the cookie keys are configured in the
// global jit_auth app.
type Handler struct {
	// ApplicationName attaches a named application of the jit_auth app
	// (see App.Applications). Leave it empty to configure the application
	// inline with the fields below; setting both is an error.
	ApplicationName string `json:"application,omitempty"`

	// Application is the inline application: connections, headers,
	// allow rules and second factor.
	Application

	// PathPrefix is where the login, callback and logout endpoints live.
	// Default: /.jitauth/
	PathPrefix string `json:"path_prefix,omitempty"`

	// MatcherSetsRaw limits the login requirement to the requests these
	// matcher sets match (any set; every matcher within a set), as a route's
	// "match" would, and also when they match a reading of the request that
	// an upstream may make and Caddy does not: of its path (";" parameters
	// dropped, "\" as "/", trailing dots and spaces dropped, dot segments
	// unresolved, the path an X-Original-URL field names), of its host
	// (without a trailing dot) or of its method (the one an
	// X-HTTP-Method-Override field or _method parameter names, in the
	// query or in a POST's body; the method upper-cased; GET for HEAD);
	// see pathreadings.go and bodymethod.go. Requests it does not match
	// go on to the next handler without a login and without identity
	// headers, but still cleaned: client-supplied identity headers and
	// the module's cookies are removed from every request this handler
	// sees. So protect part of a site with
	// this field on a route that every request of the site passes through,
	// not with a matcher on the route. A handler inside a subroute (a
	// Caddyfile handle block) whose top-level route matches on the host
	// alone is covered too: that route gets a cleaning step first (see
	// installSiteCleaner; in a site without a host, every route of its
	// server, coverHostlessServer). A top-level route with a path matcher keeps the
	// handler from running at all on the other requests, and they reach the
	// upstream with whatever identity headers the client sent. The endpoints
	// under path_prefix are served either way.
	// The Caddyfile form `jit_auth /admin/*` fills this field.
	MatcherSetsRaw caddyhttp.RawMatcherSets `json:"match,omitempty" caddy:"namespace=http.matchers"`

	app         *App
	conns       []*Connection
	headers     []headerSpec
	stripKeys   []string
	matcherSets caddyhttp.MatcherSets
	assertion   *assertionSigner
	bearer      *bearerGate
	logger      *zap.Logger
	// activityKey names this application's last activity in a session
	// (Session.Active), when it has an idle timeout.
	activityKey string
	// touchWarned spaces the warnings that a session's cookie could not
	// be re-issued with its last activity (touch): each request of that
	// session would write one. A pointer: a Handler is copied (mounted),
	// and the copies space their warnings together.
	touchWarned *logSpacing
	// peers counts the jit_auth handlers of h's server (App.alone).
	peers *int
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.jit_auth",
		New: func() caddy.Module { return new(Handler) },
	}
}

const defaultPathPrefix = "/.jitauth/"

// Provision links the application to the jit_auth app's connections and
// prepares the header rules.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	appIface, err := ctx.App("jit_auth")
	if err != nil {
		return fmt.Errorf("loading the jit_auth app: %v", err)
	}
	h.app = appIface.(*App)
	if len(h.app.Connections) == 0 {
		return fmt.Errorf("jit_auth: no connections are configured; add a jit_auth block with at least one connection to the global options")
	}

	label := "the inline jit_auth application of this route"
	if h.ApplicationName != "" {
		named, ok := h.app.Applications[h.ApplicationName]
		if !ok || named == nil {
			declared := "none is declared"
			if len(h.app.Applications) > 0 {
				declared = "declared: " + strings.Join(sortedKeys(h.app.Applications), ", ")
			}
			hint := ""
			if _, isConn := h.app.Connections[h.ApplicationName]; isConn {
				hint = fmt.Sprintf(" (to offer the connection %s, write jit_auth { connections %s })", h.ApplicationName, h.ApplicationName)
			}
			return fmt.Errorf("jit_auth: no application named %q%s; declare it in the global jit_auth block (application %s { … }); %s",
				h.ApplicationName, hint, h.ApplicationName, declared)
		}
		if len(h.Connections)+len(h.Headers)+len(h.Allow)+len(h.Bearer) > 0 || h.MFA != nil || h.Assertion != nil {
			return fmt.Errorf("jit_auth: application %q is attached by name, so this route cannot also set connections, headers, allow, mfa, assertion or bearer; move them into the application", h.ApplicationName)
		}
		h.Application = *named
		label = fmt.Sprintf("application %q", h.ApplicationName)
	} else if err := h.Application.validate(h.app, label); err != nil {
		// Named applications were validated by the app.
		return fmt.Errorf("jit_auth: %v", err)
	}
	if err := h.app.checkInterconnections(ctx, h); err != nil {
		return fmt.Errorf("jit_auth: %v", err)
	}

	if h.PathPrefix == "" {
		h.PathPrefix = defaultPathPrefix
	}
	if !strings.HasSuffix(h.PathPrefix, "/") {
		h.PathPrefix += "/"
	}

	h.conns = h.conns[:0]
	for _, n := range h.offered(h.app) {
		h.conns = append(h.conns, h.app.Connections[n])
	}

	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	h.headers, h.stripKeys = buildHeaderRules(h.Headers)
	if h.IdleTimeout > 0 {
		h.activityKey = h.app.activityKeyFor(h, srv)
		h.touchWarned = new(logSpacing)
	}
	if len(h.Bearer) > 0 {
		h.bearer = newBearerGate(h.app, h.Bearer)
	}
	if h.Assertion != nil {
		_, paths := matcherStrings(h.MatcherSetsRaw, nil)
		h.assertion = newAssertionSigner(h.Assertion, h.app.assertionKeys, paths)
		h.stripKeys = mergeKeys(h.stripKeys, []string{headerKey(h.assertion.header)})
		for _, name := range h.Assertion.Claims {
			h.app.sessionAttributes[name] = true
		}
	}
	// The default assertion header is the module's whether or not this
	// configuration signs assertions: after a reload that removed them,
	// the keys stay published while the assertions they signed may be
	// valid (assertionKeys.drainingAt), so a client's copy of one (from
	// an upstream's request log) would still verify upstream as its user.
	h.app.identityKeys = mergeKeys(mergeKeys(h.app.identityKeys, h.stripKeys), []string{headerKey(defaultAssertionHeader)})
	h.app.ownEndpoints(srv, h)
	h.peers = h.app.placeHandler(srv)
	h.app.installSiteCleaner(srv)
	h.app.coverHostlessServer(ctx, srv)
	h.app.coverInvokingSites(ctx, srv, h)
	h.app.cleanErrorRoutes(ctx, srv)

	if h.MatcherSetsRaw != nil {
		mods, err := ctx.LoadModule(h, "MatcherSetsRaw")
		if err != nil {
			return fmt.Errorf("jit_auth: loading the match field's matchers: %v", err)
		}
		if err := h.matcherSets.FromInterface(mods); err != nil {
			return fmt.Errorf("jit_auth: match: %v", err)
		}
	}
	return nil
}

// Validate checks the route's own settings; the application's were
// checked in Provision, where the app's connections are known.
func (h *Handler) Validate() error {
	if !strings.HasPrefix(h.PathPrefix, "/") || strings.ContainsAny(h.PathPrefix, "?#*{} ") {
		return fmt.Errorf("jit_auth: path_prefix %q must be a plain path starting with /", h.PathPrefix)
	}
	return nil
}

// buildHeaderRules merges the defaults with the configured overrides.
// Names compare as upstreams read them (headerKey: any letter case, '_'
// or '.' for '-'), so `header -remote_email` drops Remote-Email and
// `header remote_user …` replaces Remote-User rather than adding a
// second field a CGI upstream reads as the same variable.
func buildHeaderRules(overrides map[string]string) ([]headerSpec, []string) {
	specs := make([]headerSpec, 0, len(defaultHeaders)+len(overrides))
	strip := map[string]bool{}
	defaults := map[string]string{}
	overridden := map[string]bool{}
	for n := range overrides {
		overridden[headerKey(n)] = true
	}
	for _, d := range defaultHeaders {
		strip[headerKey(d.name)] = true
		defaults[headerKey(d.name)] = d.name
		if !overridden[headerKey(d.name)] {
			specs = append(specs, d)
		}
	}
	names := make([]string, 0, len(overrides))
	for n := range overrides {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		key := headerKey(n)
		strip[key] = true
		if overrides[n] != "" {
			name, isDefault := defaults[key]
			if !isDefault {
				name = textproto.CanonicalMIMEHeaderKey(n)
			}
			specs = append(specs, headerSpec{name: name, field: fieldTemplate, template: overrides[n]})
		}
	}
	keys := make([]string, 0, len(strip))
	for k := range strip {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return specs, keys
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
//
// The branches that may use the store (the endpoints, a bearer token)
// count as a use of it while they run (storeUses), so that a reload
// closes the store after them rather than under them. A request with a
// session does not: it never touches the store, and counting it would
// put two writes to one shared counter on every request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.cleanRequest(r)

	if strings.HasPrefix(r.URL.Path, h.PathPrefix) {
		h.mounted(r).serveEndpoint(w, r, r.URL.Path[len(h.PathPrefix):])
		return nil
	}
	if e := h.rewrittenEndpoint(r); e != nil {
		h.serveEndpoint(w, e, e.URL.Path[len(h.PathPrefix):])
		return nil
	}
	if h.matcherSets != nil {
		match, err := h.matchesAnyReading(r)
		if err != nil {
			// Caddy's handle_errors routes get the request next, and may
			// forward it: the module's cookies go no further than on any
			// request passed on (S16).
			h.withhold(r)
			return err
		}
		if !match {
			return h.passOn(w, r, next)
		}
	}

	if s, answered := h.serveBearer(w, r); answered {
		if s == nil {
			return nil
		}
		return h.forward(w, r, next, s)
	}
	s, checked := h.app.sessions.open(r, h.offers)
	if !checked {
		renderSessionsUnchecked(w)
		return nil
	}
	if s != nil && !h.idle(s) {
		if !h.admits(s) {
			renderNotAdmitted(w)
			return nil
		}
		if !s.MFA && h.mfaRequired(s) {
			h.mounted(r).secondFactorNeeded(w, r, s)
			return nil
		}
		return h.forward(h.touch(w, r, s), r, next, s)
	}
	h.mounted(r).unauthenticated(w, r)
	return nil
}

// mounted is h as a browser sees it when a rewrite before h stripped a
// prefix from the request's path (handle_path /app/*, uri strip_prefix):
// h reads its endpoints without the prefix, but the browser must be sent
// to them, and back to the page it asked for, with it. It returns h
// itself when nothing was stripped; a copy otherwise, whose PathPrefix
// carries the prefix, for the URLs its answer builds.
func (h *Handler) mounted(r *http.Request) *Handler {
	m := mountOf(r)
	if m == "" {
		return h
	}
	c := *h
	c.PathPrefix = m + h.PathPrefix
	return &c
}

// mountOf is the prefix that rewrites before this handler stripped from
// r's path: what the original request's path has in front of r's, or ""
// when it has nothing there (no rewrite, or one that did not strip a
// prefix). It goes into URLs the browser follows, so it is "" unless it
// is a plain path of safe segments.
func mountOf(r *http.Request) string {
	orig := originalURL(r)
	if orig == nil {
		return ""
	}
	op, cp := orig.EscapedPath(), r.URL.EscapedPath()
	if len(op) <= len(cp) || !strings.HasSuffix(op, cp) || !strings.HasPrefix(cp, "/") {
		return ""
	}
	m := op[:len(op)-len(cp)]
	if safe, ok := safeReturnPath(m); !ok || safe != m || strings.HasSuffix(m, "/") || strings.ContainsAny(m, "?#;%") {
		return ""
	}
	return m
}

// rewrittenEndpoint is r as the browser sent it, when it asked for one
// of h's endpoints and a rewrite before h (try_files {path} /index.html,
// rewrite, uri) took it to a path that is none: the endpoint is answered
// then, with the URL the browser sent, or a single-page app could never
// sign in (the start endpoint would be a protected page that sends the
// browser to the start endpoint again). It returns nil otherwise.
//
// Only h's own endpoints at the root of the site count: the request
// reached h, so Caddy's routes send the browser's h.PathPrefix requests
// to h. A prefix in front of them (/app/.jitauth/…) is not read as a
// mount: once a rewrite replaced the path, nothing tells h's mount from
// another application's, and a prefix that rewrites only stripped
// (handle_path) leaves the routed path an endpoint anyway (mounted).
// The request is answered, never forwarded, so the match field keeps
// reading the path Caddy routes on (S10).
//
// It costs an authenticated request one context lookup: a signed-in
// browser must still reach sign-out and a new sign-in.
func (h *Handler) rewrittenEndpoint(r *http.Request) *http.Request {
	orig := originalURL(r)
	if orig == nil || !strings.HasPrefix(orig.Path, h.PathPrefix) {
		return nil
	}
	e := r.WithContext(r.Context()) // a shallow copy: r goes on unchanged
	u := *orig                      // Caddy's copy, shared by every handler
	e.URL = &u
	e.RequestURI = u.RequestURI()
	return e
}

// requestedURI is the path and query the browser asked for, before any
// rewrite (handle_path's prefix strip, try_files, rewrite, uri): where it
// comes back to after signing in. Callers check it with safeReturnPath.
func requestedURI(r *http.Request) string {
	if orig := originalURL(r); orig != nil {
		return orig.RequestURI()
	}
	return r.URL.RequestURI()
}

// originalURL is the URL of r as the browser sent it, before any rewrite
// (Caddy's original request), or nil outside Caddy. It is Caddy's, shared
// by every handler: read it, copy it to change it.
func originalURL(r *http.Request) *url.URL {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok {
		return orig.URL
	}
	return nil
}

// forward sends an admitted request on with s's identity: the headers,
// the placeholders and, when configured, the signed assertion.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, s *Session) error {
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	h.setIdentity(r, repl, s)
	if h.assertion != nil {
		if err := h.assertion.set(r, s); err != nil {
			// An upstream that relies on the assertion must not get
			// the request without it.
			h.logger.Error("signing the identity assertion", zap.Error(err))
			renderError(w, http.StatusServiceUnavailable, "Temporarily unavailable", "Your identity could not be vouched for right now. Try again in a moment.", "")
			return nil
		}
	}
	return h.passOn(w, r, next)
}

// session returns the request's valid session for this application, or
// nil. A missing, tampered, expired or revoked cookie, or one issued
// through a connection this application does not offer, is no session.
func (h *Handler) session(r *http.Request) *Session {
	return h.app.sessions.load(r, h.offers)
}

// renderSessionsUnchecked answers a request whose session cannot be
// checked yet (sessions.admitted): as when the store is unavailable,
// since letting it through could let a logged-out session in, and
// sending it to sign in would only bring a session that cannot be
// checked either.
func renderSessionsUnchecked(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	renderError(w, http.StatusServiceUnavailable, "Temporarily unavailable",
		"This site cannot check sessions right now. Try again in a moment.", "")
}

// offers reports whether this application offers the named connection.
func (h *Handler) offers(name string) bool { return h.connection(name) != nil }

// connection returns the named connection if this application offers it.
func (h *Handler) connection(name string) *Connection {
	for _, c := range h.conns {
		if c.name == name {
			return c
		}
	}
	return nil
}

// unauthenticated answers a request that has no session: a browser
// navigation goes to log in; anything else (XHR, fetch, API clients,
// non-GET methods) gets 401 with a small JSON body and no redirect.
func (h *Handler) unauthenticated(w http.ResponseWriter, r *http.Request) {
	login := h.loginURL(requestedURI(r))
	if isBrowserNavigation(r) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, login, http.StatusFound)
		return
	}
	if isFormSubmission(r) {
		// A form sent after the session ended: a redirect would drop
		// what was typed and JSON would show as raw text, so a page
		// says what happened and leads back, after signing in, to the
		// page the form was on.
		renderPage(w, http.StatusUnauthorized, pageData{Title: "Sign in again",
			Message: "Your session has ended, so what you just sent was not saved. Sign in again, then send it again.",
			Link:    h.loginURL(sameOriginReferrer(r)), LinkLabel: "Sign in", Status: http.StatusUnauthorized})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if h.bearer != nil {
		// RFC 9110 and RFC 6750: a 401 names the scheme that would do.
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q`, origin(r)))
	}
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = fmt.Fprintf(w, `{"error":"authentication required","login_url":%q}`+"\n", login)
}

// loginURL is where a browser goes to log in and come back to returnTo:
// the login page, or straight to the only connection.
func (h *Handler) loginURL(returnTo string) string {
	q := ""
	if rd, ok := safeReturnPath(returnTo); ok && rd != "/" {
		q = "?rd=" + url.QueryEscape(rd)
	}
	if len(h.conns) == 1 {
		return h.PathPrefix + "start/" + h.conns[0].name + q
	}
	return h.PathPrefix + "login" + q
}

// isBrowserNavigation tells a top-level page load from a script or API
// call: only GET/HEAD that accept HTML, not marked as XHR, and (when the
// browser says) in navigate mode.
func isBrowserNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// isFormSubmission tells a form the browser sends as a top-level
// navigation (a POST with Sec-Fetch-Mode navigate, which only browsers
// set) from an API call.
func isFormSubmission(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead &&
		r.Header.Get("Sec-Fetch-Mode") == "navigate" && strings.Contains(r.Header.Get("Accept"), "text/html")
}

// sameOriginReferrer is the path and query of the page r came from when
// it is on this site, else "".
func sameOriginReferrer(r *http.Request) string {
	ref, err := url.Parse(r.Referer())
	if err != nil || ref.Scheme+"://"+ref.Host != origin(r) {
		return ""
	}
	return ref.RequestURI()
}

// idle reports whether s has made no request to this application for its
// idle timeout (the request is then treated as having no session). Each
// application keeps its own last activity in the session (Session.Active),
// so a request to another application on the host, which shares the
// cookie, does not keep this one's session alive.
func (h *Handler) idle(s *Session) bool {
	if h.activityKey == "" {
		return false
	}
	idle := int64(time.Duration(h.IdleTimeout) / time.Second)
	now := time.Now()
	if now.Unix()-s.lastActive(h.activityKey) < idle {
		return false
	}
	if h.app.sessions.firstIdle(h.activityKey, s, now) {
		h.emit(sessionEvent(eventSessionIdle, s))
	}
	return true
}

// touch records a request to this application in s, for its idle timeout:
// the cookie is re-issued with the new last activity at most every eighth
// of the timeout, so the cost per request is one comparison. Only a
// request the application admits counts. It returns the writer the
// request goes on with: w, or when the cookie was re-issued, w keeping
// shared caches from storing the answer (privateBelow).
func (h *Handler) touch(w http.ResponseWriter, r *http.Request, s *Session) http.ResponseWriter {
	if h.activityKey == "" {
		return w
	}
	idle := int64(time.Duration(h.IdleTimeout) / time.Second)
	now := time.Now().Unix()
	if now-s.lastActive(h.activityKey) < max(idle/8, 1) {
		return w
	}
	if err := h.app.sessions.issue(w, r, s.activeAt(h.activityKey, now)); err != nil {
		// The session is admitted anyway, and asks again at its next
		// request: spaced, or each of them writes a line.
		if skipped, ok := h.touchWarned.due(time.Now()); ok {
			h.logger.Warn("re-issuing the session cookie with its last activity", zap.Error(err),
				zap.Uint64("not_logged_since_last", skipped))
		}
		return w
	}
	// The cookie goes out on the application's own answer, which the
	// application may mark for shared caches (public, s-maxage): a
	// cache in front that stores answers with Set-Cookie would hand
	// this session to whoever asks for the page next.
	return privateBelow(w)
}

// activeAt is a copy of s with its last activity on the application
// named key at nowUnix; s is shared through the session cache, so it is
// not changed.
func (s *Session) activeAt(key string, nowUnix int64) *Session {
	c := *s
	c.Active = maps.Clone(s.Active)
	if c.Active == nil {
		c.Active = map[string]int64{}
	}
	c.Active[key] = nowUnix
	return &c
}

// activityKeyFor names h's application's last activity in a session: its
// name (one application, however many routes attach it), or for an
// inline application a digest of its configuration, its match field and
// its site (siteOf), with a count when an identical one came before in
// the same server: two inline applications are two, however alike. It
// is the same on every instance and across reloads while the
// configuration stays the same; an edited application starts a new
// clock, which counts from the sign-in.
func (a *App) activityKeyFor(h *Handler, srv *caddyhttp.Server) string {
	if h.ApplicationName != "" {
		return "n:" + h.ApplicationName
	}
	cfg, _ := json.Marshal(struct {
		App   Application              `json:"a"`
		Match caddyhttp.RawMatcherSets `json:"m"`
		Site  string                   `json:"s"`
	}{h.Application, h.MatcherSetsRaw, siteOf(srv)})
	sum := sha256.Sum256(cfg)
	key := base64.RawURLEncoding.EncodeToString(sum[:8])
	if a.inlineActivity == nil {
		a.inlineActivity = map[string]int{}
	}
	// Counted per server, whose routes are provisioned in their order;
	// the servers are provisioned in no fixed order, so a count across
	// them (one site on two ports) could swap the keys at a reload.
	counted := key + "\x00" + serverListeners(srv)
	n := a.inlineActivity[counted]
	a.inlineActivity[counted] = n + 1
	if n > 0 {
		key += "." + strconv.Itoa(n)
	}
	return key
}

// siteOf names the site whose handler srv is provisioning by the hosts
// its top-level route matches: every instance serving the site shares
// them, whatever address each listens on (two on one host, on two ports;
// a bind of each host's own address), and adding another site leaves
// them alone. Neither holds for the server's name (the Caddyfile numbers
// servers srv0, srv1, … in the order of their addresses) nor its
// listener addresses, so either would find the application's users idle
// when they moved to another instance or after such a reload. A site
// without hosts is named by its server's listener addresses.
func siteOf(srv *caddyhttp.Server) string {
	if route := routeInProvision(srv); route != nil {
		if hosts, _ := routeMatchers(route); len(hosts) > 0 {
			return "h:" + strings.Join(hosts, ",")
		}
	}
	return serverListeners(srv)
}

// serverListeners names srv by its listener addresses, which no other
// server of the configuration shares.
func serverListeners(srv *caddyhttp.Server) string {
	if srv == nil {
		return ""
	}
	return strings.Join(srv.Listen, ",")
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

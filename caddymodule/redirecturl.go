package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/idna"

	"github.com/jitauth/caddy-jitauth/connector"
)

// A connection's fixed redirect_url works only for the site on its
// origin. A login keeps its state in a flow cookie that the browser
// holds for the site where the login started, under a name that depends
// on the scheme (__Host- on HTTPS): a provider that sends the browser
// back to another host never brings that cookie along, one on another
// scheme finds it under the other name, and one on another port reaches
// another site of Caddy's, or none. Every such login would end on "Sign-in
// expired" after a round trip to the provider, through no fault of the
// user. So loading refuses a site that offers the connection when the
// redirect_url is another site of the configuration, and a login started
// on any other origin is stopped before the provider as misconfigured.

// canonicalOrigin is the origin of the absolute URL raw as browsers
// compare origins: scheme and host in lower case, without the scheme's
// default port. It is "" when raw has no host.
func canonicalOrigin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), asciiHost(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// asciiHost is host as browsers send it in Host: lower case, and an
// internationalised name in its ASCII form (bücher.example is
// xn--bcher-kva.example), so a redirect_url written as the address bar
// shows it is the site it names.
func asciiHost(host string) string {
	if a, err := idna.Lookup.ToASCII(host); err == nil {
		host = a
	}
	return strings.ToLower(host)
}

// redirectURLElsewhere answers a login started on a site that is not
// on the origin of conn's redirect_url, and reports whether it did: the
// misconfiguration page, and a WARN saying what to change, instead of
// a round trip to the provider that cannot succeed. The site's origin is
// the browser's as far as Caddy knows it: the request's scheme and Host,
// or what trusted_proxies forward.
func (h *Handler) redirectURLElsewhere(w http.ResponseWriter, r *http.Request, conn *Connection) bool {
	if conn.redirectOrigin == "" {
		return false
	}
	site := canonicalOrigin(origin(r))
	if site == conn.redirectOrigin {
		return false
	}
	mc := &connector.Misconfiguration{
		Step: "start",
		Said: "redirect_url " + conn.RedirectURL + " is not on the origin of the site the login started on, " + site,
		Fix: fmt.Sprintf("its redirect_url is another site's, so logins started on %s come back there without their state and fail: "+
			"remove redirect_url so that each site uses its own callback (register %s at the provider), or offer this site a connection of its own; "+
			"behind a proxy, list it in trusted_proxies so that the site's origin is the one browsers use (X-Forwarded-Host, X-Forwarded-Proto)",
			site, h.ownCallbackURL(r, conn)),
	}
	// The site's origin is the request's Host (Caddy's host matcher
	// ignores its port; a site without a host takes any name), which any
	// client writes: an ERROR telling operators to remove a correct
	// redirect_url was anyone's to log at will. A WARN says where the
	// origin came from, and the fix holds if browsers do reach it. Any
	// client can repeat it with every request, so it is spaced out, and
	// so is the failed login's audit line and event.
	h.emitSpaced(&conn.elsewhereAudited, event{kind: eventLoginFailed, connection: conn.name, err: mc})
	if skipped, ok := conn.elsewhereWarned.due(time.Now()); ok {
		h.logger.Warn("sign-in started on an origin that is not redirect_url's; the origin is the one the request's Host names (or what trusted_proxies forward), which any client can write: if browsers reach the site there, the connection is misconfigured",
			zap.String("connection", conn.name), zap.String("step", mc.Step), zap.String("site", site), zap.String("redirect_url", conn.RedirectURL),
			zap.String("fix", fmt.Sprintf("connection %q: %s", conn.name, mc.Fix)), zap.Uint64("not_logged_since_last", skipped))
	}
	renderError(w, http.StatusInternalServerError, "Sign-in misconfigured",
		"This sign-in is misconfigured. Tell the site's administrator.", "")
	return true
}

// checkRedirectURLs refuses, at load, a site that offers a connection
// whose redirect_url is on another site of this configuration: every
// login there would fail (see above). A redirect_url on no site of the
// configuration may be the public name a proxy in front forwards to an
// internal one, so only a login tells (redirectURLElsewhere); so does a
// site without a host (any host may reach it), and a redirect_url on the
// site's host but another scheme or port (behind a proxy, the listener's
// port and scheme are not the browser's).
func (a *App) checkRedirectURLs(atts []attachment) error {
	var errs []string
	for _, name := range sortedKeys(a.Connections) {
		c := a.Connections[name]
		if c.RedirectURL == "" {
			continue
		}
		u, err := url.Parse(c.RedirectURL)
		if err != nil {
			continue // checkPolicy refused it
		}
		host := []string{asciiHost(u.Hostname())}
		var there []string
		for _, at := range atts {
			if knownHosts(at.hosts) && hostsMeet(at.hosts, host) && !slices.Contains(there, at.where) {
				there = append(there, at.where)
			}
		}
		if len(there) == 0 {
			continue
		}
		for _, at := range atts {
			if !knownHosts(at.hosts) || hostsMeet(at.hosts, host) {
				continue
			}
			ap := at.app
			if at.name != "" {
				ap = a.Applications[at.name]
			}
			if ap == nil || !slices.Contains(ap.offered(a), name) || takesBearer(ap, name) {
				// An API site that takes the connection's tokens must
				// offer it, and needs no sign-in of its own; one started
				// there anyway is stopped as misconfigured.
				continue
			}
			msg := fmt.Sprintf("connection %q: its redirect_url %s is on the site %s, but the jit_auth application at %s offers the connection too, "+
				"and every sign-in there would come back to the other site without the login's state, and fail; "+
				"remove redirect_url so that each site uses its own callback (register each site's https://<site>%scallback/%s at the provider), "+
				"or give that site a connection of its own in its connections",
				name, c.RedirectURL, strings.Join(there, ", "), at.where, defaultPathPrefix, name)
			if !slices.Contains(errs, msg) {
				errs = append(errs, msg)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// takesBearer reports whether ap accepts bearer tokens of connection.
func takesBearer(ap *Application, connection string) bool {
	return slices.ContainsFunc(ap.Bearer, func(b BearerConfig) bool { return b.Connection == connection })
}

// knownHosts reports whether hosts names the hosts a site serves: not a
// site without a host matcher (empty), nor a named route or
// handle_errors (nil), nor a placeholder any host may fill.
func knownHosts(hosts []string) bool {
	return len(hosts) > 0 && !anyHost(hosts)
}

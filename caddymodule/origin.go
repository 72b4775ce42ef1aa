package caddymodule

import (
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// fromTrustedProxy reports whether Caddy's trusted_proxies vouch for the
// peer. Only then are X-Forwarded-Host and -Proto believed (S3).
func fromTrustedProxy(r *http.Request) bool {
	trusted, _ := caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	return trusted
}

// isHTTPS reports whether the browser reached us over HTTPS.
func isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	return fromTrustedProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// requestHost is the host (with port) the browser asked for.
func requestHost(r *http.Request) string {
	if fromTrustedProxy(r) {
		if fh := r.Header.Get("X-Forwarded-Host"); fh != "" && validHost(fh) {
			return fh
		}
	}
	return r.Host
}

// validHost refuses anything that is not a bare host[:port].
func validHost(h string) bool {
	if h == "" || len(h) > 255 || strings.ContainsAny(h, "/\\@?#, \t\r\n") {
		return false
	}
	u, err := url.Parse("http://" + h)
	return err == nil && u.Host == h
}

// hostname strips the port from host. A host without a colon has no port
// to strip, and SplitHostPort would allocate its error to say so: a
// plain-HTTP request on the default port asks this on every request.
func hostname(host string) string {
	i := strings.IndexByte(host, ':')
	if i < 0 {
		return host
	}
	if strings.IndexByte(host[i+1:], ':') < 0 && strings.IndexByte(host, '[') < 0 && strings.IndexByte(host, ']') < 0 {
		// name:port or IPv4:port: what SplitHostPort answers, without
		// its work for brackets (FuzzHostname).
		return host[:i]
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// cookieSecure reports whether cookies for r must be Secure: always,
// except for plain-HTTP development on a loopback host.
// It is isHTTPS(r) || !isLoopbackHost(hostname(requestHost(r))), asking
// Caddy whether the peer is a trusted proxy once instead of twice: every
// authenticated request asks, for the session cookie's name.
//
// Only a forwarded scheme or host can change the answer, so Caddy is
// asked about the peer only when the request carries one: a request
// without either (a browser's, straight to Caddy) costs no request
// variable lookup. The fields are read as Header.Get reads them: the
// first value under the canonical name.
func cookieSecure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host := r.Host
	proto, forwardedHost := r.Header["X-Forwarded-Proto"], r.Header["X-Forwarded-Host"]
	if (len(proto) > 0 || len(forwardedHost) > 0) && fromTrustedProxy(r) {
		if len(proto) > 0 && strings.EqualFold(proto[0], "https") {
			return true
		}
		if len(forwardedHost) > 0 && forwardedHost[0] != "" && validHost(forwardedHost[0]) {
			host = forwardedHost[0]
		}
	}
	return !isLoopbackHost(hostname(host))
}

// origin is scheme://host of the site the browser is on.
func origin(r *http.Request) string {
	scheme := "http"
	if isHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + requestHost(r)
}

// servedOrigin is origin(r) with the port of the listener that took the
// connection in place of the one the client wrote in its Host header:
// Caddy's host matcher ignores the port, so a request to one site may
// name another site's port. The host is the one the site's matcher
// accepted. From a trusted proxy, the host and scheme it forwards are
// believed as they are (S3).
func servedOrigin(r *http.Request) string {
	if fromTrustedProxy(r) {
		return origin(r)
	}
	scheme, defaultPort := "http", "80"
	if r.TLS != nil {
		scheme, defaultPort = "https", "443"
	}
	// Lower case, as the host matcher compares.
	host := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(hostname(r.Host), "["), "]"))
	port := listenerPort(r)
	if port == "" || port == defaultPort {
		if strings.IndexByte(host, ':') >= 0 {
			host = "[" + host + "]"
		}
		return scheme + "://" + host
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// listenerPort is the local port of r's connection, or "" when it has
// none (a Unix socket).
func listenerPort(r *http.Request) string {
	switch a := r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.TCPAddr:
		return strconv.Itoa(a.Port)
	case *net.UDPAddr:
		return strconv.Itoa(a.Port)
	case net.Addr:
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			return p
		}
	}
	return ""
}

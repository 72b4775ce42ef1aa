package caddymodule

import (
	"net"
	"net/http"
	"net/url"
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
	if strings.IndexByte(host, ':') < 0 {
		return host
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
func cookieSecure(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host := r.Host
	if fromTrustedProxy(r) {
		if strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
			return true
		}
		if fh := r.Header.Get("X-Forwarded-Host"); fh != "" && validHost(fh) {
			host = fh
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

package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
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
//     under /admin/.
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
	for _, p := range differentReadings(r) {
		if match, err := h.matcherSets.AnyMatchWithError(withPath(r, p)); match || err != nil {
			return match, err
		}
	}
	return false, nil
}

// differentReadings are r's other readings (otherReadings) that differ
// from Caddy's. A path without ";", "\\" or "%" and with no segment
// ending in "." (which dot segments do too) reads the same every way,
// and is let through without reading it again: that is almost every
// request, and the cleaning step asks on each request of its site.
func differentReadings(r *http.Request) []string {
	escaped := r.URL.EscapedPath()
	if !strings.ContainsAny(escaped, `;\%`) && !strings.Contains(escaped, "./") && !strings.HasSuffix(escaped, ".") {
		return nil
	}
	var readings []string
	for _, p := range otherReadings(escaped) {
		if p != r.URL.Path {
			readings = append(readings, p)
		}
	}
	return readings
}

// withPath is a shallow copy of r for matchers to read with path p.
func withPath(r *http.Request, p string) *http.Request {
	u := *r.URL
	u.Path, u.RawPath = p, ""
	alt := r.WithContext(r.Context())
	alt.URL = &u
	return alt
}

// maxDecodes bounds how many times otherReadings decodes a path: a
// stack that decodes twice is known; three covers one more layer.
const maxDecodes = 3

// otherReadings returns the paths an upstream may read the escaped
// request path as, besides Caddy's reading: with dot segments resolved
// (as the path is cleaned) and, when the path has dot segments, with
// each kept as a segment of its own ("_"), for routers that match
// before resolving them; a path with control characters is read both
// cut at the first NUL and without them. It returns nil for a path that
// every reading takes alike.
func otherReadings(escaped string) []string {
	if !strings.ContainsAny(escaped, `;\%.`) {
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
// returns p so read, the same with dot segments kept as "_", and whether
// there were any.
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
	return strings.Join(segs, "/"), strings.Join(lit, "/"), dots
}

func appendNew(list []string, s string) []string {
	for _, e := range list {
		if e == s {
			return list
		}
	}
	return append(list, s)
}

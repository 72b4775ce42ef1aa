package caddymodule

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Session is what the sealed session cookie says: who is logged in,
// through which connection, and until when. It carries everything the
// identity headers need, so an authenticated request never reads the
// store. JSON keys are short because the cookie travels on every request.
type Session struct {
	// ID identifies the session for server-side revocation (logout).
	ID string `json:"sid"`
	// UserID is the local user's ID; empty when the connection has JIT
	// off and nothing about the user is stored.
	UserID string `json:"uid,omitempty"`
	// Holder is, when the connection has JIT off, the ID of the local
	// user whose name the session carries (the same verified email, a
	// user of a connection with JIT on; provisioner.Result.Holder): the
	// session ends when that user is disabled, deleted or signed out
	// everywhere, as the user's own sessions do.
	Holder   string `json:"hid,omitempty"`
	Username string `json:"u"`
	Email    string `json:"e,omitempty"`
	// EmailVerified records that the provider asserted Email verified.
	EmailVerified bool     `json:"ev,omitempty"`
	Name          string   `json:"n,omitempty"`
	Groups        []string `json:"g,omitempty"`
	// Roles are the local user's roles, from every source.
	Roles []string `json:"rl,omitempty"`
	// Connection is the name of the connection the user logged in through.
	Connection string `json:"c"`
	// Subject is the user's identifier at the provider.
	Subject string `json:"s"`
	// Attributes are the mapped attributes an application's assertion
	// carries as claims (only those named in some assertion's claims).
	Attributes map[string]string `json:"a,omitempty"`
	// MFA records that the user presented the second factor in this
	// session. Applications that require one accept the session only
	// then; before, it reaches nothing but the MFA page (S11).
	MFA bool `json:"m,omitempty"`
	// IssuedAt and ExpiresAt are Unix seconds.
	IssuedAt  int64 `json:"iat"`
	ExpiresAt int64 `json:"exp"`
	// AuthAt is when the provider's answer this session comes from was
	// verified, kept only when earlier than IssuedAt (a login that waited
	// on the consent or username page). Logouts and sign-outs count from
	// it: one recorded while the login waited ends the session, also
	// where it reaches an instance only after the session was issued.
	AuthAt int64 `json:"aat,omitempty"`
	// ProviderSID is the provider's session ID (the ID token's sid), kept
	// when the connection takes back-channel logouts, which may name it.
	ProviderSID string `json:"psid,omitempty"`

	// subjectKey and sidKey are the keys a back-channel logout of this
	// session's subject or provider session is recorded under (see
	// prepare); computed once, before the session is shared.
	subjectKey, sidKey string
	// nameKey is the key a sign-out everywhere of the local user with
	// this JIT-off session's name is recorded under (cutoffKeys).
	nameKey string
	// identity is what the session forwards upstream (see prepare); nil
	// until computed, and again on a copy whose profile changed.
	identity *forwardedIdentity

	// Active is when each application with an idle timeout last saw the
	// session (Unix seconds, as the cookie was last re-issued), by
	// Handler.activityKey; an application not in it counts from
	// LastActive, or IssuedAt.
	Active map[string]int64 `json:"act,omitempty"`

	// LastActive is the one last activity that sessions issued before
	// Active kept for every application.
	LastActive int64 `json:"la,omitempty"`
}

// lastActive is when the application of key last saw s.
func (s *Session) lastActive(key string) int64 {
	if t, ok := s.Active[key]; ok {
		return t
	}
	if s.LastActive != 0 {
		return s.LastActive
	}
	return s.IssuedAt
}

// prepare computes the revocation keys of s and what it forwards
// upstream; it runs once per opened cookie, before s is cached and
// shared, so the request path only reads them.
func (s *Session) prepare() {
	s.identity = newForwardedIdentity(s)
	s.subjectKey = subjectCutoffKey(s.Connection, s.Subject)
	if s.UserID == "" {
		s.nameKey = nameCutoffKey(s.Username)
	}
	if s.ProviderSID != "" {
		s.sidKey = sidCutoffKey(s.Connection, s.ProviderSID)
	}
}

// directoryUser is the local user whose status and sign-outs s follows:
// its own, or the one whose name a JIT-off session carries; "" for a
// JIT-off session no local user stands behind.
func (s *Session) directoryUser() string {
	if s.UserID != "" {
		return s.UserID
	}
	return s.Holder
}

// cutoffKeys are the keys a sign-out everywhere that ends s may be
// recorded under: its local user's (directoryUser), its subject's at
// its connection, its provider session's, and, with JIT off, its
// name's. The subject's counts whether or not the session has a local
// user: a back-channel logout records it always, so one that arrives
// after the connection's JIT setting changed still ends the sessions
// issued before the change. The name's ends a JIT-off session named by a
// verified email with the local user who has that name, also one issued
// before that user existed (without a Holder).
func (s *Session) cutoffKeys() [4]string {
	return [4]string{s.directoryUser(), s.subjectKey, s.sidKey, s.nameKey}
}

// holderByName reports whether a Holder is a name (nameCutoffKey) rather
// than a local ID: that of a JIT-off session whose sign-in could not
// read the directory, which the status refresh resolves by name.
func holderByName(holder string) (name string, ok bool) {
	return strings.CutPrefix(holder, namePrefix)
}

// namePrefix starts a name's cutoff key (nameCutoffKey); local IDs
// (UUIDs) never hold a colon.
const namePrefix = "name:"

// nameCutoffKey is the key a sign-out everywhere of the local user named
// username is also recorded under, for JIT-off sessions of that name:
// "" unless the name could be a JIT-off one (a verified email).
func nameCutoffKey(username string) string {
	if !strings.Contains(username, "@") {
		return ""
	}
	return namePrefix + provisioner.NormalizeUsername(username)
}

// Cutoff keys besides local user IDs (UUIDs, which have no colon).
func subjectCutoffKey(connection, subject string) string { return "sub:" + connection + ":" + subject }
func sidCutoffKey(connection, sid string) string         { return "sid:" + connection + ":" + sid }

// Provisioned reports whether the session's user is a local user.
func (s *Session) Provisioned() bool { return s.UserID != "" }

// valid reports whether the session is well-formed and unexpired at now.
func (s *Session) valid(now time.Time) bool {
	return s.ID != "" && s.Username != "" && s.Connection != "" && now.Unix() < s.ExpiresAt
}

// newSessionID returns 128 random bits, hex-encoded.
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// Cookie names. The __Host- prefix makes browsers refuse the cookie
// unless it is Secure, host-only and Path=/, so a sibling subdomain or
// plain-HTTP page cannot plant or overwrite it. Plain-HTTP loopback
// development cannot use the prefix, so it gets the bare name.
const (
	sessionCookieBase = "jitauth_session"
	flowCookieBase    = "jitauth_flow_"
	hostPrefix        = "__Host-"
)

// cookieName returns the name for a cookie on a secure or insecure origin.
func cookieName(base string, secure bool) string {
	if secure {
		return hostPrefix + base
	}
	return base
}

// isLoopbackHost reports whether host (without port) names this machine:
// localhost and its subdomains (which browsers resolve to loopback
// themselves, RFC 6761), an IPv4 literal in 127.0.0.0/8, or ::1. Only
// these may get plain-HTTP development cookies. An IP literal is parsed,
// never matched by prefix: "127.evil.example" is a public name.
func isLoopbackHost(host string) bool {
	switch host {
	case "127.0.0.1", "localhost", "::1", "[::1]":
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || (strings.HasSuffix(host, ".localhost") && len(host) > len(".localhost") && host[0] != '.') {
		return true
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.IndexByte(host, ':') < 0 && strings.Trim(host, "0123456789.") != "" {
		// A name, not an IPv4 literal (digits and dots only) nor an
		// IPv6 one (which has colons): no address to parse, and no
		// parse error to allocate.
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.Zone() != "" {
		return false
	}
	if ip.Is4() {
		return ip.IsLoopback()
	}
	return ip == netip.IPv6Loopback()
}

// setCookie writes a cookie with the attributes every jit_auth cookie
// shares: HttpOnly, SameSite=Lax, Path=/, Secure unless insecure.
func setCookie(w http.ResponseWriter, name, value string, maxAge time.Duration, secure bool) {
	http.SetCookie(w, newCookie(name, value, maxAge, secure))
}

// newCookie is a cookie of the module's: HttpOnly, SameSite=Lax, the
// whole site; maxAge < 0 deletes it.
func newCookie(name, value string, maxAge time.Duration, secure bool) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		c.MaxAge = -1
	} else {
		c.MaxAge = int(maxAge / time.Second)
	}
	return c
}

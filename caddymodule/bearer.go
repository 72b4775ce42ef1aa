package caddymodule

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// BearerConfig accepts API clients that present a JWT issued by one
// connection's provider (an ID token, or a JWT access token) as
// "Authorization: Bearer <token>", instead of the browser's session
// cookie. The token is verified against the provider's published keys
// and then stands for a session of that connection: the same local user
// (a bearer token never creates one), the same allow rules and the same
// identity headers.
type BearerConfig struct {
	// Connection is the connection whose provider issues the tokens; the
	// application must offer it.
	Connection string `json:"connection,omitempty"`

	// Audiences are the aud values accepted, at least one: the client ID
	// for ID tokens, the API's identifier for access tokens. A token for
	// any other audience is refused; there is no "any".
	Audiences []string `json:"audiences,omitempty"`

	// Algorithms are the signature algorithms accepted. Default: those
	// the provider's discovery document lists. Only asymmetric ones
	// (RS256, ES256, PS256, EdDSA, …) may be named: "none" and HMAC
	// algorithms would let anyone holding the public key sign.
	Algorithms []string `json:"algorithms,omitempty"`

	// PassThrough forwards the Authorization header to the upstream.
	// Default: it is removed, so the upstream cannot replay the token.
	PassThrough bool `json:"pass_through,omitempty"`

	// AcceptWithoutMFA lets a token without "mfa" in its amr claim into an
	// application that requires a second factor. Default: such a token
	// is refused there, since no second factor was presented to us.
	AcceptWithoutMFA bool `json:"accept_without_mfa,omitempty"`
}

// asymmetricAlgorithms are the JWS algorithms a bearer may name.
var asymmetricAlgorithms = []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}

// validate checks one bearer block of an application (label) against
// the connections it offers.
func (b *BearerConfig) validate(a *App, ap *Application, label string) error {
	c, ok := a.Connections[b.Connection]
	if !ok || !slices.Contains(ap.offered(a), b.Connection) {
		return fmt.Errorf("%s: bearer %q is not one of this application's connections (%s)", label, b.Connection, strings.Join(ap.offered(a), ", "))
	}
	if len(b.Audiences) == 0 {
		return fmt.Errorf("%s: bearer %s needs at least one audience (bearer %s { audience <aud> }): the client ID for ID tokens, the API's identifier for access tokens", label, b.Connection, b.Connection)
	}
	for _, aud := range b.Audiences {
		// A token whose aud is "" (or blank) names no recipient; accepting
		// it would accept tokens the provider issued for no one in particular.
		if strings.TrimSpace(aud) == "" {
			return fmt.Errorf("%s: bearer %s has an empty audience; give the client ID for ID tokens or the API's identifier for access tokens (bearer %s { audience <aud> })", label, b.Connection, b.Connection)
		}
	}
	for _, alg := range b.Algorithms {
		if !slices.Contains(asymmetricAlgorithms, alg) {
			return fmt.Errorf("%s: bearer %s: algorithm %q is not accepted; use asymmetric ones: %s", label, b.Connection, alg, strings.Join(asymmetricAlgorithms, ", "))
		}
	}
	if c.connector != nil {
		if _, ok := c.connector.(connector.BearerVerifier); !ok {
			return fmt.Errorf("%s: bearer %s: connection %s's connector (%s) cannot verify bearer tokens (connector.BearerVerifier); use an oidc connection", label, b.Connection, b.Connection, c.kind)
		}
	}
	return nil
}

// bearerGate is an application's bearer acceptance: one verifier per
// connection, and the sessions made from tokens verified recently.
type bearerGate struct {
	rules []bearerRule

	mu    sync.Mutex
	cache map[[32]byte]bearerEntry // by SHA-256 of the token
}

type bearerRule struct {
	cfg      BearerConfig
	conn     *Connection
	verifier connector.BearerVerifier
}

// bearerEntry is a session made from a verified token, reused until
// the token's exp, and at most bearerRecheck, so that a user disabled
// or deleted in the store loses API access too.
type bearerEntry struct {
	s     *Session
	rule  *bearerRule
	until time.Time
}

const (
	bearerRecheck    = time.Minute
	maxCachedBearers = 10_000
)

// bearerToken returns the request's bearer token, if it has one.
func bearerToken(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	// A tab after the scheme is not what RFC 9110 allows, but upstreams
	// that split on white space read a token there: it is one, and is
	// verified as one.
	if len(v) < 7 || !strings.EqualFold(v[:6], "bearer") || (v[6] != ' ' && v[6] != '\t') {
		return "", false
	}
	return strings.TrimSpace(v[7:]), true
}

// bearerRefusal is why a token is not accepted, for the 401's
// WWW-Authenticate header and body; it never contains the token.
type bearerRefusal struct {
	status int
	code   string // RFC 6750 / RFC 9470 error code
	reason string
}

func (e *bearerRefusal) Error() string { return e.reason }

// session verifies token and returns the session it stands for.
func (g *bearerGate) session(ctx context.Context, h *Handler, token string, now time.Time) (*Session, *bearerRule, error) {
	key := sha256.Sum256([]byte(token))
	g.mu.Lock()
	e, ok := g.cache[key]
	g.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.s, e.rule, nil
	}
	var lastErr error = &bearerRefusal{http.StatusUnauthorized, "invalid_token", "the token is not valid"}
	for i := range g.rules {
		rule := &g.rules[i]
		claims, err := rule.verifier.VerifyBearer(ctx, token, rule.cfg.Audiences, rule.cfg.Algorithms)
		if err != nil {
			// A provider that could not check the token outranks one that
			// refused it: the token may be that provider's, and valid.
			if prev, ok := lastErr.(*bearerRefusal); !ok || prev.status != http.StatusServiceUnavailable {
				lastErr = bearerError(err)
			}
			continue
		}
		res, err := h.app.provisioner.Recognise(ctx, provisioner.Request{Connection: rule.conn.name, Policy: rule.conn.pol, Claims: claims})
		if err != nil {
			return nil, nil, recogniseError(err)
		}
		h.app.sessions.userRead(res, now) // as a sign-in does
		exp, mfa := tokenFacts(claims.Raw)
		s := newSession(rule.conn, claims, res, exp.Sub(now), now, h.app.sessionAttributes, h.app.roleSources)
		s.ID = bearerSessionPrefix + newSessionID()
		s.MFA = mfa
		g.mu.Lock()
		makeRoom(g.cache, maxCachedBearers, func(old bearerEntry) bool { return !now.Before(old.until) })
		until := now.Add(bearerRecheck)
		if exp.Before(until) {
			until = exp
		}
		g.cache[key] = bearerEntry{s: s, rule: rule, until: until}
		g.mu.Unlock()
		return s, rule, nil
	}
	return nil, nil, lastErr
}

// bearerError says why a connector refused a token, without the token.
func bearerError(err error) error {
	var opaque *connector.OpaqueTokenError
	switch {
	case errors.As(err, &opaque):
		return &bearerRefusal{http.StatusUnauthorized, "invalid_token", "opaque tokens are not accepted: send a JWT issued by the provider (an ID token or a JWT access token)"}
	case errors.Is(err, connector.ErrUnavailable):
		return &bearerRefusal{http.StatusServiceUnavailable, "temporarily_unavailable", "the identity provider cannot be reached to check the token"}
	}
	reason := err.Error()
	reason = strings.TrimPrefix(reason, connector.ErrRejected.Error()+": ")
	// Cut between characters: the reason may quote the token's claims
	// (its audience), and half a character would reach the JSON body as
	// %q's \xNN, which no JSON parser reads.
	return &bearerRefusal{http.StatusUnauthorized, "invalid_token", strings.ToValidUTF8(clip(reason, 200), "")}
}

// recogniseError says why a verified token's user is not let in.
func recogniseError(err error) error {
	switch {
	case errors.Is(err, provisioner.ErrNotProvisioned):
		return &bearerRefusal{http.StatusUnauthorized, "invalid_token", "this token's user has no account on this site yet: sign in once in a browser"}
	case errors.Is(err, provisioner.ErrUserDisabled):
		return &bearerRefusal{http.StatusForbidden, "invalid_token", "this token's account is disabled on this site"}
	case errors.Is(err, provisioner.ErrInvalidClaims):
		return &bearerRefusal{http.StatusUnauthorized, "invalid_token", "the token does not say enough about its user to name them"}
	}
	return &bearerRefusal{http.StatusServiceUnavailable, "temporarily_unavailable", "the user directory cannot be read right now"}
}

// tokenFacts reads a verified token's exp (VerifyBearer requires one)
// and whether its amr says a second factor was presented at the
// provider (RFC 8176 "mfa").
func tokenFacts(raw []byte) (exp time.Time, mfa bool) {
	var c struct {
		// A number, or a string holding one, as go-oidc's verification
		// reads it: the exp the token was accepted with.
		Exp json.Number `json:"exp"`
		AMR []any       `json:"amr"`
	}
	_ = json.Unmarshal(raw, &c)
	for _, v := range c.AMR {
		if s, _ := v.(string); s == "mfa" {
			mfa = true
		}
	}
	if n, err := c.Exp.Int64(); err == nil {
		return time.Unix(n, 0), mfa
	}
	f, _ := c.Exp.Float64()
	return time.Unix(int64(f), 0), mfa
}

// bearerSessionPrefix starts the ID of a session that stands for a
// bearer token.
const bearerSessionPrefix = "bearer-"

// serveBearer answers a request that carries a bearer token: the
// upstream with the token's identity, or a 401/403 saying why not.
// It reports whether it answered (false: the application takes no
// bearer tokens, and the request goes on as before).
func (h *Handler) serveBearer(w http.ResponseWriter, r *http.Request) (*Session, bool) {
	if h.bearer == nil {
		return nil, false
	}
	if len(r.Header["Authorization"]) > 1 {
		// The gate verifies one field and the upstream may read another,
		// or both joined (CGI, WSGI): refused, as RFC 6750 refuses a
		// token sent more than one way.
		h.refuseBearer(w, &bearerRefusal{http.StatusBadRequest, "invalid_request", "the request has more than one Authorization field"})
		return nil, true
	}
	token, ok := bearerToken(r)
	if !ok {
		return nil, false
	}
	// Checking the token may read the store; the request is passed on
	// (or answered) after this returns.
	if uses := h.storeUses(); uses.begin() {
		defer uses.end()
	}
	s, rule, err := h.bearer.session(r.Context(), h, token, time.Now())
	if err == nil && s.directoryUser() != "" {
		if active, _ := h.app.sessions.status.active(s.directoryUser(), time.Now().Unix()); !active {
			err = &bearerRefusal{http.StatusForbidden, "invalid_token", "this token's account is disabled on this site"}
		}
	}
	if err == nil && !h.admits(s) {
		err = &bearerRefusal{http.StatusForbidden, "insufficient_scope", "this site does not admit the token's user"}
	}
	if err == nil && h.mfaRequired(s) && !s.MFA && !rule.cfg.AcceptWithoutMFA {
		err = &bearerRefusal{http.StatusUnauthorized, "insufficient_user_authentication", "this site requires a second factor, and the token's amr does not show one"}
	}
	if err != nil {
		var ref *bearerRefusal
		if !errors.As(err, &ref) {
			ref = &bearerRefusal{http.StatusUnauthorized, "invalid_token", "the token is not valid"}
		}
		h.refuseBearer(w, ref)
		return nil, true
	}
	if !rule.cfg.PassThrough {
		r.Header.Del("Authorization")
	}
	return s, true
}

// refuseBearer answers a request whose bearer token is not accepted.
func (h *Handler) refuseBearer(w http.ResponseWriter, ref *bearerRefusal) {
	h.emit(event{kind: eventBearerRefused, connection: h.bearerConnections(), reason: ref.reason})
	h.logger.Debug("bearer token refused", zap.String("reason", ref.reason))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error=%q, error_description=%q`, ref.code, ref.reason))
	w.WriteHeader(ref.status)
	_, _ = fmt.Fprintf(w, `{"error":%q,"error_description":%q}`+"\n", ref.code, ref.reason)
}

// bearerConnections names the connections whose tokens the application
// takes, for a refusal's audit event.
func (h *Handler) bearerConnections() string {
	names := make([]string, 0, len(h.bearer.rules))
	for _, r := range h.bearer.rules {
		names = append(names, r.conn.name)
	}
	return strings.Join(names, ",")
}

// newBearerGate prepares the application's bearer blocks; Provision has
// validated them.
func newBearerGate(a *App, cfgs []BearerConfig) *bearerGate {
	g := &bearerGate{cache: map[[32]byte]bearerEntry{}}
	for _, c := range cfgs {
		conn := a.Connections[c.Connection]
		g.rules = append(g.rules, bearerRule{cfg: c, conn: conn, verifier: conn.connector.(connector.BearerVerifier)})
	}
	return g
}

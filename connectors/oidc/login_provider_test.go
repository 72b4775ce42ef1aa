package oidc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// loginProvider is a provider a whole login goes through (discovery,
// token endpoint, keys), whose discovery document and ID token claims a
// test edits, as a provider that behaves badly would send them.
type loginProvider struct {
	ti *tokenIssuer
	// meta is the discovery document; edit before the first login.
	meta map[string]any
	// claims, if set, edits the ID token's claims before signing.
	claims func(map[string]any)
	// payload, if set, edits the ID token's JSON as bytes (after claims),
	// for what a map cannot hold (a key twice).
	payload func([]byte) []byte
	// noIDToken leaves the ID token out of the token endpoint's answers,
	// as some providers' refresh answers do.
	noIDToken bool
	// userinfo, if set, is the userinfo endpoint's answer (JSON); set it
	// before the first login, which discovers the endpoint.
	userinfo []byte
	// tokenRequests counts the requests to the token endpoint.
	tokenRequests atomic.Int32

	mu    sync.Mutex
	nonce string
}

func newLoginProvider(t *testing.T) *loginProvider {
	t.Helper()
	lp := &loginProvider{ti: newTokenIssuer(t)}
	iss := lp.ti.srv.URL
	lp.meta = map[string]any{
		"issuer": iss, "jwks_uri": iss + "/jwks",
		"authorization_endpoint": iss + "/auth", "token_endpoint": iss + "/token",
		"id_token_signing_alg_values_supported": []string{"RS256"},
	}
	// The token issuer's own handler serves the keys; this one the rest.
	keys := lp.ti.srv.Config.Handler
	lp.ti.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(lp.meta)
		case "/token":
			lp.tokenRequests.Add(1)
			now := time.Now().Unix()
			lp.mu.Lock()
			c := map[string]any{"iss": iss, "aud": "app", "sub": "s1", "iat": now, "exp": now + 300, "nonce": lp.nonce}
			lp.mu.Unlock()
			if lp.claims != nil {
				lp.claims(c)
			}
			payload, _ := json.Marshal(c)
			if lp.payload != nil {
				payload = lp.payload(payload)
			}
			w.Header().Set("Content-Type", "application/json")
			answer := map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": lp.ti.sign(t, payload)}
			if lp.noIDToken {
				delete(answer, "id_token")
			}
			_ = json.NewEncoder(w).Encode(answer)
		case "/userinfo":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(lp.userinfo)
		default:
			keys.ServeHTTP(w, r)
		}
	})
	return lp
}

// connector is an oidc connection to lp, as Provision leaves it.
func (lp *loginProvider) connector() *OIDC {
	if lp.userinfo != nil {
		lp.meta["userinfo_endpoint"] = lp.ti.srv.URL + "/userinfo"
	}
	o := connectorFor(lp.ti)
	o.clientSecret = "s3cret"
	o.scopes = []string{"openid"}
	return o
}

// login begins a login through o and delivers the callback with the
// code, the login's state and the parameters of answer added, as the
// browser would bring the provider's answer.
func (lp *loginProvider) login(t *testing.T, o *OIDC, answer url.Values) (provisioner.Claims, error) {
	t.Helper()
	lg := connector.Login{Connection: "corp", State: "state-1", RedirectURI: "https://app.example/.jitauth/callback/corp"}
	target, state, err := o.Begin(httptest.NewRequest(http.MethodGet, "https://app.example/.jitauth/start/corp", nil), lg)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	lp.mu.Lock()
	lp.nonce = u.Query().Get("nonce")
	lp.mu.Unlock()
	q := url.Values{"code": {"code-1"}, "state": {lg.State}}
	for k, v := range answer {
		q[k] = v
	}
	return o.Finish(httptest.NewRequest(http.MethodGet, lg.RedirectURI+"?"+q.Encode(), nil), lg, state)
}

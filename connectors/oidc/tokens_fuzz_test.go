package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"
)

// tokenIssuer is a provider with discovery and a JWKS, and the key it
// signs with, for the token verifiers' fuzz targets.
type tokenIssuer struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	signer jose.Signer
}

func newTokenIssuer(tb testing.TB) *tokenIssuer {
	tb.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}
	mux := http.NewServeMux()
	ti := &tokenIssuer{srv: httptest.NewServer(mux), key: key}
	tb.Cleanup(ti.srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": ti.srv.URL, "jwks_uri": ti.srv.URL + "/jwks",
			"authorization_endpoint": ti.srv.URL + "/auth", "token_endpoint": ti.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	})
	ti.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return ti
}

// sign signs payload as is (any bytes), as a provider's key would.
func (ti *tokenIssuer) sign(tb testing.TB, payload []byte) string {
	return signCompact(tb, ti.signer, payload)
}

// signCompact signs payload with signer into a compact JWS.
func signCompact(tb testing.TB, signer jose.Signer, payload []byte) string {
	tb.Helper()
	obj, err := signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// connectorFor is an oidc connector of ti, as Provision leaves it.
func connectorFor(ti *tokenIssuer) *OIDC {
	return &OIDC{Issuer: ti.srv.URL, clientID: "app", client: ti.srv.Client(), mu: new(sync.Mutex), logger: zap.NewNop()}
}

func seedClaims(ti *tokenIssuer, edit func(map[string]any)) []byte {
	now := time.Now().Unix()
	c := map[string]any{"iss": ti.srv.URL, "aud": "app", "iat": now, "exp": now + 300, "jti": "j1", "sub": "s1",
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}}}
	edit(c)
	b, _ := json.Marshal(c)
	return b
}

// audiences reads aud as a string or a list.
func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// FuzzVerifyLogoutToken: whatever the claims (signed by the provider's
// key) or the bytes (unsigned), a logout token that verifies has the
// back-channel event as an object, a jti, a sub or sid, no nonce, this
// issuer and this client among its audiences, an iat within the window.
func FuzzVerifyLogoutToken(f *testing.F) {
	ti := newTokenIssuer(f)
	o := connectorFor(ti)
	f.Add(seedClaims(ti, func(map[string]any) {}), true)
	f.Add(seedClaims(ti, func(c map[string]any) { c["nonce"] = "n" }), true)
	f.Add(seedClaims(ti, func(c map[string]any) { delete(c, "sub"); c["sid"] = "x" }), true)
	f.Add(seedClaims(ti, func(c map[string]any) { c["events"] = map[string]any{backchannelLogoutEvent: "x"} }), true)
	f.Add([]byte("a.b.c"), false)
	f.Fuzz(func(t *testing.T, data []byte, signed bool) {
		token := string(data)
		if signed {
			token = ti.sign(t, data)
		}
		lt, err := o.VerifyLogoutToken(context.Background(), token)
		if err != nil {
			return
		}
		if !signed {
			t.Fatalf("an unsigned token verified: %q", data)
		}
		var c map[string]any
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatalf("verified, but the payload is not JSON: %q", data)
		}
		ev, _ := c["events"].(map[string]any)
		if _, ok := ev[backchannelLogoutEvent].(map[string]any); !ok {
			t.Fatalf("verified without the event object: %s", data)
		}
		if _, nonce := c["nonce"]; nonce || lt.JTI == "" || (lt.Subject == "" && lt.SessionID == "") || lt.Issuer != ti.srv.URL {
			t.Fatalf("verified %+v from %s", lt, data)
		}
		if !slices.Contains(audiences(c["aud"]), "app") {
			t.Fatalf("verified for audiences %v", c["aud"])
		}
		iat, _ := c["iat"].(float64)
		if d := time.Since(time.Unix(int64(iat), 0)); d > maxLogoutTokenAge+time.Minute || d < -maxLogoutTokenAge-time.Minute {
			t.Fatalf("verified with iat %v", c["iat"])
		}
	})
}

// FuzzVerifyBearer: a bearer token that verifies is signed by the
// provider, names its issuer, one of the configured audiences and an exp
// in the future.
func FuzzVerifyBearer(f *testing.F) {
	ti := newTokenIssuer(f)
	o := connectorFor(ti)
	// seedClaims makes logout tokens; a bearer has no events claim.
	bearer := func(edit func(map[string]any)) []byte {
		return seedClaims(ti, func(c map[string]any) { delete(c, "events"); edit(c) })
	}
	f.Add(bearer(func(c map[string]any) { c["aud"] = []string{"api://x", "other"} }), true)
	f.Add(bearer(func(c map[string]any) { delete(c, "exp") }), true)
	f.Add(bearer(func(c map[string]any) { c["nbf"] = time.Now().Unix() + 3600 }), true)
	f.Add(seedClaims(ti, func(c map[string]any) { c["aud"] = "api://x" }), true)
	f.Add([]byte("opaque-token"), false)
	f.Fuzz(func(t *testing.T, data []byte, signed bool) {
		token := string(data)
		if signed {
			token = ti.sign(t, data)
		}
		claims, err := o.VerifyBearer(context.Background(), token, []string{"api://x"}, nil)
		if err != nil {
			return
		}
		if !signed {
			t.Fatalf("an unsigned token verified: %q", data)
		}
		var c map[string]any
		_ = json.Unmarshal(data, &c)
		exp, _ := c["exp"].(float64)
		if claims.Issuer != ti.srv.URL || !slices.Contains(audiences(c["aud"]), "api://x") || !time.Now().Before(time.Unix(int64(exp), 0).Add(time.Second)) {
			t.Fatalf("verified %s", data)
		}
		if claims.Subject == "" {
			t.Fatalf("verified without a subject: %s", fmt.Sprint(c))
		}
		if _, ok := c["events"]; ok {
			t.Fatalf("a token with an events claim verified as a bearer: %s", data)
		}
	})
}

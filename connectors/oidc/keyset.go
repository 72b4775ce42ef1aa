package oidc

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// keySet verifies token signatures with the keys the issuer publishes
// (its jwks_uri). A token whose key is not among them makes it read them
// again, as key rotation needs (OpenID Connect Core, section 10.1), but
// at most once per keyRefetchInterval. go-oidc's RemoteKeySet reads them
// again for every token that does not verify, so anyone could make each
// request to an API route (bearer) or to the back-channel logout
// endpoint cost a fetch from the provider, and wait for it.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	// fetching is held by the one fetch in progress; others wait for it
	// (or for their request to end) and then use what it read.
	fetching chan struct{}

	mu   sync.Mutex
	keys []jose.JSONWebKey
	// next is when the keys may be read again; a token that waited for
	// a read finds it in the future and takes the keys that read got.
	next time.Time
	// failed is why the last read failed, nil after a good one: until
	// the next read, a token that none of the keys verifies went
	// unchecked for want of the keys, not because it is forged.
	failed error
}

const (
	// keyRefetchInterval spaces the reads of the keys after a successful
	// one: a provider that starts signing with a new key is believed
	// within it, a flood of tokens with made-up keys costs one fetch per
	// interval.
	keyRefetchInterval = 30 * time.Second
	// keyRetryInterval spaces the reads after a failed one.
	keyRetryInterval = 5 * time.Second
	// maxJWKSBytes bounds the key set read from the provider.
	maxJWKSBytes = 1 << 20
)

func newKeySet(url string, client *http.Client) *keySet {
	return &keySet{url: url, client: client, now: time.Now, fetching: make(chan struct{}, 1)}
}

// signingAlgorithms are the asymmetric algorithms a signature may use:
// never none, and never HMAC, which with a key the issuer publishes
// anyone could compute.
var signingAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// VerifySignature implements gooidc.KeySet: it returns the payload of a
// compact JWS whose signature one of the issuer's keys verifies. The
// verifier checks the algorithm and the claims.
func (k *keySet) VerifySignature(ctx context.Context, token string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, signingAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("malformed JWS: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("a JWS with one signature is expected")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	keys, err = k.reread(ctx)
	if err != nil {
		reportOutage(ctx, err)
		return nil, err
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, errors.New("failed to verify the signature with the issuer's keys")
}

// verifyWith tries the keys named kid (every key when the token names
// none).
func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// reread reads the keys again unless they were read too recently (or
// while the caller waited), and returns the keys to try. It fails with a
// *keysUnavailableError when the last read failed, also within the
// retry interval: those keys are the ones the token did not match, and
// whether the issuer has others is unknown. After a good read it never
// fails, so a token with a made-up key is refused, and costs at most
// one read per keyRefetchInterval.
func (k *keySet) reread(ctx context.Context) ([]jose.JSONWebKey, error) {
	select {
	case k.fetching <- struct{}{}:
	case <-ctx.Done():
		return nil, &keysUnavailableError{err: fmt.Errorf("waiting for the read in progress: %w", ctx.Err())}
	}
	defer func() { <-k.fetching }()
	k.mu.Lock()
	keys, next, failed := k.keys, k.next, k.failed
	k.mu.Unlock()
	now := k.now()
	if now.Before(next) {
		if failed != nil {
			return nil, &keysUnavailableError{err: failed}
		}
		return keys, nil
	}
	// The fetch outlives a request that goes away: the next token must
	// not find the keys unread and the interval started.
	fresh, err := k.fetch(context.WithoutCancel(ctx))
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		k.next, k.failed = now.Add(keyRetryInterval), err
		return nil, &keysUnavailableError{err: err}
	}
	k.keys, k.next, k.failed = fresh, now.Add(keyRefetchInterval), nil
	return fresh, nil
}

// keysUnavailableError is a signature left unchecked because the
// issuer's keys could not be read: the provider is down, not the token
// bad.
type keysUnavailableError struct{ err error }

func (e *keysUnavailableError) Error() string {
	return "the issuer's keys cannot be read: " + e.err.Error()
}

func (e *keysUnavailableError) Unwrap() error { return e.err }

// outageReport is where VerifySignature leaves a *keysUnavailableError
// for the caller of go-oidc's Verify, which keeps only the error's
// text.
type outageReport struct{ err error }

type outageReportKey struct{}

// withOutageReport is ctx carrying a fresh report for one verification.
func withOutageReport(ctx context.Context) (context.Context, *outageReport) {
	r := new(outageReport)
	return context.WithValue(ctx, outageReportKey{}, r), r
}

func reportOutage(ctx context.Context, err error) {
	if r, ok := ctx.Value(outageReportKey{}).(*outageReport); ok {
		r.err = err
	}
}

// fetch reads the key set, skipping keys this package cannot use (an
// algorithm or key type it does not know), as RFC 7517, section 5 asks.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", k.url, resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("the key set at %s is larger than %d bytes", k.url, maxJWKSBytes)
	}
	return parseKeySet(body)
}

// parseKeySet reads a JWK Set, leaving out the keys that name an
// algorithm other than the signing ones, or have a key type go-jose
// does not support. A key that cannot be read is left out too when
// the set has others that can (RFC 7517, section 5: one malformed key,
// a provider's mistake in a key it is rolling in, must not stop every
// sign-in); a set with none is an error that says why.
func parseKeySet(body []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("the key set is not JSON: %v", err)
	}
	var keys []jose.JSONWebKey
	var unread error
	for _, raw := range set.Keys {
		var meta struct {
			Alg string `json:"alg"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			unread = cmp.Or(unread, fmt.Errorf("a key of the set is not a JSON object: %v", err))
			continue
		}
		if meta.Alg != "" && !isSigningAlgorithm(meta.Alg) {
			continue
		}
		var key jose.JSONWebKey
		if err := json.Unmarshal(raw, &key); err != nil {
			if !errors.Is(err, jose.ErrUnsupportedKeyType) {
				unread = cmp.Or(unread, fmt.Errorf("a key of the set cannot be read: %v", err))
			}
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 && unread != nil {
		return nil, unread
	}
	return keys, nil
}

func isSigningAlgorithm(alg string) bool {
	for _, a := range signingAlgorithms {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// providerKeys is what discovery says about the issuer's signing keys.
type providerKeys struct {
	Issuer     string   `json:"issuer"`
	JWKSURL    string   `json:"jwks_uri"`
	Algorithms []string `json:"id_token_signing_alg_values_supported"`
}

// verifier is p.Verifier(config) with keys: the algorithms the issuer
// lists (that go-oidc supports) unless config names some, as go-oidc's
// own Provider.Verifier does.
func (pk providerKeys) verifier(keys gooidc.KeySet, config gooidc.Config) *gooidc.IDTokenVerifier {
	if len(config.SupportedSigningAlgs) == 0 {
		for _, a := range pk.Algorithms {
			if isSigningAlgorithm(a) {
				config.SupportedSigningAlgs = append(config.SupportedSigningAlgs, a)
			}
		}
	}
	return gooidc.NewVerifier(pk.Issuer, keys, &config)
}

// Interface guard
var _ gooidc.KeySet = (*keySet)(nil)

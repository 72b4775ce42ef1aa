package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// jwksServer publishes a key set that a test can change, and counts the
// fetches.
type jwksServer struct {
	srv     *httptest.Server
	fetches atomic.Int64
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	status  int
	// hold, if set, is waited on before each answer.
	hold chan struct{}
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	js := &jwksServer{status: http.StatusOK}
	js.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		js.fetches.Add(1)
		if js.hold != nil {
			<-js.hold
		}
		js.mu.Lock()
		defer js.mu.Unlock()
		if js.status != http.StatusOK {
			w.WriteHeader(js.status)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: js.keys})
	}))
	t.Cleanup(js.srv.Close)
	return js
}

func (js *jwksServer) publish(status int, keys ...jose.JSONWebKey) {
	js.mu.Lock()
	js.keys, js.status = keys, status
	js.mu.Unlock()
}

// testKey is a signing key with its public JWK.
type testKey struct {
	public jose.JSONWebKey
	signer jose.Signer
}

func newTestKey(t *testing.T, kid string) testKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{public: jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}, signer: signer}
}

func (k testKey) sign(t *testing.T, payload string) string {
	t.Helper()
	return signCompact(t, k.signer, []byte(payload))
}

// clock is a time a test moves by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTestKeySet(js *jwksServer) (*keySet, *clock) {
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	ks := newKeySet(js.srv.URL, js.srv.Client())
	ks.now = c.now
	return ks, c
}

// A provider that starts signing with a new key is believed once the
// interval since the last read has passed, and tokens with keys it
// does not publish cost no fetch before then, however many there are.
func TestKeySetRereadsForANewKeyAtMostOncePerInterval(t *testing.T) {
	js := newJWKSServer(t)
	k1, k2 := newTestKey(t, "k1"), newTestKey(t, "k2")
	js.publish(http.StatusOK, k1.public)
	ks, clk := newTestKeySet(js)
	ctx := context.Background()

	if p, err := ks.VerifySignature(ctx, k1.sign(t, "one")); err != nil || string(p) != "one" {
		t.Fatalf("first token: %q, %v", p, err)
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for the first token, want 1", n)
	}
	// Forged tokens: a made-up key ID, no key ID, and the known key ID
	// with another key's signature.
	for i := range 50 {
		forger := newTestKey(t, fmt.Sprint("made-up-", i))
		switch i % 3 {
		case 1:
			forger = newTestKey(t, "")
		case 2:
			forger = newTestKey(t, "k1")
		}
		if _, err := ks.VerifySignature(ctx, forger.sign(t, "forged")); err == nil {
			t.Fatalf("forged token %d verified", i)
		}
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("50 forged tokens made %d fetches, want none after the first read", n-1)
	}

	// The provider rotates to k2. Within the interval its tokens are
	// not believed yet (the keys are not read again for them)...
	js.publish(http.StatusOK, k1.public, k2.public)
	clk.add(keyRefetchInterval - time.Second)
	if _, err := ks.VerifySignature(ctx, k2.sign(t, "two")); err == nil {
		t.Fatal("a key read nowhere verified")
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches within the interval, want 1", n)
	}
	// ...and after it, the first of them reads the keys once.
	clk.add(time.Second)
	for i := range 5 {
		if p, err := ks.VerifySignature(ctx, k2.sign(t, "two")); err != nil || string(p) != "two" {
			t.Fatalf("k2 token %d after the interval: %q, %v", i, p, err)
		}
	}
	if _, err := ks.VerifySignature(ctx, k1.sign(t, "one")); err != nil {
		t.Fatalf("k1 still published, its token refused: %v", err)
	}
	if n := js.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the rotation, want 2", n)
	}
}

// A failed read is retried after keyRetryInterval, not at once: a
// provider that is down is not asked again by every token meanwhile.
func TestKeySetRetriesAFailedReadAfterAWhile(t *testing.T) {
	js := newJWKSServer(t)
	k1 := newTestKey(t, "k1")
	js.publish(http.StatusServiceUnavailable)
	ks, clk := newTestKeySet(js)
	ctx := context.Background()
	for range 10 {
		if _, err := ks.VerifySignature(ctx, k1.sign(t, "x")); err == nil {
			t.Fatal("verified without keys")
		}
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches while the provider fails, want 1", n)
	}
	js.publish(http.StatusOK, k1.public)
	clk.add(keyRetryInterval)
	if _, err := ks.VerifySignature(ctx, k1.sign(t, "x")); err != nil {
		t.Fatalf("after the retry interval: %v", err)
	}
	if n := js.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

// A token that none of the keys verifies fails as an outage
// (*keysUnavailableError) while the last read of the keys failed, also
// within the retry interval, and as a bad signature once a read
// succeeded: a made-up key ID is refused, not answered "try again".
func TestKeySetTellsAnOutageFromAnUnknownKey(t *testing.T) {
	js := newJWKSServer(t)
	k1, k2, forger := newTestKey(t, "k1"), newTestKey(t, "k2"), newTestKey(t, "made-up")
	js.publish(http.StatusServiceUnavailable)
	ks, clk := newTestKeySet(js)
	ctx := context.Background()
	isOutage := func(err error) bool {
		var ku *keysUnavailableError
		return errors.As(err, &ku)
	}
	for i := range 3 {
		if _, err := ks.VerifySignature(ctx, k1.sign(t, "x")); !isOutage(err) {
			t.Fatalf("token %d while the keys cannot be read: %v, want an outage", i, err)
		}
	}

	js.publish(http.StatusOK, k1.public)
	clk.add(keyRetryInterval)
	if _, err := ks.VerifySignature(ctx, k1.sign(t, "x")); err != nil {
		t.Fatalf("after the provider is back: %v", err)
	}
	for i := range 3 {
		if _, err := ks.VerifySignature(ctx, forger.sign(t, "forged")); err == nil || isOutage(err) {
			t.Fatalf("forged token %d after a good read: %v, want a bad signature", i, err)
		}
	}

	// The provider rotates to k2 and its key set cannot be read: k2's
	// tokens are an outage, k1's still verify.
	js.publish(http.StatusServiceUnavailable)
	clk.add(keyRefetchInterval)
	for i := range 3 {
		if _, err := ks.VerifySignature(ctx, k2.sign(t, "two")); !isOutage(err) {
			t.Fatalf("new key's token %d while the keys cannot be read: %v, want an outage", i, err)
		}
	}
	if _, err := ks.VerifySignature(ctx, k1.sign(t, "one")); err != nil {
		t.Fatalf("known key's token while the keys cannot be read: %v", err)
	}
	if n := js.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches, want 3 (one per interval)", n)
	}
}

// Tokens arriving together when a read is due share one fetch.
func TestKeySetConcurrentTokensShareOneRead(t *testing.T) {
	js := newJWKSServer(t)
	k1 := newTestKey(t, "k1")
	js.publish(http.StatusOK, k1.public)
	ks, _ := newTestKeySet(js)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ks.VerifySignature(context.Background(), k1.sign(t, "x")); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("32 tokens at once made %d fetches, want 1", n)
	}
}

// A request that goes away while the keys are read leaves the read to
// finish: the next token finds them.
func TestKeySetReadOutlivesTheRequest(t *testing.T) {
	js := newJWKSServer(t)
	js.hold = make(chan struct{})
	k1 := newTestKey(t, "k1")
	js.publish(http.StatusOK, k1.public)
	ks, _ := newTestKeySet(js)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = ks.VerifySignature(ctx, k1.sign(t, "x"))
	}()
	for js.fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel() // the request goes away while the keys are being read
	time.Sleep(20 * time.Millisecond)
	close(js.hold)
	<-done
	// The clock has not moved: a read that failed with the request would
	// leave the keys unread until keyRetryInterval.
	if _, err := ks.VerifySignature(context.Background(), k1.sign(t, "x")); err != nil {
		t.Fatalf("after the request went away mid-read: %v", err)
	}
	if n := js.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

// Keys the set cannot use are left out (RFC 7517, section 5), the
// others kept; a set that is not JSON is an error.
func TestParseKeySetSkipsUnusableKeys(t *testing.T) {
	k1 := newTestKey(t, "k1")
	good, err := json.Marshal(k1.public)
	if err != nil {
		t.Fatal(err)
	}
	set := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"secp256k1","alg":"ES256K","kid":"k","x":"AA","y":"AA"},`+
		`{"kty":"OKP","crv":"X448","kid":"x448","x":"AA"},{"kty":"oct","alg":"HS256","kid":"h","k":"c2VjcmV0"},%s]}`, good)
	keys, err := parseKeySet([]byte(set))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KeyID != "k1" {
		t.Fatalf("kept %d keys: %+v", len(keys), keys)
	}
	for _, bad := range []string{`nope`, `{"keys":[1]}`, `{"keys":[{"kty":"EC","crv":"P-256","x":"!!","y":"AA"}]}`} {
		if _, err := parseKeySet([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// FuzzParseKeySet: any body a provider (or whoever answers for it)
// sends is read without a panic, and every key kept is one a signature
// may use.
func FuzzParseKeySet(f *testing.F) {
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"a"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AA","alg":"HS256"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		keys, err := parseKeySet(body)
		if err != nil {
			return
		}
		for _, k := range keys {
			if k.Algorithm != "" && !isSigningAlgorithm(k.Algorithm) {
				t.Fatalf("kept a key for %q", k.Algorithm)
			}
		}
	})
}

// One key the provider got wrong (a key it is rolling in, say) leaves
// the others usable: the set is read without it.
func TestParseKeySetSkipsAMalformedKeyBesideGoodOnes(t *testing.T) {
	k1 := newTestKey(t, "k1")
	good, err := json.Marshal(k1.public)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"kty":"EC","crv":"P-256","kid":"new","x":"!!","y":"AA"}`, `1`, `{"kty":"RSA","kid":"short","n":"","e":""}`} {
		keys, err := parseKeySet([]byte(fmt.Sprintf(`{"keys":[%s,%s]}`, bad, good)))
		if err != nil || len(keys) != 1 || keys[0].KeyID != "k1" {
			t.Errorf("%s beside a good key: %d keys, %v", bad, len(keys), err)
		}
	}
}

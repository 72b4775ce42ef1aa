package connector

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// MaxProviderAnswer bounds the body of every answer a connector reads
// from its provider through NewProviderClient's client: discovery
// documents, token and userinfo answers, a provider's user or email API.
// The largest of them in practice (a JWKS of many keys, a user with many
// groups) is tens of kilobytes.
const MaxProviderAnswer = 1 << 20

// ErrAnswerTooLarge is what reading a provider's answer returns once it
// passes MaxProviderAnswer. Connectors report it as the provider being
// unavailable: no user can fix it, and the log names the address.
var ErrAnswerTooLarge = errors.New("answer larger than 1 MiB")

// NewProviderClient returns the HTTP client a connector calls its
// provider with: every call, its body included, ends after timeout, and
// a body stops with ErrAnswerTooLarge past MaxProviderAnswer. Without
// the bound, a provider (or whatever answers at its address) that sends
// an endless body grows Caddy's memory at loopback speed for the whole
// timeout: gigabytes, since libraries such as go-oidc read userinfo and
// discovery answers whole.
func NewProviderClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: boundedTransport{http.DefaultTransport}}
}

// boundedTransport bounds the response bodies of another transport.
type boundedTransport struct{ next http.RoundTripper }

func (t boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	// Name the address without its query (some providers take the
	// access token there) for the log.
	where := r.URL.Scheme + "://" + r.URL.Host + r.URL.Path
	resp.Body = &boundedBody{body: resp.Body, left: MaxProviderAnswer, where: where}
	return resp, nil
}

// boundedBody reads at most left bytes of body, then fails.
type boundedBody struct {
	body  io.ReadCloser
	left  int64
	where string
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("%s: %w", b.where, ErrAnswerTooLarge)
	}
	// Ask for one byte more than is left, so that a body of exactly
	// MaxProviderAnswer bytes still ends with its own EOF.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.body.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n + int(b.left), fmt.Errorf("%s: %w", b.where, ErrAnswerTooLarge)
	}
	return n, err
}

func (b *boundedBody) Close() error { return b.body.Close() }

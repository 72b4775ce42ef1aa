package connector

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
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
//
// Its redirects are followed only where they cannot carry a credential
// elsewhere (checkProviderRedirect).
func NewProviderClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: boundedTransport{http.DefaultTransport}, CheckRedirect: checkProviderRedirect}
}

// maxProviderRedirects is net/http's own bound on a chain of redirects.
const maxProviderRedirects = 10

// checkProviderRedirect follows a provider's redirect only for a request
// that sends nothing but its address (GET or HEAD: a discovery document,
// a key set, userinfo), and never from https to plain http. A token
// request carries the client secret, the code and the PKCE verifier:
// net/http repeats it, body and all, to wherever a 307 or 308 points,
// and keeps its Authorization header across a 302 to the same host, so
// a provider's answer (or whatever answers at its address) could have
// them sent anywhere. A provider's endpoints are the ones its discovery
// or the configuration names; one that moved is fixed there.
func checkProviderRedirect(req *http.Request, via []*http.Request) error {
	first, last := via[0], via[len(via)-1]
	switch {
	case first.Method != http.MethodGet && first.Method != http.MethodHead:
		return fmt.Errorf("%s answered the %s with a redirect to %s, which is not followed: the request carries the client's credentials; point the connection at the address it redirects to",
			address(first.URL), first.Method, address(req.URL))
	case last.URL.Scheme == "https" && req.URL.Scheme != "https":
		return fmt.Errorf("%s redirected to %s, from https to plain http, which is not followed", address(last.URL), address(req.URL))
	case len(via) >= maxProviderRedirects:
		return fmt.Errorf("%s: stopped after %d redirects", address(first.URL), maxProviderRedirects)
	}
	return nil
}

// address is u without its query (some providers take the access token
// there) and fragment, for a log.
func address(u *url.URL) string {
	return u.Scheme + "://" + u.Host + u.Path
}

// boundedTransport bounds the response bodies of another transport.
type boundedTransport struct{ next http.RoundTripper }

func (t boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{body: resp.Body, left: MaxProviderAnswer, where: address(r.URL)}
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

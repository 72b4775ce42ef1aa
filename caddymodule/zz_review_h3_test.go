package caddymodule_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
)

// Review: HTTP/3 (on by default on every HTTPS site of Caddy) takes
// WebSockets as an Extended CONNECT (RFC 9220): method CONNECT with
// :protocol websocket. reverse_proxy turns it into the HTTP/1.1 handshake
// the upstream expects: GET with Upgrade: websocket and Connection:
// Upgrade. jit_auth's matcher sees CONNECT and no Upgrade header, so a
// matcher that asks a login of GET (or of the WebSocket handshake, in
// Caddy's documented @websockets form) lets the upstream's WebSocket
// endpoint be opened without one, while the same handshake over
// HTTP/1.1 gets 401. The method readings (README: HEAD is read as GET,
// X-HTTP-Method-Override) miss this one. (HTTP/2 has the same Extended
// CONNECT when Go's GODEBUG http2xconnect=1 is set.)

// methodUpstream records the method, path and headers of every request.
type methodUpstream struct {
	url  string
	mu   sync.Mutex
	seen []string // "METHOD path Upgrade=<v> Remote-User=<v>"
}

func newMethodUpstream(t *testing.T) *methodUpstream {
	t.Helper()
	u := &methodUpstream{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, fmt.Sprintf("%s %s Upgrade=%q Remote-User=%q", r.Method, r.URL.Path, r.Header.Get("Upgrade"), r.Header.Get("Remote-User")))
		u.mu.Unlock()
		fmt.Fprint(w, "upstream")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	u.url = ln.Addr().String()
	return u
}

func (u *methodUpstream) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

// tlsSite runs Caddy on https://localhost:<port> with Caddy's internal
// CA (tls internal), HTTP/1.1, HTTP/2 and HTTP/3 on, one mockoidc
// connection "corp" and siteBody ({UPSTREAM} replaced by upstream).
func tlsSite(t *testing.T, siteBody, upstream string) (base string) {
	t.Helper()
	dir := t.TempDir()
	idp := startMockOIDC(t)
	port := freePort(t)
	cfg := idp.Config()
	conns := fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	runCaddyfile(t, fmt.Sprintf("{\n\tskip_install_trust\n\tauto_https disable_redirects\n\tservers {\n\t\tprotocols h1 h2 h3\n\t}%s\n}\nhttps://localhost:%d {\n\ttls internal\n%s\n}\n",
		globalOptions(dir, conns), port, strings.ReplaceAll(siteBody, "{UPSTREAM}", upstream)))
	base = fmt.Sprintf("https://localhost:%d", port)
	waitTLS(t, base)
	return base
}

// waitTLS waits until Caddy serves its internal certificate for base.
func waitTLS(t *testing.T, base string) {
	t.Helper()
	cl := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	eventually(t, "Caddy's internal certificate", 20*time.Second, func() bool {
		resp, err := cl.Get(base + "/.jitauth/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

func h3Client(t *testing.T) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{http3.NextProtoH3}}}
	t.Cleanup(func() { _ = tr.Close() })
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestZZReviewHTTP3WebSocketPassesGetMatcher(t *testing.T) {
	for _, tc := range []struct{ name, site string }{
		{"jit_auth @pages (method GET HEAD)", "\t@pages method GET HEAD\n\tjit_auth @pages\n\treverse_proxy {UPSTREAM}"},
		{"jit_auth @websockets (Caddy's documented matcher)", "\t@websockets {\n\t\theader Connection *Upgrade*\n\t\theader Upgrade websocket\n\t}\n\tjit_auth @websockets\n\treverse_proxy {UPSTREAM}"},
		{"handle @pages block", "\t@pages method GET HEAD\n\thandle @pages {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newMethodUpstream(t)
			base := tlsSite(t, tc.site, up.url)
			h3 := h3Client(t)

			// The handshake over HTTP/1.1 needs the login: the site
			// means to protect it.
			h1 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			req, _ := http.NewRequest(http.MethodGet, base+"/chat", nil)
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			resp, err := h1.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("control: the HTTP/1.1 WebSocket handshake without a session got %d, want 401", resp.StatusCode)
			}
			if seen := up.take(); len(seen) != 0 {
				t.Fatalf("control: reached the upstream: %q", seen)
			}

			// The same handshake over HTTP/3.
			pr, pw := io.Pipe()
			defer pw.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ = http.NewRequestWithContext(ctx, http.MethodConnect, base+"/chat", pr)
			req.Proto = "websocket" // quic-go: :protocol websocket
			req.Header.Set("Sec-WebSocket-Version", "13")
			resp, err = h3.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			pw.Close()
			resp.Body.Close()
			seen := up.take()
			if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest || len(seen) != 0 {
				t.Errorf("the WebSocket handshake over HTTP/3 (Extended CONNECT) without a session: %s %d, and the upstream saw %q; want 401 (or 400) and nothing upstream, as over HTTP/1.1",
					resp.Proto, resp.StatusCode, seen)
			}
		})
	}
}

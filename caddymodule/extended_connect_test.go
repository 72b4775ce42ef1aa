package caddymodule_test

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// HTTP/3 (on by default on every HTTPS site of Caddy) takes a WebSocket
// as an Extended CONNECT (RFC 9220): method CONNECT with :protocol
// websocket, and so does HTTP/2 (RFC 8441) where Go's server offers it
// (GODEBUG http2xconnect=1). reverse_proxy sends it to the upstream as
// the HTTP/1.1 handshake, GET with Upgrade: websocket and Connection:
// Upgrade, so jit_auth must read it so: a matcher that asks a login of
// GET, or of the handshake (Caddy's documented @websockets), asks it of
// the Extended CONNECT too, and a site whose routes take the CONNECT past
// its jit_auth and the GET to it refuses it with 400.

// extendedConnectSites are sites whose WebSocket handshake over HTTP/1.1
// needs a login; anonymous is what the same handshake as an Extended
// CONNECT without a session gets, signedIn what it gets with one.
var extendedConnectSites = []struct {
	name, site          string
	anonymous, signedIn int
}{
	{"jit_auth @pages (method GET HEAD)", "\t@pages method GET HEAD\n\tjit_auth @pages\n\treverse_proxy {UPSTREAM}",
		http.StatusUnauthorized, http.StatusOK},
	{"jit_auth @websockets (Caddy's documented matcher)", "\t@websockets {\n\t\theader Connection *Upgrade*\n\t\theader Upgrade websocket\n\t}\n\tjit_auth @websockets\n\treverse_proxy {UPSTREAM}",
		http.StatusUnauthorized, http.StatusOK},
	// Caddy's routes take the CONNECT to the plain handle block: the
	// site's cleaning step refuses it, session or not.
	{"handle @pages block", "\t@pages method GET HEAD\n\thandle @pages {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
		http.StatusBadRequest, http.StatusBadRequest},
	// The README's way to let it through with a login there.
	{"handle @pages block that takes CONNECT", "\t@pages method GET HEAD CONNECT\n\thandle @pages {\n\t\tjit_auth\n\t\treverse_proxy {UPSTREAM}\n\t}\n\thandle {\n\t\treverse_proxy {UPSTREAM}\n\t}",
		http.StatusUnauthorized, http.StatusOK},
}

func TestHTTP3WebSocketHandshakeNeedsTheLoginAGETWould(t *testing.T) {
	checkExtendedConnectWebSocket(t, h3Client, func(req *http.Request) {
		req.Proto = "websocket" // quic-go's client sends it as :protocol
	})
}

// Go's HTTP/2 server reads GODEBUG when the process starts, so the test
// runs itself again with http2xconnect=1.
func TestHTTP2WebSocketHandshakeNeedsTheLoginAGETWould(t *testing.T) {
	if !strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1") {
		runAgainWithGODEBUG(t, "http2xconnect=1")
		return
	}
	checkExtendedConnectWebSocket(t, func(t *testing.T) *http.Client {
		tr := &http2.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}, func(req *http.Request) {
		req.Header.Set(":protocol", "websocket") // x/net/http2's client sends it as the pseudo-header
	})
}

// runAgainWithGODEBUG runs t alone in a new test process with godebug
// added to GODEBUG, and fails t with that run's output if it fails.
func runAgainWithGODEBUG(t *testing.T, godebug string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG="+strings.TrimPrefix(os.Getenv("GODEBUG")+","+godebug, ","))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s with GODEBUG %s: %v\n%s", t.Name(), godebug, err, out)
	}
}

// checkExtendedConnectWebSocket opens a WebSocket at each of
// extendedConnectSites over HTTP/1.1 and, through the client newClient
// makes, as an Extended CONNECT that asExtended makes of a CONNECT.
func checkExtendedConnectWebSocket(t *testing.T, newClient func(*testing.T) *http.Client, asExtended func(*http.Request)) {
	for _, tc := range extendedConnectSites {
		t.Run(tc.name, func(t *testing.T) {
			base, up, login := tlsSite(t, tc.site)
			client := newClient(t)

			// The handshake over HTTP/1.1 needs the login: the site
			// means to protect it.
			resp, err := tlsClient().Do(webSocketHandshake(base+"/chat", "Upgrade", "websocket"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("control: the HTTP/1.1 WebSocket handshake without a session got %d, want 401", resp.StatusCode)
			}
			if n := up.count(); n != 0 {
				t.Fatalf("control: reached the upstream %d times", n)
			}

			// The same handshake as an Extended CONNECT.
			status, seen, ok := extendedConnect(t, client, up, base, "", asExtended)
			if status != tc.anonymous || ok || up.count() != 0 {
				t.Errorf("the WebSocket handshake as an Extended CONNECT without a session: %d, and the upstream saw %v; want %d and nothing upstream, as over HTTP/1.1",
					status, seen.header, tc.anonymous)
			}

			// With a session, it reaches the upstream as the user, as
			// the handshake the upstream gets (or is refused alike).
			session := login()
			status, seen, ok = extendedConnect(t, client, up, base, session, asExtended)
			if status != tc.signedIn {
				t.Errorf("the Extended CONNECT with a session got %d, want %d", status, tc.signedIn)
			}
			if tc.signedIn == http.StatusOK && (!ok || seen.header.Get("Remote-User") == "" || seen.header.Get("Upgrade") != "websocket") {
				t.Errorf("the Extended CONNECT with a session reached the upstream (%v) with %v; want the WebSocket handshake with Remote-User", ok, seen.header)
			}
		})
	}
}

// extendedConnect sends an Extended CONNECT for base's /chat through
// client, with session's cookie if any, and returns its status and what
// reached up at /chat.
func extendedConnect(t *testing.T, client *http.Client, up *recordingUpstream, base, session string, asExtended func(*http.Request)) (int, seenRequest, bool) {
	t.Helper()
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodConnect, base+"/chat", pr)
	asExtended(req)
	req.Header.Set("Sec-WebSocket-Version", "13")
	if session != "" {
		req.AddCookie(&http.Cookie{Name: "__Host-jitauth_session", Value: session})
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pw.Close()
	resp.Body.Close()
	seen, ok := up.take("/chat")
	return resp.StatusCode, seen, ok
}

// reverse_proxy (and every WebSocket server) takes the handshake's
// Connection token and Upgrade value in any letter case, Caddy's header
// matcher only as written: a handshake spelled otherwise than browsers
// spell it needs the login that "@websockets" asks of theirs, and
// reaches nothing without it.
func TestWebSocketHandshakeSpelledOtherwiseNeedsTheLogin(t *testing.T) {
	base, up, _ := tlsSite(t, extendedConnectSites[1].site)
	for _, spelling := range [][2]string{{"upgrade", "websocket"}, {"Upgrade", "WebSocket"}, {"keep-alive, UPGRADE", "websocket"}} {
		resp, err := tlsClient().Do(webSocketHandshake(base+"/chat", spelling[0], spelling[1]))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || up.count() != 0 {
			t.Errorf("the handshake with Connection %q and Upgrade %q without a session: %d, and it reached the upstream %d times; want 401 and nothing upstream, as the browsers' spelling gets",
				spelling[0], spelling[1], resp.StatusCode, up.count())
		}
	}
}

// webSocketHandshake is the HTTP/1.1 WebSocket handshake for url, with
// these Connection and Upgrade fields.
func webSocketHandshake(url, connection, upgrade string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Connection", connection)
	req.Header.Set("Upgrade", upgrade)
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	return req
}

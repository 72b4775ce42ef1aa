package caddymodule_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The answer that carries a re-issued session cookie goes through the
// module's private writer (idle_timeout). Behind a deferred header
// operation and Caddy's access log, a server-sent event stream must
// still reach the browser event by event, and a WebSocket handshake
// must still switch protocols and carry data both ways.
func TestReissuedSessionCookieKeepsStreamsAndWebSockets(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "public, max-age=60")
			fmt.Fprint(w, "data: one\n\n")
			http.NewResponseController(w).Flush()
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			fmt.Fprint(w, "data: two\n\n")
		case "/ws":
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			line, _ := rw.ReadString('\n')
			fmt.Fprint(rw, "echo "+line)
			rw.Flush()
		default:
			fmt.Fprint(w, "upstream")
		}
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	idp := startMockOIDC(t)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	runCaddyfile(t, fmt.Sprintf(`{%s
}
http://localhost:%d {
	log {
		output file %s/access.log
	}
	header {
		-Server
		X-Site "yes"
	}
	jit_auth {
		idle_timeout 8s
	}
	reverse_proxy %s {
		flush_interval -1
	}
}
`, globalOptions(dir, fmt.Sprintf(`
		connection corp {
			oidc %s %s %s
		}`, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)), port, dir, strings.TrimPrefix(up.URL, "http://")))
	b := newBrowser(t)
	idp.QueueUser(alice())
	if resp, body, _ := b.follow(base+"/.jitauth/start/corp", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}

	time.Sleep(1100 * time.Millisecond) // the next answer re-issues the cookie
	resp := b.do(http.MethodGet, base+"/events", http.Header{"Accept": {"text/event-stream"}})
	defer resp.Body.Close()
	if resp.Header.Get("Cache-Control") != "private, max-age=60" || resp.Header.Get("X-Site") != "yes" || len(resp.Header["Set-Cookie"]) == 0 {
		t.Fatalf("the stream's header: %v", resp.Header)
	}
	events := bufio.NewReader(resp.Body)
	first, err := events.ReadString('\n')
	if err != nil || first != "data: one\n" {
		t.Fatalf("the first event did not arrive before the upstream went on: %q %v", first, err)
	}
	close(release)
	rest, _ := io.ReadAll(events)
	if !strings.Contains(string(rest), "data: two") {
		t.Fatalf("the rest of the stream: %q", rest)
	}

	time.Sleep(1100 * time.Millisecond)
	conn, err := net.Dial("tcp", fmt.Sprintf("localhost:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	session := b.cookie(base, "jitauth_session")
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: %s=%s\r\n\r\n", port, session.Name, session.Value)
	br := bufio.NewReader(conn)
	ws, err := http.ReadResponse(br, nil)
	if err != nil || ws.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("the WebSocket handshake: %v %v", ws, err)
	}
	if len(ws.Header["Set-Cookie"]) == 0 {
		t.Fatalf("the handshake did not re-issue the session cookie: %v", ws.Header)
	}
	fmt.Fprint(conn, "hello\n")
	if got, err := br.ReadString('\n'); got != "echo hello\n" {
		t.Fatalf("data through the WebSocket: %q %v", got, err)
	}
}

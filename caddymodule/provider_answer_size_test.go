package caddymodule_test

import (
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// A provider (or whatever answers at its address) whose userinfo
// endpoint sends a body without end must not grow Caddy's memory at
// loopback speed until the provider timeout: jit_auth stops reading at
// 1 MiB, logs why, and signs the user in on the ID token's claims as
// for any userinfo failure. Here the body is 64 MiB of valid JSON (so
// that the test stays bounded without the fix): what the endpoint
// managed to send shows how much Caddy read.
func TestEndlessUserinfoAnswerIsNotReadWhole(t *testing.T) {
	const huge = 64 << 20
	var sent atomic.Int64
	endless := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/userinfo") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			n, _ := io.WriteString(w, `{"sub":"alice-sub","name":"`)
			chunk := strings.Repeat("a", 64<<10)
			for sent.Add(int64(n)) < huge {
				var err error
				if n, err = io.WriteString(w, chunk); err != nil {
					return
				}
			}
			_, _ = io.WriteString(w, `"}`)
		})
	}
	s := startSiteOpts(t, siteOptions{auditLog: true, idpMiddleware: []func(http.Handler) http.Handler{endless}})
	s.queue(alice())
	b := newBrowser(t)
	resp, body := s.login(b, "corp", "/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	if got := sent.Load(); got > 16<<20 {
		t.Errorf("Caddy read %d MiB of the userinfo answer; it should stop after 1 MiB", got>>20)
	}
	logs, err := os.ReadFile(s.logFile())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "larger than 1 MiB") {
		t.Errorf("the log does not say the answer was too large:\n%s", logs)
	}
}

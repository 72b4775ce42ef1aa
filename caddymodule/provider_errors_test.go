package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// teeWriter keeps a copy of what a handler writes.
type teeWriter struct {
	http.ResponseWriter
	buf *bytes.Buffer
}

func (w teeWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	return w.ResponseWriter.Write(p)
}

// echoingUserinfo answers the userinfo endpoint 401 with a body that
// quotes the access token it refused, as some providers do.
func echoingUserinfo(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"error":"invalid_token","error_description":"access token ` + tok + ` is not accepted here"}`))
}

// logHolds fails t for every secret found in Caddy's log, showing the
// line (shortened).
func logHolds(t *testing.T, logs []byte, what string, secrets []string) {
	t.Helper()
	for _, sec := range secrets {
		if sec == "" || !bytes.Contains(logs, []byte(sec)) {
			continue
		}
		line := regexp.MustCompile(`.*` + regexp.QuoteMeta(sec) + `.*`).Find(logs)
		if len(line) > 300 {
			line = append(line[:300], "…"...)
		}
		t.Errorf("the %s is in Caddy's log: %s", what, line)
	}
}

// S13: when the provider's userinfo endpoint refuses the request at
// login, the warning in the log says so, bounded, without the body's
// copy of the access token (go-oidc's error quotes the whole body).
func TestUserinfoRefusalAtLoginKeepsTheAccessTokenOutOfTheLog(t *testing.T) {
	var mu sync.Mutex
	var accessTokens []string
	capture := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasSuffix(r.URL.Path, "/token"):
				var buf bytes.Buffer
				next.ServeHTTP(teeWriter{w, &buf}, r)
				var tr struct {
					AccessToken string `json:"access_token"`
				}
				_ = json.Unmarshal(buf.Bytes(), &tr)
				if tr.AccessToken != "" {
					mu.Lock()
					accessTokens = append(accessTokens, tr.AccessToken)
					mu.Unlock()
				}
			case strings.HasSuffix(r.URL.Path, "/userinfo"):
				echoingUserinfo(w, r)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
	s := startSiteOpts(t, siteOptions{auditLog: true, idpMiddleware: []func(http.Handler) http.Handler{capture}})
	s.queue(alice())
	b := newBrowser(t)
	if resp, body := s.login(b, "corp", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(accessTokens) == 0 {
		t.Fatal("no access token captured")
	}
	logs, err := os.ReadFile(s.logFile())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "userinfo") {
		t.Fatalf("the userinfo failure was not logged at all:\n%s", logs)
	}
	logHolds(t, logs, "access token", accessTokens)
}

// S13: the background refresh logs a token endpoint's 5xx and a refused
// userinfo call after a refresh (here the refresh response has no ID
// token, so userinfo names the user) with the status and a bounded text,
// never the refresh or access token the provider's answer quotes.
func TestRefreshFailuresKeepTokensOutOfTheLog(t *testing.T) {
	var mu sync.Mutex
	var secrets []string
	var refreshes int
	keep := func(s string) {
		mu.Lock()
		secrets = append(secrets, s)
		mu.Unlock()
	}
	filler := strings.Repeat("x", 8<<10)
	provider := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasSuffix(r.URL.Path, "/userinfo"):
				echoingUserinfo(w, r)
			case strings.HasSuffix(r.URL.Path, "/token") && r.ParseForm() == nil && r.PostForm.Get("grant_type") == "refresh_token":
				rt := r.PostForm.Get("refresh_token")
				keep(rt)
				mu.Lock()
				refreshes++
				first := refreshes == 1
				mu.Unlock()
				if first {
					// An outage page that quotes the request, at length.
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write([]byte("upstream failed for refresh_token=" + rt + " " + filler))
					return
				}
				// Later refreshes answer without an ID token, so the
				// refreshed user comes from userinfo, which refuses.
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				var tr map[string]any
				if json.Unmarshal(rec.Body.Bytes(), &tr) != nil {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				delete(tr, "id_token")
				for _, k := range []string{"access_token", "refresh_token"} {
					if v, _ := tr[k].(string); v != "" {
						keep(v)
					}
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(tr)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
	s := startSiteOpts(t, siteOptions{auditLog: true, corpExtra: "refresh 1s", idpMiddleware: []func(http.Handler) http.Handler{provider}})
	for range 2 {
		s.queue(alice())
		if resp, body := s.login(newBrowser(t), "corp", "/"); resp.StatusCode != http.StatusOK {
			t.Fatalf("login: %d %s", resp.StatusCode, firstLine(body))
		}
	}
	var logs []byte
	eventually(t, "both refresh failures in the log", 15*time.Second, func() bool {
		logs, _ = os.ReadFile(s.logFile())
		return bytes.Contains(logs, []byte("503 Service Unavailable")) && bytes.Contains(logs, []byte("userinfo after refresh"))
	})
	mu.Lock()
	defer mu.Unlock()
	logHolds(t, logs, "token", secrets)
	if bytes.Contains(logs, []byte(filler[:1000])) {
		t.Error("the token endpoint's whole answer is in the log; want it bounded")
	}
}

package caddymodule

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// A session whose cookie cannot be sealed again with its new last
// activity (too large for the cookies a session may take) is still
// admitted, but each of its requests due a touch wrote a WARN: a line
// per request, at whatever rate the session's holder sends them. The
// warning is written at most once per application every 10 seconds,
// counting those held back.
func TestIdleTouchFailureWarningIsSpacedOut(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	h := &Handler{app: &App{sessions: &sessions{seal: testCodecs()}}, logger: zap.New(core),
		activityKey: "app", touchWarned: new(logSpacing)}
	h.IdleTimeout = caddy.Duration(time.Hour)
	now := time.Now()
	s := &Session{ID: "sid", Username: "u", Connection: "corp", IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
		Name: randomPath(2 * maxSessionLength), Active: map[string]int64{"app": now.Add(-30 * time.Minute).Unix()}}
	const requests = 50
	for range requests {
		w := httptest.NewRecorder()
		if got := h.touch(w, httptest.NewRequest(http.MethodGet, "http://localhost/", nil), s); got != w {
			t.Fatal("a session too large to seal was re-issued")
		}
	}
	if n := logs.FilterMessageSnippet("re-issuing the session cookie").Len(); n != 1 {
		t.Errorf("%d warnings for %d requests of one session whose cookie cannot be re-issued, within seconds; want 1", n, requests)
	}
}

package caddymodule

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Every outcome is written with the one field set: the same keys for
// the same facts whatever the event, and no empty field for what an
// event does not have.
func TestEventFieldSet(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	logger := zap.New(core)
	writeAudit(logger, event{kind: eventLoggedIn, connection: "corp", username: "alice", localID: "id-1", outcome: "created"})
	writeAudit(logger, event{kind: eventTOTPRefused, connection: "corp", username: "alice", localID: "id-1", failures: 3})
	writeAudit(logger, event{kind: eventLoginFailed, connection: "gh", err: errors.New("boom")})

	want := []map[string]any{
		{"connection": "corp", "username": "alice", "local_id": "id-1", "outcome": "created"},
		{"connection": "corp", "username": "alice", "local_id": "id-1", "failures": int64(3)},
		{"connection": "gh", "error": "boom"},
	}
	msgs := []string{"user logged in", "totp code refused", "login failed"}
	all := logs.All()
	if len(all) != len(want) {
		t.Fatalf("%d log entries, want %d", len(all), len(want))
	}
	for i, e := range all {
		if e.Message != msgs[i] {
			t.Errorf("entry %d: message %q, want %q", i, e.Message, msgs[i])
		}
		got := e.ContextMap()
		if len(got) != len(want[i]) {
			t.Errorf("entry %d (%s): fields %v, want exactly %v", i, e.Message, got, want[i])
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("entry %d (%s): %s = %v, want %v", i, e.Message, k, got[k], v)
			}
		}
	}
}

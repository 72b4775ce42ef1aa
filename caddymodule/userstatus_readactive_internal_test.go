package caddymodule

import (
	"testing"
	"time"
)

// A sign-in's reading of its user (active) clears a refusal this
// instance decided before the sign-in began to read (an older reading
// of a disable, undone since through another instance), never one
// decided after it (a disable through this instance while the sign-in,
// or a bearer token's check, was in flight).
func TestSignInReadingClearsOnlyAnOlderRefusal(t *testing.T) {
	u := newUserStatus()
	u.set("ada", true)
	time.Sleep(time.Millisecond)
	u.readActive("ada", time.Now())
	if active, _ := u.active("ada", time.Now().Unix()); !active {
		t.Error("a sign-in that read the user active after the refusal left her refused")
	}

	readFrom := time.Now()
	time.Sleep(time.Millisecond)
	u.set("ada", true) // disabled here while the sign-in read the store
	u.readActive("ada", readFrom)
	if active, _ := u.active("ada", time.Now().Unix()); active {
		t.Error("a sign-in that began to read before a disable here undid the disable")
	}

	u.readActive("bob", time.Now()) // no entry: nothing to record
	u.mu.RLock()
	_, kept := u.users["bob"]
	u.mu.RUnlock()
	if kept {
		t.Error("a sign-in's reading added an entry the refresh would follow")
	}
}

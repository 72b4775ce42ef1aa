package caddymodule

import (
	"testing"
	"time"
)

// A cutoff read from the store counts from the later of its own time
// (the clock of the instance that took the sign-out) and the store's
// record of it, but at most maxCutoffSkew later: a cutoff kept through an
// outage and recorded long after does not end the sessions of sign-ins
// made since the sign-out.
func TestCutoffCountsTheStoresTimeUpToABound(t *testing.T) {
	signOut := time.Unix(1_800_000_000, 0)
	id := userCutoffID("u1", signOut)
	expires := signOut.Add(time.Hour)
	session := func(issued time.Time) *Session {
		return &Session{ID: "s", UserID: "u1", IssuedAt: issued.Unix(), ExpiresAt: expires.Unix()}
	}
	for _, tt := range []struct {
		name     string
		recorded time.Time
		issued   time.Time
		refused  bool
	}{
		{"issued before, by the cutoff's own time", time.Time{}, signOut.Add(-time.Second), true},
		{"issued 30 s after the slow instance's time, before the store recorded it", signOut.Add(40 * time.Second), signOut.Add(30 * time.Second), true},
		{"issued after the store recorded it", signOut.Add(40 * time.Second), signOut.Add(41 * time.Second), false},
		{"recorded an hour later (kept through an outage), sign-in ten minutes after", signOut.Add(time.Hour), signOut.Add(10 * time.Minute), false},
		{"recorded an hour later, sign-in within the bound", signOut.Add(time.Hour), signOut.Add(maxCutoffSkew - time.Second), true},
		{"store clock behind the instance's", signOut.Add(-time.Minute), signOut.Add(-time.Second), true},
	} {
		r := &revocations{}
		r.addRecorded(id, expires, tt.recorded)
		if got := r.refuses(session(tt.issued)); got != tt.refused {
			t.Errorf("%s: refused = %v, want %v", tt.name, got, tt.refused)
		}
	}
}

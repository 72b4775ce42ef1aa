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

// A cutoff that counts from the store's later time is kept as much
// longer, and one taken now is kept while the sessions it ends may live:
// issued up to its (later) time, or from a login that waited on the
// consent page up to flowLifetime before. Pruned earlier, those sessions
// would work again for the rest of their life.
func TestCutoffIsKeptWhileTheSessionsItEndsLive(t *testing.T) {
	lifetime := 4 * time.Minute
	signOut := time.Unix(1_800_000_000, 0)
	r := &revocations{}
	// An instance four minutes slow took the sign-out; the store recorded
	// it at the true time.
	r.addRecorded(userCutoffID("u1", signOut), cutoffExpiry(signOut, lifetime), signOut.Add(4*time.Minute))
	issued := signOut.Add(4*time.Minute - 3*time.Second)
	s := &Session{ID: "s1", UserID: "u1", IssuedAt: issued.Unix(), ExpiresAt: issued.Add(lifetime).Unix()}
	// A session from a login that waited on the consent page: verified
	// just before the sign-out, issued up to flowLifetime later.
	p := &Session{ID: "s2", UserID: "u1", AuthAt: signOut.Unix() - 1, IssuedAt: signOut.Add(flowLifetime).Unix(), ExpiresAt: signOut.Add(flowLifetime + lifetime).Unix()}
	for _, at := range []time.Time{time.Unix(s.ExpiresAt, 0).Add(-time.Second), time.Unix(p.ExpiresAt, 0).Add(-time.Second)} {
		r.prune(at)
		if at.Unix() < s.ExpiresAt && !r.refuses(s) {
			t.Errorf("pruned at %s, the session issued before the sign-out by the store's time works again", at.Sub(signOut))
		}
		if !r.refuses(p) {
			t.Errorf("pruned at %s, the session of a login verified before the sign-out works again", at.Sub(signOut))
		}
	}
}

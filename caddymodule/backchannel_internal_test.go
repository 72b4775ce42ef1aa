package caddymodule

import (
	"testing"
	"time"
)

// A back-channel logout by subject, or by provider session, refuses
// exactly the sessions it names that were issued before it, as a
// sign-out everywhere does for a local user. A subject's cutoff counts
// for its sessions with a local user too: they are the same subject at
// the same connection, issued with JIT on (before or after the setting
// changed; see TestBackchannelLogoutBySubjectAfterJITWasSwitched).
func TestCutoffsBySubjectAndProviderSession(t *testing.T) {
	now := time.Now()
	s := func(uid, sub, sid string, issued time.Time) *Session {
		x := &Session{ID: newSessionID(), UserID: uid, Connection: "gh", Subject: sub, ProviderSID: sid, IssuedAt: issued.Unix()}
		x.prepare()
		return x
	}
	var r revocations
	before := now.Add(-time.Minute)
	jitOff := s("", "4242", "", before)
	other := s("", "4243", "", before)
	local := s("u-1", "4242", "", before)
	inSID := s("", "9", "op-1", before)
	later := s("", "4242", "", now.Add(time.Minute))
	r.add(userCutoffID(subjectCutoffKey("gh", "4242"), now), now.Add(time.Hour))
	r.add(userCutoffID(sidCutoffKey("gh", "op-1"), now), now.Add(time.Hour))
	for name, c := range map[string]struct {
		s    *Session
		want bool
	}{
		"the subject's session":                    {jitOff, true},
		"another subject":                          {other, false},
		"a local user with that subject":           {local, true},
		"the provider session":                     {inSID, true},
		"a session of the subject issued after it": {later, false},
	} {
		if got := r.refuses(c.s); got != c.want {
			t.Errorf("%s: refused %v, want %v", name, got, c.want)
		}
	}
}

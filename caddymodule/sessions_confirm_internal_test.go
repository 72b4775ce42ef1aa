package caddymodule

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// confirmStore answers RevokedSessions from a list, records the since
// it was asked for, and answers User from a map.
type confirmStore struct {
	provisioner.UserStore
	revoked []provisioner.RevokedSession
	users   map[string]*provisioner.User
	asked   []time.Time
	fail    error
}

func (s *confirmStore) RevokeSession(context.Context, string, time.Time) error { return nil }

func (s *confirmStore) RevokedSessions(_ context.Context, since time.Time) ([]provisioner.RevokedSession, error) {
	s.asked = append(s.asked, since)
	if s.fail != nil {
		return nil, s.fail
	}
	var out []provisioner.RevokedSession
	for _, r := range s.revoked {
		if !r.RevokedAt.Before(since) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *confirmStore) User(_ context.Context, id string) (*provisioner.User, error) {
	if u, ok := s.users[id]; ok {
		return u, nil
	}
	return nil, provisioner.ErrNotFound
}

// confirm (the check before an enrolment) reads what the store recorded
// since the last poll, from where that poll left off, and the user's
// status, rather than trusting this instance's memory; what it reads
// reaches the memory, and a store that fails is an error, not a yes.
func TestConfirmReadsTheStoreSinceTheLastPoll(t *testing.T) {
	ctx := context.Background()
	dbNow := time.Now().Add(-time.Hour).UTC() // the store's clock, far from ours
	st := &confirmStore{users: map[string]*provisioner.User{
		"u1": {ID: "u1", Status: provisioner.StatusActive},
		"u2": {ID: "u2", Status: provisioner.StatusActive},
	}}
	st.revoked = []provisioner.RevokedSession{{ID: "old", RevokedAt: dbNow, ExpiresAt: time.Now().Add(time.Hour)}}
	m := &sessions{revoked: newRevocations(), status: newUserStatus(), store: st, logger: zap.NewNop()}
	if _, err := m.revoked.sync(ctx, st, time.Time{}); err != nil {
		t.Fatal(err)
	}
	s1 := &Session{ID: "s1", UserID: "u1", Username: "u1", Connection: "c", IssuedAt: time.Now().Unix()}
	s1.prepare()
	if ok, err := m.confirm(ctx, st, s1); !ok || err != nil {
		t.Fatalf("an active user's live session: %v, %v", ok, err)
	}
	if want := dbNow.Add(-revocationReadOverlap); !st.asked[len(st.asked)-1].Equal(want) {
		t.Fatalf("read from %v, want where the poll left off (%v)", st.asked[len(st.asked)-1], want)
	}

	// A sign-out everywhere through another instance, not yet polled.
	st.revoked = append(st.revoked, provisioner.RevokedSession{
		ID: userCutoffID("u1", time.Unix(s1.IssuedAt, 0)), RevokedAt: dbNow.Add(time.Second), ExpiresAt: time.Now().Add(time.Hour)})
	if ok, err := m.confirm(ctx, st, s1); ok || err != nil {
		t.Fatalf("a session signed out through another instance: %v, %v", ok, err)
	}
	if !m.revoked.refuses(s1) {
		t.Fatal("the sign-out confirm read did not reach this instance's memory")
	}

	// A disable through another instance, not yet refreshed.
	s2 := &Session{ID: "s2", UserID: "u2", Username: "u2", Connection: "c", IssuedAt: time.Now().Unix()}
	s2.prepare()
	if active, _ := m.status.active("u2", time.Now().Unix()); !active {
		t.Fatal("precondition: u2 active in memory")
	}
	st.users["u2"] = &provisioner.User{ID: "u2", Status: provisioner.StatusDisabled}
	if ok, err := m.confirm(ctx, st, s2); ok || err != nil {
		t.Fatalf("a session of a user disabled through another instance: %v, %v", ok, err)
	}
	if active, _ := m.status.active("u2", time.Now().Unix()); active {
		t.Fatal("the disable confirm read did not reach this instance's memory")
	}
	delete(st.users, "u2")
	if ok, err := m.confirm(ctx, st, s2); ok || err != nil {
		t.Fatalf("a session of a deleted user: %v, %v", ok, err)
	}

	st.fail = errors.New("connection refused")
	if ok, err := m.confirm(ctx, st, s1); ok || err == nil {
		t.Fatalf("a store that fails: %v, %v; want an error", ok, err)
	}
}

package caddymodule

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// disableDuringReadStore answers a batch read with what the store held
// when the read began, and calls meanwhile before it returns: a disable
// made through this instance while the refresh's query was in flight.
type disableDuringReadStore struct {
	provisioner.UserStore
	users     map[string]provisioner.User
	meanwhile func()
}

func (s *disableDuringReadStore) UsersByID(_ context.Context, ids []string) ([]provisioner.User, error) {
	var out []provisioner.User
	for _, id := range ids {
		if u, ok := s.users[id]; ok {
			out = append(out, u)
		}
	}
	time.Sleep(time.Millisecond)
	s.meanwhile()
	return out, nil
}

func (s *disableDuringReadStore) User(ctx context.Context, id string) (*provisioner.User, error) {
	users, _ := s.UsersByID(ctx, []string{id})
	if len(users) == 0 {
		return nil, provisioner.ErrNotFound
	}
	return &users[0], nil
}

// singleReadStore is disableDuringReadStore without batch reads.
type singleReadStore struct {
	provisioner.UserStore
	s *disableDuringReadStore
}

func (s singleReadStore) User(ctx context.Context, id string) (*provisioner.User, error) {
	return s.s.User(ctx, id)
}

// A disable through this instance (the admin API) while the status
// refresh's read of the user was in flight stays: the refresh read the
// user active before the disable, and that older reading must not let
// her sessions in again until the next refresh (as a sign-in's reading
// must not: TestSignInReadingClearsOnlyAnOlderRefusal). Batched or not.
func TestStatusRefreshReadingDoesNotUndoANewerDisable(t *testing.T) {
	for name, batch := range map[string]bool{"batch": true, "one by one": false} {
		t.Run(name, func(t *testing.T) {
			u := newUserStatus()
			u.active("ada", time.Now().Unix())
			st := &disableDuringReadStore{users: map[string]provisioner.User{
				"ada": {ID: "ada", Username: "ada", Status: provisioner.StatusActive},
			}}
			st.meanwhile = func() { u.set("ada", true) }
			var store provisioner.UserStore = st
			if !batch {
				store = singleReadStore{s: st}
			}
			u.refresh(context.Background(), store, time.Hour, zap.NewNop())
			if active, _ := u.active("ada", time.Now().Unix()); active {
				t.Error("the refresh's reading from before the disable let the user's sessions in again")
			}
		})
	}
}

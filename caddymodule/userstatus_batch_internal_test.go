package caddymodule

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// countingBatchStore answers UsersByID from a map and counts the calls;
// its other UserStore methods are not there (the refresh must not call
// them when the store reads in batches).
type countingBatchStore struct {
	provisioner.UserStore
	users map[string]provisioner.User
	calls int
}

func (s *countingBatchStore) UsersByID(_ context.Context, ids []string) ([]provisioner.User, error) {
	s.calls++
	if len(ids) > provisioner.MaxUsersByID {
		return nil, fmt.Errorf("%d IDs", len(ids))
	}
	var out []provisioner.User
	for _, id := range ids {
		if u, ok := s.users[id]; ok {
			out = append(out, u)
		}
	}
	return out, nil
}

// The status refresh reads the users of live sessions MaxUsersByID at a
// time (issue #14: one query per user before), and a user missing from
// the answer is deleted: refused.
func TestUserStatusRefreshReadsInBatches(t *testing.T) {
	u := newUserStatus()
	st := &countingBatchStore{users: map[string]provisioner.User{}}
	now := time.Now().Unix()
	const n = 1201
	for i := range n {
		id := fmt.Sprintf("u%04d", i)
		u.active(id, now)
		status := provisioner.StatusActive
		if i%100 == 0 {
			status = provisioner.StatusDisabled
		}
		if i != 7 { // u0007 was deleted
			st.users[id] = provisioner.User{ID: id, Username: id, Status: status}
		}
	}
	u.refresh(context.Background(), st, time.Hour, zap.NewNop())
	if want := (n + provisioner.MaxUsersByID - 1) / provisioner.MaxUsersByID; st.calls != want {
		t.Fatalf("%d queries for %d live users, want %d", st.calls, n, want)
	}
	for id, want := range map[string]bool{"u0001": true, "u0100": false, "u0007": false, "u1200": false, "u1199": true} {
		if got, _ := u.active(id, now); got != want {
			t.Errorf("%s active %v, want %v", id, got, want)
		}
	}
}

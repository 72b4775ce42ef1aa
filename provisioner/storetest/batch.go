package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// UserAndBatch is what RunUserBatch tests.
type UserAndBatch interface {
	provisioner.UserStore
	provisioner.UserBatchReader
}

// RunUserBatch runs the part of the suite for provisioner.UserBatchReader.
func RunUserBatch(t *testing.T, newStore func(t *testing.T) UserAndBatch) {
	runCases(t, newStore, []testCase[UserAndBatch]{
		{"UsersByID", testUsersByID},
	})
}

func testUsersByID(t *testing.T, s UserAndBatch) {
	ctx := context.Background()
	var ids []string
	for i := range 7 {
		u := mustCreate(t, s, fmt.Sprintf("user%d", i), fmt.Sprintf("sub%d", i))
		ids = append(ids, u.ID)
	}
	got, err := s.UsersByID(ctx, []string{ids[3], "no-such-user", ids[0], ids[6]})
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, u := range got {
		gotIDs = append(gotIDs, u.ID)
		one, err := s.User(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkProfile(t, &u, one)
	}
	slices.Sort(gotIDs)
	want := []string{ids[0], ids[3], ids[6]}
	slices.Sort(want)
	if !slices.Equal(gotIDs, want) {
		t.Fatalf("UsersByID: %v, want %v", gotIDs, want)
	}
	if none, err := s.UsersByID(ctx, nil); err != nil || len(none) != 0 {
		t.Fatalf("no IDs: %v, %v", none, err)
	}
	many := make([]string, provisioner.MaxUsersByID)
	copy(many, ids)
	for i := len(ids); i < len(many); i++ {
		many[i] = fmt.Sprintf("missing-%d", i)
	}
	if got, err := s.UsersByID(ctx, many); err != nil || len(got) != len(ids) {
		t.Fatalf("%d IDs: %d users, %v", len(many), len(got), err)
	}
}

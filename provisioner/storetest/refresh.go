package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// UserAdminAndRefresh is what RunRefreshTokens tests: tokens belong to
// users, and go when the user is deleted.
type UserAdminAndRefresh interface {
	UserAndAdmin
	provisioner.RefreshTokenStore
}

// RunRefreshTokens runs the part of the suite for
// provisioner.RefreshTokenStore.
func RunRefreshTokens(t *testing.T, newStore func(t *testing.T) UserAdminAndRefresh) {
	runCases(t, newStore, []testCase[UserAdminAndRefresh]{
		{"RefreshTokenRoundTrip", testRefreshTokenRoundTrip},
		{"RefreshTokenGoesWithTheUser", testRefreshTokenDeleted},
	})
}

func testRefreshTokenRoundTrip(t *testing.T, s UserAdminAndRefresh) {
	ctx := context.Background()
	u := mustCreate(t, s, "ada", "ada-sub")
	now := time.Now().UTC().Truncate(time.Microsecond)
	put := func(sid string, at time.Time) provisioner.RefreshToken {
		tok := provisioner.RefreshToken{SessionID: sid, UserID: u.ID, Connection: "corp", Sealed: []byte("sealed-" + sid), RefreshAt: at, ExpiresAt: now.Add(time.Hour)}
		if err := s.PutRefreshToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		return tok
	}
	put("s2", now.Add(2*time.Minute))
	put("s1", now.Add(time.Minute))
	put("s3", now.Add(time.Hour))
	due, err := s.DueRefreshTokens(ctx, now.Add(5*time.Minute), 10)
	if err != nil || len(due) != 2 || due[0].SessionID != "s1" || due[1].SessionID != "s2" {
		t.Fatalf("due: %+v, %v", due, err)
	}
	if string(due[0].Sealed) != "sealed-s1" || due[0].UserID != u.ID || due[0].Connection != "corp" {
		t.Fatalf("token read back: %+v", due[0])
	}
	checkTime(t, "refresh_at", due[0].RefreshAt, now.Add(time.Minute))
	checkTime(t, "expires_at", due[0].ExpiresAt, now.Add(time.Hour))
	if due, _ := s.DueRefreshTokens(ctx, now.Add(5*time.Minute), 1); len(due) != 1 || due[0].SessionID != "s1" {
		t.Fatalf("limit 1: %+v", due)
	}
	// Replacing moves it: s1 rotated and due later.
	next := put("s1", now.Add(3*time.Hour))
	next.Sealed = []byte("rotated")
	if err := s.PutRefreshToken(ctx, next); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueRefreshTokens(ctx, now.Add(5*time.Minute), 10); len(due) != 1 || due[0].SessionID != "s2" {
		t.Fatalf("after replacing s1: %+v", due)
	}
	if err := s.DeleteRefreshToken(ctx, "s2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRefreshToken(ctx, "never-was"); err != nil {
		t.Fatalf("deleting a token that is not there: %v", err)
	}
	if due, _ := s.DueRefreshTokens(ctx, now.Add(4*time.Hour), 10); len(due) != 2 || string(due[1].Sealed) != "rotated" {
		t.Fatalf("at the end: %+v", due)
	}
	err = s.PutRefreshToken(ctx, provisioner.RefreshToken{SessionID: "x", UserID: "no-such-user", Connection: "corp", Sealed: []byte("x"), RefreshAt: now, ExpiresAt: now})
	if !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("a token of no user: %v", err)
	}
}

func testRefreshTokenDeleted(t *testing.T, s UserAdminAndRefresh) {
	ctx := context.Background()
	u := mustCreate(t, s, "ada", "ada-sub")
	now := time.Now()
	if err := s.PutRefreshToken(ctx, provisioner.RefreshToken{SessionID: "s", UserID: u.ID, Connection: "corp", Sealed: []byte("x"), RefreshAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if due, err := s.DueRefreshTokens(ctx, now.Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Fatalf("a deleted user's refresh token is still there: %+v, %v", due, err)
	}
}

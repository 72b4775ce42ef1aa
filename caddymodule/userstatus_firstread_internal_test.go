package caddymodule

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// userReader answers User with user, or err; it reads nothing else.
type userReader struct {
	sessionStore
	user  *provisioner.User
	err   error
	reads atomic.Int32
}

func (r *userReader) User(context.Context, string) (*provisioner.User, error) {
	r.reads.Add(1)
	return r.user, r.err
}

// A user's first read that fails because a reload replaced the
// configuration whose store it used (each PostgreSQL configuration has
// its own pool, which its cleanup closes) is made again at once with the
// next configuration's store, not firstReadRetry later: the requests of
// the user's sessions wait for it, and give up within firstReadWait.
func TestFirstReadGoesOnWithTheNextConfiguration(t *testing.T) {
	st := newSharedState()
	st.cancel = func() {} // the test runs the reader alone
	st.firstReadRetry = time.Hour
	closed := &userReader{err: errors.New("sql: database is closed")}
	st.attach(&stateConfig{store: closed, logger: zap.NewNop()})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.readNewUsers(ctx)
	}()
	defer func() { cancel(); <-done }()

	_, _, e := st.userStatus.lookup("u1", time.Now().Unix())
	for deadline := time.Now().Add(5 * time.Second); closed.reads.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("a user seen for the first time was not read")
		}
		time.Sleep(time.Millisecond)
	}
	if e.wasRead() {
		t.Fatal("a read the store failed counts as the user's first read")
	}
	open := &userReader{user: &provisioner.User{ID: "u1", Name: "Ada", Status: provisioner.StatusActive}}
	st.attach(&stateConfig{store: open, logger: zap.NewNop()})
	if !e.awaitRead(t.Context(), 2*time.Second) {
		t.Fatal("the first read, failed with the store of the configuration a reload replaced, was not made with the next one's")
	}
	if active, p := st.userStatus.active("u1", time.Now().Unix()); !active || p == nil || p.name != "Ada" {
		t.Errorf("after its first read: active %v, profile %+v", active, p)
	}
}

// A JIT-off sign-in reads its holder's status, not the holder's
// profile: it is the first read of the status (the JIT-off session
// waits for no other), and the holder's own sessions still wait for
// the profile's first read.
func TestAHolderSignInReadsOnlyTheHoldersStatus(t *testing.T) {
	u := newUserStatus()
	u.holderSignedIn("ada", time.Now())
	_, _, e := u.lookup("ada", time.Now().Unix())
	if !e.statusWasRead() {
		t.Error("a JIT-off sign-in's reading of its holder is not the holder's first status read")
	}
	if e.wasRead() {
		t.Error("a JIT-off sign-in's reading of its holder counts as the read of the holder's profile")
	}
	select {
	case <-u.unread:
	default:
		t.Error("the holder's profile was not asked for")
	}
}

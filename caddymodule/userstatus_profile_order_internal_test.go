package caddymodule

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// slowFirstReader answers the first User call with the record as it was
// when that call began, but only once release is closed; later calls
// answer at once with the record as it is then.
type slowFirstReader struct {
	sessionStore
	mu      sync.Mutex
	user    provisioner.User
	calls   int
	begun   chan struct{} // closed when the first call has read the record
	release chan struct{}
}

func (r *slowFirstReader) User(context.Context, string) (*provisioner.User, error) {
	r.mu.Lock()
	u := r.user
	r.calls++
	first := r.calls == 1
	r.mu.Unlock()
	if first {
		close(r.begun)
		<-r.release
	}
	return &u, nil
}

// A user's first read (readNewUsers) and the status refresh run side by
// side and may read the same user. One begun before an administrator's
// change and answered after a read begun after it is the older reading:
// its profile must not replace the newer one, or the change (a role
// taken away) is undone until the next refresh, past user_status_refresh.
func TestAnOlderReadDoesNotReplaceANewerProfile(t *testing.T) {
	u := newUserStatus()
	u.active("ada", time.Now().Unix()) // seen: queued for its first read
	store := &slowFirstReader{
		user:  provisioner.User{ID: "ada", Username: "ada", Name: "Before", Status: provisioner.StatusActive},
		begun: make(chan struct{}), release: make(chan struct{}),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		u.readUnread(context.Background(), store, zap.NewNop())
	}()
	<-store.begun
	store.mu.Lock()
	store.user.Name = "After" // the administrator's change
	store.mu.Unlock()
	time.Sleep(2 * time.Millisecond) // the refresh's read begins later
	u.refresh(context.Background(), store, time.Hour, zap.NewNop())
	close(store.release)
	<-done

	_, profile := u.active("ada", time.Now().Unix())
	if profile == nil || profile.name != "After" {
		name := "<none>"
		if profile != nil {
			name = profile.name
		}
		t.Errorf("profile name %q after both reads; want the newer reading's \"After\"", name)
	}
}

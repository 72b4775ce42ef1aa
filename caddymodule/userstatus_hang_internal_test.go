package caddymodule

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// hangingReader is a store whose first read of users does not answer
// until its context ends (a row lock held by a stuck transaction, a
// network partition that drops packets without a reset); every later
// read finds each user disabled.
type hangingReader struct {
	sessionStore
	reads atomic.Int32
}

func (r *hangingReader) answer(ctx context.Context) error {
	if r.reads.Add(1) == 1 {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (r *hangingReader) User(ctx context.Context, id string) (*provisioner.User, error) {
	if err := r.answer(ctx); err != nil {
		return nil, err
	}
	return &provisioner.User{ID: id, Status: provisioner.StatusDisabled}, nil
}

func (r *hangingReader) UserByUsername(ctx context.Context, name string) (*provisioner.User, error) {
	if err := r.answer(ctx); err != nil {
		return nil, err
	}
	return &provisioner.User{ID: "u1", Username: name, Status: provisioner.StatusDisabled}, nil
}

// hangingBatchReader is hangingReader with batch reads.
type hangingBatchReader struct{ *hangingReader }

func (r hangingBatchReader) UsersByID(ctx context.Context, ids []string) ([]provisioner.User, error) {
	if err := r.answer(ctx); err != nil {
		return nil, err
	}
	var out []provisioner.User
	for _, id := range ids {
		out = append(out, provisioner.User{ID: id, Status: provisioner.StatusDisabled})
	}
	return out, nil
}

// A read of the full user-status refresh that the store never answers
// must not stall the refresh for good: every later refresh, and with it
// every disable made in the store, would never reach a live session
// (S7). Each read gives up after storeTimeout, and the next refresh
// reads again.
func TestAHungStoreReadDoesNotStallTheStatusRefresh(t *testing.T) {
	for name, c := range map[string]struct {
		store func(*hangingReader) sessionStore
		id    string
	}{
		"batch":          {func(r *hangingReader) sessionStore { return hangingBatchReader{r} }, "u1"},
		"one by one":     {func(r *hangingReader) sessionStore { return r }, "u1"},
		"holder by name": {func(r *hangingReader) sessionStore { return r }, nameCutoffKey("alice@example.com")},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if c.id == "" {
				t.Fatal("no name key for the holder")
			}
			st := newSharedState()
			st.cancel = func() {} // the test runs the refresh alone
			r := &hangingReader{}
			st.attach(&stateConfig{store: c.store(r), logger: zap.NewNop(), refresh: 50 * time.Millisecond, lifetime: time.Hour})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan struct{})
			go func() {
				defer close(done)
				st.refreshUserStatus(ctx)
			}()
			defer func() { cancel(); <-done }()

			st.userStatus.lookup(c.id, time.Now().Unix())
			deadline := time.Now().Add(storeTimeout + 5*time.Second)
			for {
				if active, _ := st.userStatus.active(c.id, time.Now().Unix()); !active {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the user, disabled in the store, still active %s after a refresh read hung (reads: %d)",
						time.Since(deadline.Add(-storeTimeout-5*time.Second)).Round(time.Second), r.reads.Load())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

package caddymodule

import (
	"context"
	"testing"
	"time"
)

// sleepingOn returns a shared state whose current configuration has the
// user-status refresh interval every, with its background work not
// started: the tests run sleep themselves.
func sleepingOn(every time.Duration) *sharedState {
	st := newSharedState()
	st.cancel = func() {}
	st.attach(&stateConfig{refresh: every})
	return st
}

func refreshInterval(cfg *stateConfig) time.Duration { return cfg.refresh }

// startSleep runs st.sleep from last in the background; its result
// arrives on the channel.
func startSleep(ctx context.Context, st *sharedState, last time.Time) <-chan bool {
	done := make(chan bool, 1)
	go func() { done <- st.sleep(ctx, last, refreshInterval) }()
	return done
}

// The loops of the background work (revocation follower, user-status
// refresher, deprovisioning sweeper, session refresher) all sleep
// through sharedState.sleep: a reload that shortens the interval ends a
// wait armed with the longer one.
func TestSleepReArmsWhenAReloadShortensTheInterval(t *testing.T) {
	st := sleepingOn(time.Hour)
	done := startSleep(t.Context(), st, time.Now())
	select {
	case <-done:
		t.Fatal("sleep returned before its hour, with no reload")
	case <-time.After(100 * time.Millisecond):
	}
	reloaded := time.Now()
	st.attach(&stateConfig{refresh: 300 * time.Millisecond})
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("sleep reported its context ended")
		}
		if d := time.Since(reloaded); d > 2*time.Second {
			t.Errorf("sleep ended %s after a reload to 300ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a reload from 1h to 300ms did not end the sleep within 5s")
	}
}

// The new interval counts from the last pass, not from the reload: a
// loop that ran ten minutes ago, reloaded from 1h to 1s, runs at once.
func TestSleepCountsTheNewIntervalFromTheLastPass(t *testing.T) {
	st := sleepingOn(time.Hour)
	done := startSleep(t.Context(), st, time.Now().Add(-10*time.Minute))
	time.Sleep(50 * time.Millisecond)
	reloaded := time.Now()
	st.attach(&stateConfig{refresh: time.Minute})
	select {
	case <-done:
		if d := time.Since(reloaded); d > time.Second {
			t.Errorf("sleep ended %s after the reload, want at once", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a pass already a minute overdue under the new interval did not run")
	}
}

// A reload that lengthens the interval, or a generation that leaves,
// does not postpone a wait: the shorter interval already armed holds.
func TestSleepKeepsTheShorterIntervalArmed(t *testing.T) {
	st := sleepingOn(400 * time.Millisecond)
	start := time.Now()
	done := startSleep(t.Context(), st, start)
	time.Sleep(50 * time.Millisecond)
	longer := &stateConfig{refresh: time.Hour}
	st.attach(longer)
	st.detach(longer)
	st.attach(&stateConfig{refresh: time.Hour})
	select {
	case <-done:
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Errorf("sleep ended after %s, before its 400ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a reload to 1h postponed a wait armed with 400ms")
	}
}

// A sleep ends with its context, reporting so.
func TestSleepEndsWithItsContext(t *testing.T) {
	st := sleepingOn(time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	done := startSleep(ctx, st, time.Now())
	cancel()
	select {
	case ok := <-done:
		if ok {
			t.Error("sleep reported its interval passed; its context ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sleep did not end with its context")
	}
}

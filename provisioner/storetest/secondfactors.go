package storetest

import (
	"bytes"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// RunSecondFactors runs the part of the suite for
// provisioner.SecondFactorStore, on a store that also keeps the users.
func RunSecondFactors(t *testing.T, newStore func(t *testing.T) UserAndSecondFactors) {
	runCases(t, newStore, []testCase[UserAndSecondFactors]{
		{"TOTPRoundTrip", testTOTPRoundTrip},
		{"SetTOTPMissingUser", testSetTOTPMissingUser},
		{"TOTPReplay", testTOTPReplay},
		{"TOTPConcurrentStep", testTOTPConcurrentStep},
		{"RecoveryCode", testRecoveryCode},
		{"RecoveryCodeConcurrent", testRecoveryCodeConcurrent},
		{"TOTPFailures", testTOTPFailures},
		{"TOTPAttemptsConcurrent", testTOTPAttemptsConcurrent},
		{"DeleteTOTP", testDeleteTOTP},
	})
}

func testTOTPRoundTrip(t *testing.T, s UserAndSecondFactors) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	_, err := s.TOTP(ctx, u.ID)
	wantErr(t, "TOTP(not enrolled)", err, provisioner.ErrNotFound)

	in := provisioner.TOTP{
		SealedSecret:   sealed,
		RecoveryHashes: []string{"h1", "h2", "h3"},
		LastStep:       58000000,
		Failures:       2,
		LastFailure:    base.Add(time.Minute),
		CreatedAt:      base,
	}
	mustSetTOTP(t, s, u.ID, in)
	got := mustTOTP(t, s, u.ID)
	if !bytes.Equal(got.SealedSecret, sealed) {
		t.Errorf("SealedSecret = %x, want %x", got.SealedSecret, sealed)
	}
	if !slices.Equal(got.RecoveryHashes, in.RecoveryHashes) {
		t.Errorf("RecoveryHashes = %q, want %q", got.RecoveryHashes, in.RecoveryHashes)
	}
	if got.LastStep != in.LastStep || got.Failures != in.Failures {
		t.Errorf("LastStep, Failures = %d, %d; want %d, %d", got.LastStep, got.Failures, in.LastStep, in.Failures)
	}
	checkTime(t, "LastFailure", got.LastFailure, in.LastFailure)
	checkTime(t, "CreatedAt", got.CreatedAt, in.CreatedAt)
	_, err = s.TOTP(ctx, other.ID)
	wantErr(t, "TOTP(other user)", err, provisioner.ErrNotFound)

	// Enrolling again replaces the factor; a zero CreatedAt means now.
	before := time.Now()
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: []byte("second"), RecoveryHashes: []string{"h9"}})
	after := time.Now()
	got = mustTOTP(t, s, u.ID)
	if string(got.SealedSecret) != "second" || !slices.Equal(got.RecoveryHashes, []string{"h9"}) ||
		got.LastStep != 0 || got.Failures != 0 || !got.LastFailure.IsZero() {
		t.Errorf("replaced factor = %+v", got)
	}
	checkBetween(t, "CreatedAt", got.CreatedAt, before, after)

	// Without recovery codes.
	mustSetTOTP(t, s, other.ID, provisioner.TOTP{SealedSecret: sealed, CreatedAt: base})
	if got := mustTOTP(t, s, other.ID); len(got.RecoveryHashes) != 0 || !bytes.Equal(got.SealedSecret, sealed) {
		t.Errorf("factor without recovery codes = %+v", got)
	}
}

func testSetTOTPMissingUser(t *testing.T, s UserAndSecondFactors) {
	ctx := t.Context()
	mustCreate(t, s, "alice", "sub-1")
	const missing = "00000000-0000-4000-8000-000000000000"
	err := s.SetTOTP(ctx, missing, provisioner.TOTP{SealedSecret: sealed, CreatedAt: base})
	wantErr(t, "SetTOTP(missing user)", err, provisioner.ErrNotFound)
	_, err = s.TOTP(ctx, missing)
	wantErr(t, "TOTP(missing user)", err, provisioner.ErrNotFound)
}

func testTOTPReplay(t *testing.T, s UserAndSecondFactors) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	err := s.UseTOTPStep(ctx, u.ID, 100)
	wantErr(t, "UseTOTPStep(not enrolled)", err, provisioner.ErrNotFound)

	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, LastStep: 99, CreatedAt: base})
	wantErr(t, "UseTOTPStep(the enrolled last step)", s.UseTOTPStep(ctx, u.ID, 99), provisioner.ErrCodeUsed)
	if err := s.UseTOTPStep(ctx, u.ID, 100); err != nil {
		t.Fatalf("UseTOTPStep(100): %v", err)
	}
	wantErr(t, "UseTOTPStep(100 again)", s.UseTOTPStep(ctx, u.ID, 100), provisioner.ErrCodeUsed)
	wantErr(t, "UseTOTPStep(older 98)", s.UseTOTPStep(ctx, u.ID, 98), provisioner.ErrCodeUsed)
	if got := mustTOTP(t, s, u.ID).LastStep; got != 100 {
		t.Errorf("LastStep = %d, want 100", got)
	}
	if err := s.UseTOTPStep(ctx, u.ID, 102); err != nil {
		t.Fatalf("UseTOTPStep(102): %v", err)
	}
	wantErr(t, "UseTOTPStep(101 after 102)", s.UseTOTPStep(ctx, u.ID, 101), provisioner.ErrCodeUsed)
	if got := mustTOTP(t, s, u.ID); got.LastStep != 102 || !bytes.Equal(got.SealedSecret, sealed) {
		t.Errorf("factor = %+v, want LastStep 102 and the secret kept", got)
	}
}

// testTOTPConcurrentStep: of many simultaneous uses of one code, exactly
// one is accepted.
func testTOTPConcurrentStep(t *testing.T, s UserAndSecondFactors) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, LastStep: 10, CreatedAt: base})
	const n = 20
	_, errs := runConcurrently(n, func(int) (provisioner.Result, error) {
		return provisioner.Result{}, s.UseTOTPStep(ctx, u.ID, 11)
	})
	accepted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, provisioner.ErrCodeUsed):
			t.Errorf("goroutine %d: err = %v, want nil or ErrCodeUsed", i, err)
		}
	}
	if accepted != 1 {
		t.Errorf("%d of %d concurrent uses of one step accepted, want exactly 1", accepted, n)
	}
	if got := mustTOTP(t, s, u.ID).LastStep; got != 11 {
		t.Errorf("LastStep = %d, want 11", got)
	}
}

func testRecoveryCode(t *testing.T, s UserAndSecondFactors) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	wantErr(t, "UseRecoveryCode(not enrolled)", s.UseRecoveryCode(ctx, u.ID, "h1"), provisioner.ErrNotFound)
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, RecoveryHashes: []string{"h1", "h2", "h3"},
		LastStep: 7, Failures: 4, LastFailure: base, CreatedAt: base})

	if err := s.UseRecoveryCode(ctx, u.ID, "h2"); err != nil {
		t.Fatalf("UseRecoveryCode(h2): %v", err)
	}
	got := mustTOTP(t, s, u.ID)
	if !slices.Equal(got.RecoveryHashes, []string{"h1", "h3"}) {
		t.Errorf("RecoveryHashes after using h2 = %q, want [h1 h3]", got.RecoveryHashes)
	}
	if got.Failures != 0 || got.LastStep != 7 || !bytes.Equal(got.SealedSecret, sealed) {
		t.Errorf("after a recovery code: %+v, want Failures 0, LastStep 7, the secret kept", got)
	}
	wantErr(t, "UseRecoveryCode(h2 again)", s.UseRecoveryCode(ctx, u.ID, "h2"), provisioner.ErrCodeUsed)
	wantErr(t, "UseRecoveryCode(unknown)", s.UseRecoveryCode(ctx, u.ID, "nope"), provisioner.ErrCodeUsed)
	wantErr(t, "UseRecoveryCode(prefix)", s.UseRecoveryCode(ctx, u.ID, "h"), provisioner.ErrCodeUsed)
	wantErr(t, "UseRecoveryCode(empty)", s.UseRecoveryCode(ctx, u.ID, ""), provisioner.ErrCodeUsed)
	for _, h := range []string{"h1", "h3"} {
		if err := s.UseRecoveryCode(ctx, u.ID, h); err != nil {
			t.Fatalf("UseRecoveryCode(%s): %v", h, err)
		}
	}
	if got := mustTOTP(t, s, u.ID).RecoveryHashes; len(got) != 0 {
		t.Errorf("RecoveryHashes after using all = %q, want none", got)
	}
	wantErr(t, "UseRecoveryCode(none left)", s.UseRecoveryCode(ctx, u.ID, "h1"), provisioner.ErrCodeUsed)

	// Another user's codes are theirs.
	bob := mustCreate(t, s, "bob", "sub-2")
	mustSetTOTP(t, s, bob.ID, provisioner.TOTP{SealedSecret: sealed, RecoveryHashes: []string{"hb"}, CreatedAt: base})
	wantErr(t, "UseRecoveryCode(bob's code for alice)", s.UseRecoveryCode(ctx, u.ID, "hb"), provisioner.ErrCodeUsed)
	if got := mustTOTP(t, s, bob.ID).RecoveryHashes; !slices.Equal(got, []string{"hb"}) {
		t.Errorf("bob's RecoveryHashes = %q, want [hb]", got)
	}
}

// testRecoveryCodeConcurrent: of many simultaneous uses of one recovery
// code, exactly one is accepted, and the other codes stay.
func testRecoveryCodeConcurrent(t *testing.T, s UserAndSecondFactors) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, RecoveryHashes: []string{"h1", "h2", "h3"}, CreatedAt: base})
	const n = 20
	_, errs := runConcurrently(n, func(int) (provisioner.Result, error) {
		return provisioner.Result{}, s.UseRecoveryCode(ctx, u.ID, "h2")
	})
	accepted := 0
	for i, err := range errs {
		switch {
		case err == nil:
			accepted++
		case !errors.Is(err, provisioner.ErrCodeUsed):
			t.Errorf("goroutine %d: err = %v, want nil or ErrCodeUsed", i, err)
		}
	}
	if accepted != 1 {
		t.Errorf("%d of %d concurrent uses of one recovery code accepted, want exactly 1", accepted, n)
	}
	if got := mustTOTP(t, s, u.ID).RecoveryHashes; !slices.Equal(got, []string{"h1", "h3"}) {
		t.Errorf("RecoveryHashes = %q, want [h1 h3]", got)
	}
}

func testTOTPFailures(t *testing.T, s UserAndSecondFactors) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	admitAll := func(int, time.Time, time.Time) time.Duration { return 0 }
	_, _, err := s.AdmitTOTPAttempt(ctx, u.ID, base, admitAll)
	wantErr(t, "AdmitTOTPAttempt(not enrolled)", err, provisioner.ErrNotFound)
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, RecoveryHashes: []string{"h1"}, LastStep: 5, CreatedAt: base})

	// The policy sees the stored count and time and the attempt's time;
	// an admitted attempt is counted at its time.
	admit := func(at time.Time, want int) {
		t.Helper()
		before := mustTOTP(t, s, u.ID)
		var saw bool
		n, wait, err := s.AdmitTOTPAttempt(ctx, u.ID, at, func(attempts int, last, now time.Time) time.Duration {
			saw = true
			if attempts != before.Failures || !last.Equal(before.LastFailure) || !now.Equal(at) {
				t.Errorf("policy called with (%d, %v, %v), want (%d, %v, %v)", attempts, last, now, before.Failures, before.LastFailure, at)
			}
			return 0
		})
		if err != nil || wait != 0 || n != want || !saw {
			t.Fatalf("AdmitTOTPAttempt = %d, %v, %v (policy run: %v), want %d, 0, nil", n, wait, err, saw, want)
		}
		got := mustTOTP(t, s, u.ID)
		if got.Failures != want {
			t.Errorf("stored Failures = %d, want %d", got.Failures, want)
		}
		checkTime(t, "LastFailure", got.LastFailure, at)
	}
	for i := 1; i <= 3; i++ {
		admit(base.Add(time.Duration(i)*time.Minute), i)
	}
	if got := mustTOTP(t, s, u.ID); got.LastStep != 5 || !slices.Equal(got.RecoveryHashes, []string{"h1"}) {
		t.Errorf("attempts changed the factor: %+v", got)
	}
	// An attempt the policy refuses returns its wait and is not counted.
	n, wait, err := s.AdmitTOTPAttempt(ctx, u.ID, base.Add(time.Hour), func(int, time.Time, time.Time) time.Duration { return 7 * time.Second })
	if err != nil || wait != 7*time.Second || n != 3 {
		t.Fatalf("refused AdmitTOTPAttempt = %d, %v, %v, want 3, 7s, nil", n, wait, err)
	}
	if got := mustTOTP(t, s, u.ID); got.Failures != 3 {
		t.Errorf("Failures after a refused attempt = %d, want 3", got.Failures)
	} else {
		checkTime(t, "LastFailure after a refused attempt", got.LastFailure, base.Add(3*time.Minute))
	}

	// A refused code does not reset the count; an accepted one does.
	wantErr(t, "UseTOTPStep(old)", s.UseTOTPStep(ctx, u.ID, 5), provisioner.ErrCodeUsed)
	if got := mustTOTP(t, s, u.ID).Failures; got != 3 {
		t.Errorf("Failures after a refused step = %d, want 3", got)
	}
	if err := s.UseTOTPStep(ctx, u.ID, 6); err != nil {
		t.Fatalf("UseTOTPStep: %v", err)
	}
	if got := mustTOTP(t, s, u.ID).Failures; got != 0 {
		t.Errorf("Failures after an accepted step = %d, want 0", got)
	}
	admit(base.Add(time.Hour), 1)
	admit(base.Add(2*time.Hour), 2)
	wantErr(t, "UseRecoveryCode(unknown)", s.UseRecoveryCode(ctx, u.ID, "nope"), provisioner.ErrCodeUsed)
	if got := mustTOTP(t, s, u.ID).Failures; got != 2 {
		t.Errorf("Failures after an unknown recovery code = %d, want 2", got)
	}
	if err := s.UseRecoveryCode(ctx, u.ID, "h1"); err != nil {
		t.Fatalf("UseRecoveryCode: %v", err)
	}
	if got := mustTOTP(t, s, u.ID).Failures; got != 0 {
		t.Errorf("Failures after a recovery code = %d, want 0", got)
	}

	// Concurrent attempts admitted by the policy are all counted.
	const burst = 20
	_, errs := runConcurrently(burst, func(int) (provisioner.Result, error) {
		_, _, err := s.AdmitTOTPAttempt(ctx, u.ID, base, admitAll)
		return provisioner.Result{}, err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if got := mustTOTP(t, s, u.ID).Failures; got != burst {
		t.Errorf("Failures after %d concurrent admitted attempts = %d", burst, got)
	}
}

// threeThenDoubling is the rate-limit policy these cases hand the store,
// of the shape the module's own has (mfa.Locked): 3 attempts free, then
// a wait of 1s after the last attempt, doubling with each further one.
// It is written here so the suite depends on the store interface alone:
// the store runs whatever policy it is given inside its transaction.
func threeThenDoubling(attempts int, last, now time.Time) time.Duration {
	if attempts < 3 {
		return 0
	}
	d := time.Second << min(attempts-3, 8)
	if left := last.Add(d).Sub(now); left > 0 {
		return min(left, d)
	}
	return 0
}

// testTOTPAttemptsConcurrent: a burst of attempts at one instant, with
// a policy of the module's shape (3 free, then a wait), admits exactly 3, however
// the store's callers interleave; the rest are refused with a wait and
// not counted.
func testTOTPAttemptsConcurrent(t *testing.T, s UserAndSecondFactors) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, LastStep: 5, CreatedAt: base})
	const n = 30
	var admitted, refused atomic.Int32
	_, errs := runConcurrently(n, func(int) (provisioner.Result, error) {
		_, wait, err := s.AdmitTOTPAttempt(ctx, u.ID, base, threeThenDoubling)
		switch {
		case err != nil:
		case wait == 0:
			admitted.Add(1)
		case wait > 0:
			refused.Add(1)
		}
		return provisioner.Result{}, err
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if admitted.Load() != 3 || refused.Load() != n-3 {
		t.Errorf("of %d concurrent attempts %d admitted and %d refused, want 3 and %d", n, admitted.Load(), refused.Load(), n-3)
	}
	if got := mustTOTP(t, s, u.ID); got.Failures != 3 {
		t.Errorf("Failures after the burst = %d, want 3 (refused attempts are not counted)", got.Failures)
	}
	// The wait passed, one more is admitted; then the wait doubles.
	if _, wait, err := s.AdmitTOTPAttempt(ctx, u.ID, base.Add(time.Second), threeThenDoubling); err != nil || wait != 0 {
		t.Errorf("attempt after the wait: %v, %v, want admitted", wait, err)
	}
	if _, wait, err := s.AdmitTOTPAttempt(ctx, u.ID, base.Add(time.Second), threeThenDoubling); err != nil || wait != 2*time.Second {
		t.Errorf("next attempt at once: %v, %v, want a 2s wait", wait, err)
	}
}

func testDeleteTOTP(t *testing.T, s UserAndSecondFactors) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	other := mustCreate(t, s, "bob", "sub-2")
	if err := s.DeleteTOTP(ctx, u.ID); err != nil {
		t.Errorf("DeleteTOTP(not enrolled): %v", err)
	}
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: sealed, CreatedAt: base})
	mustSetTOTP(t, s, other.ID, provisioner.TOTP{SealedSecret: sealed, CreatedAt: base})
	if err := s.DeleteTOTP(ctx, u.ID); err != nil {
		t.Fatalf("DeleteTOTP: %v", err)
	}
	_, err := s.TOTP(ctx, u.ID)
	wantErr(t, "TOTP(deleted)", err, provisioner.ErrNotFound)
	wantErr(t, "UseTOTPStep(deleted)", s.UseTOTPStep(ctx, u.ID, 1), provisioner.ErrNotFound)
	if err := s.DeleteTOTP(ctx, u.ID); err != nil {
		t.Errorf("DeleteTOTP(again): %v", err)
	}
	if err := s.DeleteTOTP(ctx, "00000000-0000-4000-8000-000000000000"); err != nil {
		t.Errorf("DeleteTOTP(missing user): %v", err)
	}
	mustTOTP(t, s, other.ID)
	if got := mustUser(t, s, u.ID); got.Username != "alice" {
		t.Errorf("user after DeleteTOTP = %+v", got)
	}
	// Enrolling afresh works.
	mustSetTOTP(t, s, u.ID, provisioner.TOTP{SealedSecret: []byte("new"), CreatedAt: base})
	if got := mustTOTP(t, s, u.ID); string(got.SealedSecret) != "new" {
		t.Errorf("re-enrolled factor = %+v", got)
	}
}

func mustSetTOTP(t *testing.T, s provisioner.SecondFactorStore, userID string, tf provisioner.TOTP) {
	t.Helper()
	if err := s.SetTOTP(t.Context(), userID, tf); err != nil {
		t.Fatalf("SetTOTP: %v", err)
	}
}

func mustTOTP(t *testing.T, s provisioner.SecondFactorStore, userID string) *provisioner.TOTP {
	t.Helper()
	tf, err := s.TOTP(t.Context(), userID)
	if err != nil {
		t.Fatalf("TOTP: %v", err)
	}
	return tf
}

// UserFactorsAndEnroller is what RunTOTPEnroller tests.
type UserFactorsAndEnroller interface {
	UserAndSecondFactors
	provisioner.TOTPEnroller
}

// RunTOTPEnroller runs the part of the suite for the optional
// provisioner.TOTPEnroller.
func RunTOTPEnroller(t *testing.T, newStore func(t *testing.T) UserFactorsAndEnroller) {
	runCases(t, newStore, []testCase[UserFactorsAndEnroller]{
		{"EnrolTOTP", testEnrolTOTP},
		{"EnrolTOTPConcurrent", testEnrolTOTPConcurrent},
	})
}

func testEnrolTOTP(t *testing.T, s UserFactorsAndEnroller) {
	ctx := t.Context()
	u := mustCreate(t, s, "alice", "sub-1")
	first := provisioner.TOTP{SealedSecret: []byte("first"), RecoveryHashes: []string{"h1"}, LastStep: 7, CreatedAt: base}
	if err := s.EnrolTOTP(ctx, u.ID, first); err != nil {
		t.Fatalf("EnrolTOTP(first): %v", err)
	}
	second := provisioner.TOTP{SealedSecret: []byte("second"), RecoveryHashes: []string{"h2"}, LastStep: 9, CreatedAt: base}
	wantErr(t, "EnrolTOTP(second)", s.EnrolTOTP(ctx, u.ID, second), provisioner.ErrFactorExists)
	if got := mustTOTP(t, s, u.ID); string(got.SealedSecret) != "first" || !slices.Equal(got.RecoveryHashes, []string{"h1"}) || got.LastStep != 7 {
		t.Errorf("after a second enrolment the factor is %q %q step %d, want the first kept", got.SealedSecret, got.RecoveryHashes, got.LastStep)
	}
	wantErr(t, "EnrolTOTP(no such user)", s.EnrolTOTP(ctx, "no-such-user", first), provisioner.ErrNotFound)

	// After an administrator's reset, the user enrols again.
	if err := s.DeleteTOTP(ctx, u.ID); err != nil {
		t.Fatalf("DeleteTOTP: %v", err)
	}
	if err := s.EnrolTOTP(ctx, u.ID, second); err != nil {
		t.Fatalf("EnrolTOTP after DeleteTOTP: %v", err)
	}
	if got := mustTOTP(t, s, u.ID); string(got.SealedSecret) != "second" {
		t.Errorf("after the reset and a new enrolment the factor is %q, want second", got.SealedSecret)
	}
}

func testEnrolTOTPConcurrent(t *testing.T, s UserFactorsAndEnroller) {
	u := mustCreate(t, s, "alice", "sub-1")
	const callers = 12
	errs := make([]error, callers)
	start := make(chan struct{})
	done := make(chan int)
	for i := range callers {
		go func() {
			<-start
			errs[i] = s.EnrolTOTP(t.Context(), u.ID, provisioner.TOTP{SealedSecret: []byte{byte('a' + i)}, CreatedAt: base})
			done <- i
		}()
	}
	close(start)
	for range callers {
		<-done
	}
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("callers %d and %d both enrolled", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, provisioner.ErrFactorExists):
			t.Fatalf("caller %d: %v, want nil or ErrFactorExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no caller enrolled")
	}
	if got := mustTOTP(t, s, u.ID); !bytes.Equal(got.SealedSecret, []byte{byte('a' + winner)}) {
		t.Errorf("stored secret %q, want the one enrolment that succeeded (%q)", got.SealedSecret, []byte{byte('a' + winner)})
	}
}

package mfa_test

import (
	"context"
	"encoding/base32"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/mfa"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// flowStore is a real SQLite store with one user, for the rules.
func flowStore(t *testing.T) (*sqlitestore.Store, string) {
	t.Helper()
	s, err := sqlitestore.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u, err := s.CreateUser(t.Context(), &provisioner.User{Username: "alice"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp", Subject: "a"}, CreatedAt: time.Now(), LastLoginAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return s, u.ID
}

func plain(secret string) ([]byte, error)    { return []byte(secret), nil }
func unsealed(sealed []byte) (string, error) { return string(sealed), nil }

// plainHash and plainHashes store and look up recovery codes by their
// plain hash: these rules do not depend on how the codes are kept.
func plainHash(code string) string     { return mfa.HashRecoveryCode(code) }
func plainHashes(code string) []string { return []string{mfa.HashRecoveryCode(code)} }

// Enrolment takes a factor only when the code proves the app has the
// secret, and never replaces a factor once there is one.
func TestEnrolNeverReplacesAFactor(t *testing.T) {
	store, id := flowStore(t)
	ctx, now := t.Context(), time.Now()
	if res, _, err := mfa.Enrol(ctx, store, id, rfcSecret, "000000x", 10, now, plain, plainHash); err != nil || res != mfa.WrongEnrolCode {
		t.Fatalf("enrol with a wrong code: %v %v", res, err)
	}
	if _, err := store.TOTP(ctx, id); !errors.Is(err, provisioner.ErrNotFound) {
		t.Fatalf("a wrong enrolment code saved a factor: %v", err)
	}
	res, codes, err := mfa.Enrol(ctx, store, id, rfcSecret, codeAt(t, rfcSecret, now), 10, now, plain, plainHash)
	if err != nil || res != mfa.Enrolled || len(codes) != 10 {
		t.Fatalf("enrol: %v, %d codes, %v", res, len(codes), err)
	}
	other := base32.StdEncoding.EncodeToString([]byte("another 20-byte seed"))
	if res, _, err := mfa.Enrol(ctx, store, id, other, codeAt(t, other, now), 10, now, plain, plainHash); err != nil || res != mfa.AlreadyEnrolled {
		t.Fatalf("a second enrolment: %v %v, want AlreadyEnrolled", res, err)
	}
	if f, err := store.TOTP(ctx, id); err != nil || string(f.SealedSecret) != rfcSecret {
		t.Fatalf("the factor was replaced: %v %v", f, err)
	}
}

// Two enrolments confirmed at the same moment (two browsers, two
// instances) save one factor: the other is told the user has one, and
// never shows recovery codes for a factor that was not kept.
func TestEnrolmentsConfirmedAtOnceSaveOne(t *testing.T) {
	sqlite, id := flowStore(t)
	now := time.Now()
	const tabs = 8
	// Every read of the factor is answered once all the enrolments have
	// read (or a second has passed), as on a loaded store: the widest
	// window an enrolment that checks and then saves can meet.
	store := &readsTogether{Store: sqlite, want: tabs, all: make(chan struct{})}
	results := make([]mfa.EnrolResult, tabs)
	codes := make([][]string, tabs)
	secrets := make([]string, tabs)
	errs := make([]error, tabs)
	start := make(chan struct{})
	done := make(chan struct{})
	for i := range tabs {
		secrets[i] = base32.StdEncoding.EncodeToString([]byte(fmt.Sprintf("enrolment seed #%04d", i)))
		go func() {
			defer func() { done <- struct{}{} }()
			code := codeAt(t, secrets[i], now)
			<-start
			results[i], codes[i], errs[i] = mfa.Enrol(t.Context(), store, id, secrets[i], code, 10, now, plain, plainHash)
		}()
	}
	close(start)
	for range tabs {
		<-done
	}
	winner := -1
	for i := range tabs {
		switch {
		case errs[i] != nil:
			t.Fatalf("enrolment %d: %v", i, errs[i])
		case results[i] == mfa.Enrolled && winner >= 0:
			t.Fatalf("enrolments %d and %d both said Enrolled", winner, i)
		case results[i] == mfa.Enrolled:
			winner = i
		case results[i] != mfa.AlreadyEnrolled || codes[i] != nil:
			t.Fatalf("enrolment %d: %v with %d codes, want AlreadyEnrolled and none", i, results[i], len(codes[i]))
		}
	}
	if winner < 0 {
		t.Fatal("no enrolment was saved")
	}
	if f, err := sqlite.TOTP(t.Context(), id); err != nil || string(f.SealedSecret) != secrets[winner] {
		t.Fatalf("the stored factor is not the one whose enrolment said Enrolled: %v", err)
	}
}

// readsTogether answers each TOTP read once want reads have been made.
type readsTogether struct {
	*sqlitestore.Store
	mu   sync.Mutex
	n    int
	want int
	all  chan struct{}
}

func (s *readsTogether) TOTP(ctx context.Context, userID string) (*provisioner.TOTP, error) {
	f, err := s.Store.TOTP(ctx, userID)
	s.mu.Lock()
	if s.n++; s.n == s.want {
		close(s.all)
	}
	s.mu.Unlock()
	select {
	case <-s.all:
	case <-time.After(time.Second):
	}
	return f, err
}

// A code is checked only when the store admits the attempt, a TOTP code
// is accepted once, a recovery code once, and after the free attempts
// the rest wait without being checked.
func TestCheckCodeRules(t *testing.T) {
	store, id := flowStore(t)
	ctx, now := t.Context(), time.Now()
	if c, err := mfa.CheckCode(ctx, store, id, nil, "123456", now, unsealed, plainHashes); err != nil || c.Result != mfa.NoFactor {
		t.Fatalf("without a factor: %+v %v", c, err)
	}
	_, codes, err := mfa.Enrol(ctx, store, id, rfcSecret, codeAt(t, rfcSecret, now.Add(-time.Minute)), 10, now.Add(-time.Minute), plain, plainHash)
	if err != nil {
		t.Fatal(err)
	}
	sealed := []byte(rfcSecret)
	check := func(code string) mfa.Check {
		t.Helper()
		c, err := mfa.CheckCode(ctx, store, id, sealed, code, now, unsealed, plainHashes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good := codeAt(t, rfcSecret, now)
	if c := check(good); c.Result != mfa.Accepted || c.Method != "totp" {
		t.Fatalf("the right code: %+v", c)
	}
	if c := check(good); c.Result != mfa.Reused {
		t.Fatalf("the same code again: %+v, want Reused", c)
	}
	if c := check(codes[0]); c.Result != mfa.Accepted || c.Method != "recovery code" {
		t.Fatalf("a recovery code: %+v", c)
	}
	if c := check(codes[0]); c.Result != mfa.Wrong {
		t.Fatalf("a used recovery code: %+v, want Wrong", c)
	}
	// The recovery code reset the count: two more wrong codes are
	// checked, then the free attempts are spent.
	for i := 2; i <= 3; i++ {
		if c := check("000000"); c.Result != mfa.Wrong || c.Attempts != i {
			t.Fatalf("wrong code %d: %+v", i, c)
		}
	}
	if c := check(good); c.Result != mfa.Throttled || c.Wait <= 0 {
		t.Fatalf("after the free attempts: %+v, want Throttled", c)
	}
	if _, err := mfa.CheckCode(ctx, store, id, sealed, "000000", now.Add(time.Hour), func([]byte) (string, error) { return "", errors.New("bad key") }, plainHashes); !errors.Is(err, mfa.ErrSecretUnreadable) {
		t.Fatalf("a secret that does not open: %v", err)
	}
}

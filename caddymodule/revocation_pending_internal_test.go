package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// revocationRecorder is a store that takes revocations (and fails them
// while down); it has no user directory.
type revocationRecorder struct {
	provisioner.UserStore
	mu   sync.Mutex
	down bool
	got  map[string]time.Time
}

func (s *revocationRecorder) RevokeSession(_ context.Context, id string, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return errors.New("store down (test)")
	}
	if s.got == nil {
		s.got = make(map[string]time.Time)
	}
	s.got[id] = expires
	return nil
}

func (s *revocationRecorder) RevokedSessions(context.Context, time.Time) ([]provisioner.RevokedSession, error) {
	return nil, nil
}

func (s *revocationRecorder) UseOnce(ctx context.Context, id string, expires time.Time) (bool, error) {
	return true, s.RevokeSession(ctx, id, expires)
}

// A waiting logout is kept in Caddy's file storage whatever its ID's
// length (a revocation ID holds a provider's subject or session ID of up
// to 255 bytes, more than a file name takes in base64), and one kept by
// an earlier version, under the base64 of its ID, is still read after
// an upgrade, refused at once, delivered to the store, and removed.
func TestPendingRevocationsOfAnyLengthAndFromAnEarlierVersion(t *testing.T) {
	ctx := context.Background()
	storage := &certmagic.FileStorage{Path: t.TempDir()}
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)

	long := userCutoffID(sidCutoffKey("corp", strings.Repeat("i", provisioner.MaxSubjectLength)), time.Now())
	var before pendingRevocations
	if err := before.keep(ctx, storage, long, expires); err != nil {
		t.Fatalf("keeping a logout with a %d-byte ID: %v", len(long), err)
	}
	// What an earlier version left in storage.
	legacy := userCutoffID(subjectCutoffKey("corp", "alice-sub"), time.Now())
	data, _ := json.Marshal(pendingRevocation{ID: legacy, ExpiresAt: expires})
	if err := storage.Store(ctx, legacyPendingRevocationKey(legacy), data); err != nil {
		t.Fatal(err)
	}

	// A restart of the new version reads both.
	var after pendingRevocations
	r := &revocations{}
	if err := after.load(ctx, storage, r, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{long, legacy} {
		if _, ok := after.m[id]; !ok {
			t.Errorf("the pending logout %.40q… was not read after the restart", id)
		}
	}
	s := &Session{ID: "s", Connection: "corp", Subject: "alice-sub", IssuedAt: time.Now().Add(-time.Minute).Unix()}
	s.prepare()
	if !r.refuses(s) {
		t.Error("a session logged out before the upgrade, its logout waiting in storage, is not refused after it")
	}

	store := &revocationRecorder{}
	after.flush(ctx, &stateConfig{store: store, logger: zap.NewNop()})
	for _, id := range []string{long, legacy} {
		if got, ok := store.got[id]; !ok || !got.Equal(expires) {
			t.Errorf("the store got %.40q… as %v, %v; want it, until %v", id, got, ok, expires)
		}
	}
	if left, err := storage.List(ctx, pendingRevocationsDir, false); err != nil && !errors.Is(err, os.ErrNotExist) || len(left) != 0 {
		t.Errorf("delivered logouts left in storage: %v %v", left, err)
	}
}

// A single use that neither the store nor Caddy's storage recorded
// (spend fails) leaves no trace: once the caller releases its claim, the
// same ID can be claimed again, so the retry that the caller's 5xx asks
// for (a back-channel logout, a consent answer, a callback) is not
// refused as a replay.
func TestAFailedSpendCanBeRetried(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A file where the pending logouts' directory goes: storage fails.
	if err := os.MkdirAll(dir+"/jit_auth", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/"+pendingRevocationsDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	store := &revocationRecorder{down: true}
	for name, once := range map[string]provisioner.SingleUseStore{"without a SingleUseStore": nil, "with one": store} {
		t.Run(name, func(t *testing.T) {
			m := &sessions{
				revoked: &revocations{}, used: &usedStates{}, store: store, once: once,
				pending: &pendingRevocations{}, storage: &certmagic.FileStorage{Path: dir}, logger: zap.NewNop(),
			}
			now := time.Now()
			if !m.claim("state-1", now) {
				t.Fatal("a fresh ID is refused")
			}
			if _, err := m.spend(ctx, "state-1", now.Add(time.Minute)); err == nil {
				t.Fatal("spend succeeded with the store and Caddy's storage failing")
			}
			m.release("state-1")
			if !m.claim("state-1", now) {
				t.Error("the ID whose use was recorded nowhere is refused on retry")
			}
		})
	}
}

// storageWithAny is a storage value of a comparable type whose field
// may hold an uncomparable value: == panics on two of them.
type storageWithAny struct {
	revocationStorage
	opts any
}

func TestSameStorageDoesNotPanicOnUncomparableValues(t *testing.T) {
	a := storageWithAny{opts: []string{"x"}}
	b := storageWithAny{opts: []string{"x"}}
	if sameStorage(a, b) {
		t.Fatal("two storage values holding slices counted as one")
	}
	c := storageWithAny{opts: "x"}
	if !sameStorage(c, c) {
		t.Fatal("one comparable storage value did not count as itself")
	}
}

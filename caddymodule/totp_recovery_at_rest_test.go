package caddymodule_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/mfa"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The TOTP secret is sealed so that a copy of the store (a backup, a
// leaked database) does not give second factors away; the recovery
// codes are second factors too. Stored as the plain SHA-256 of the code,
// unsalted, one pass over the 31^10 codes (hours on a GPU) finds every
// user's codes at once. They are kept under a key the store does not
// hold, bound to the user: what the store keeps is no hash of the code
// alone.
func TestRecoveryCodesAtRestNeedTheKeys(t *testing.T) {
	s := mfaSite(t, siteOptions{})
	_, codes, _ := s.enrol(alice())
	st := openStore(t, s.dir)
	u := allUsers(t, st)[0]
	f, err := st.TOTP(context.Background(), u.ID)
	if err != nil || len(f.RecoveryHashes) != len(codes) {
		t.Fatalf("stored factor: %v, %d recovery hashes", err, len(f.RecoveryHashes))
	}
	for _, c := range codes {
		if slices.Contains(f.RecoveryHashes, mfa.HashRecoveryCode(c)) {
			t.Fatalf("recovery code %s is stored as its plain SHA-256, which a copy of the store alone can find", c)
		}
	}

	// And each still works, once.
	b, page := s.signInToMFA(alice())
	if resp, _ := s.submitCode(b, page, codes[0]); resp.StatusCode != http.StatusOK {
		t.Fatalf("a recovery code: %d", resp.StatusCode)
	}
	b, page = s.signInToMFA(alice())
	if resp, _ := s.submitCode(b, page, codes[0]); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the same recovery code again: %d", resp.StatusCode)
	}
}

// Recovery codes stored before they were keyed (plain SHA-256) keep
// working, once each, so an upgrade takes no user's codes away.
func TestRecoveryCodesStoredBeforeKeyingStillWork(t *testing.T) {
	s := mfaSite(t, siteOptions{})
	secret, _, _ := s.enrol(alice())
	st := openStore(t, s.dir)
	u := allUsers(t, st)[0]
	sealer, err := mfa.NewSealer(mustDecodeB64(t, testHashKey))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealer.Seal(u.ID, secret)
	if err != nil {
		t.Fatal(err)
	}
	const old = "abcde-fghjk"
	if err := st.SetTOTP(context.Background(), u.ID, provisioner.TOTP{SealedSecret: sealed,
		RecoveryHashes: []string{mfa.HashRecoveryCode(old)}, LastStep: time.Now().Unix() / 30, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b, page := s.signInToMFA(alice())
	if resp, body := s.submitCode(b, page, old); resp.StatusCode != http.StatusOK {
		t.Fatalf("a recovery code stored as plain SHA-256: %d\n%s", resp.StatusCode, body)
	}
	b, page = s.signInToMFA(alice())
	if resp, _ := s.submitCode(b, page, old); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the same old recovery code again: %d", resp.StatusCode)
	}
}

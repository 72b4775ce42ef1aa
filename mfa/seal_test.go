package mfa_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/mfa"
)

var (
	testKey    = []byte("0123456789abcdef0123456789abcdef")
	testSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	// sealedV1 was sealed by this package for user-1 with testKey. It
	// must keep opening: rows in stores outlive code changes.
	// recoveryHashV1 is RecoveryHash("user-1", "abcde-fghjk") with testKey,
	// computed apart from this package (Python's hmac and hashlib).
	recoveryHashV1 = "f9cd8cd629520527808dbf602bc883edc03b854af59e27affdb426e66377d53c"
	sealedV1       = "014cb7b53819d2c89a0cbb57ad637a7bf37b51e1d7dc1d6ee801d831bb61d4f8e0f92bf838345fcdf140c44454928d8a0975398f986b8bc8b9142f8927"
)

func newSealer(t testing.TB, key []byte) *mfa.Sealer {
	t.Helper()
	s, err := mfa.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	s := newSealer(t, testKey)
	a, err := s.Seal("user-1", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Seal("user-1", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("sealing twice gave the same bytes: nonce not random")
	}
	if a[0] != 1 {
		t.Errorf("version byte %#x, want 0x01", a[0])
	}
	if bytes.Contains(a, []byte(testSecret)) {
		t.Error("sealed bytes contain the secret")
	}
	for _, sealed := range [][]byte{a, b} {
		got, err := s.Open("user-1", sealed)
		if err != nil || got != testSecret {
			t.Errorf("Open = %q, %v; want the secret", got, err)
		}
	}
	// Another Sealer from the same key material (another instance, a
	// restart) opens it too.
	if got, err := newSealer(t, bytes.Clone(testKey)).Open("user-1", a); err != nil || got != testSecret {
		t.Errorf("second Sealer: Open = %q, %v", got, err)
	}
	// An empty secret round-trips as well; refusing it is the caller's business.
	e, err := s.Seal("user-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open("user-1", e); err != nil || got != "" {
		t.Errorf("empty secret: Open = %q, %v", got, err)
	}
}

// TestSealFormat opens the stored vector, once through Open and once by
// hand from the documented format (HKDF-SHA256 with the fixed info,
// AES-256-GCM, version byte and user ID as additional data), so a change
// to the format or derivation fails here rather than on users' rows.
func TestSealFormat(t *testing.T) {
	sealed, _ := hex.DecodeString(sealedV1)
	if got, err := newSealer(t, testKey).Open("user-1", sealed); err != nil || got != testSecret {
		t.Fatalf("Open(stored v1 vector) = %q, %v", got, err)
	}
	k, err := hkdf.Key(sha256.New, testKey, nil, "caddy-jitauth mfa totp-secret seal v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(k)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, sealed[1:13], sealed[13:], append([]byte{0x01}, "user-1"...))
	if err != nil || string(plain) != testSecret {
		t.Errorf("by hand: %q, %v", plain, err)
	}
}

func TestOpenWrongUser(t *testing.T) {
	s := newSealer(t, testKey)
	sealed, err := s.Seal("user-1", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"user-2", "user-10", "user-", "User-1", "user-1 ", ""} {
		if got, err := s.Open(user, sealed); !errors.Is(err, mfa.ErrCannotOpen) || got != "" {
			t.Errorf("Open as %q = %q, %v; want ErrCannotOpen", user, got, err)
		}
	}
}

func TestOpenTampered(t *testing.T) {
	s := newSealer(t, testKey)
	sealed, err := s.Seal("user-1", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	// Every bit of every byte: version, nonce, ciphertext and tag.
	for i := range sealed {
		for bit := range 8 {
			b := bytes.Clone(sealed)
			b[i] ^= 1 << bit
			if got, err := s.Open("user-1", b); !errors.Is(err, mfa.ErrCannotOpen) || got != "" {
				t.Fatalf("flipping bit %d of byte %d: Open = %q, %v", bit, i, got, err)
			}
		}
	}
	for name, b := range map[string][]byte{
		"nil":            nil,
		"empty":          {},
		"version only":   {0x01},
		"no ciphertext":  sealed[:13],
		"truncated tag":  sealed[:len(sealed)-1],
		"appended byte":  append(bytes.Clone(sealed), 0),
		"version 2":      append([]byte{0x02}, sealed[1:]...),
		"version 0":      append([]byte{0x00}, sealed[1:]...),
		"huge":           append(bytes.Clone(sealed), make([]byte, 1<<20)...),
		"secret as such": []byte(testSecret),
	} {
		if got, err := s.Open("user-1", b); !errors.Is(err, mfa.ErrCannotOpen) || got != "" {
			t.Errorf("%s: Open = %q, %v; want ErrCannotOpen", name, got, err)
		}
	}
}

func TestOpenWrongKey(t *testing.T) {
	sealed, err := newSealer(t, testKey).Seal("user-1", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Clone(testKey)
	other[31] ^= 1
	longer := append(bytes.Clone(testKey), 0)
	for _, key := range [][]byte{other, longer} {
		if got, err := newSealer(t, key).Open("user-1", sealed); !errors.Is(err, mfa.ErrCannotOpen) || got != "" {
			t.Errorf("other key: Open = %q, %v; want ErrCannotOpen", got, err)
		}
	}
}

func TestNewSealerKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31} {
		if _, err := mfa.NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted %d bytes", n)
		}
	}
	for _, n := range []int{32, 64} {
		if _, err := mfa.NewSealer(make([]byte, n)); err != nil {
			t.Errorf("NewSealer(%d bytes): %v", n, err)
		}
	}
}

func TestSealNeedsUserID(t *testing.T) {
	if _, err := newSealer(t, testKey).Seal("", testSecret); err == nil {
		t.Error("sealed for an empty user ID")
	}
}

// TestSealerKeepsSecrets: neither errors nor the Sealer's printed form
// show the secret or the key material (S13).
func TestSealerKeepsSecrets(t *testing.T) {
	s := newSealer(t, testKey)
	sealed, _ := s.Seal("user-1", testSecret)
	_, openErr := s.Open("user-2", sealed)
	_, keyErr := mfa.NewSealer(testKey[:20])
	out := fmt.Sprintf("%v %+v %#v %s %v %v", s, s, s, s, openErr, keyErr)
	for _, leak := range []string{testSecret, string(testKey), string(testKey[:20]), hex.EncodeToString(testKey[:20])} {
		if strings.Contains(out, leak) {
			t.Errorf("output shows %q: %s", leak, out)
		}
	}
	if strings.Contains(out, "aead") || strings.Contains(out, "gcm") {
		t.Errorf("output shows the cipher's internals: %s", out)
	}
}

func FuzzOpen(f *testing.F) {
	s := newSealer(f, testKey)
	good, err := s.Seal("user-1", testSecret)
	if err != nil {
		f.Fatal(err)
	}
	stored, _ := hex.DecodeString(sealedV1)
	f.Add("user-1", good)
	f.Add("user-1", stored)
	f.Add("user-2", good)
	f.Add("", []byte{})
	f.Add("user-1", []byte{0x01})
	f.Add("user-1", append([]byte{0x02}, good[1:]...))
	f.Fuzz(func(t *testing.T, userID string, sealed []byte) {
		got, err := s.Open(userID, sealed)
		if err != nil {
			if !errors.Is(err, mfa.ErrCannotOpen) || got != "" {
				t.Fatalf("Open = %q, %v; want \"\", ErrCannotOpen", got, err)
			}
			return
		}
		// Only what was really sealed opens, for its user: the fuzzer
		// cannot forge GCM. (The seeds are sealed anew in each fuzzing
		// process, with a new nonce, so compare what they hold, not
		// their bytes.)
		if userID != "user-1" || got != testSecret {
			t.Fatalf("forged: Open(%q, %x) = %q", userID, sealed, got)
		}
	})
}

// Seal refuses what Open would refuse to open (over 4096 bytes sealed),
// rather than seal something that is then lost; the longest secret that
// fits still round-trips.
func TestSealRefusesWhatOpenWouldNot(t *testing.T) {
	s := newSealer(t, testKey)
	empty, err := s.Seal("u1", "")
	if err != nil {
		t.Fatal(err)
	}
	fits := 4096 - len(empty)
	sealed, err := s.Seal("u1", strings.Repeat("x", fits))
	if err != nil {
		t.Fatalf("a %d-byte secret that fits: %v", fits, err)
	}
	if got, err := s.Open("u1", sealed); err != nil || len(got) != fits {
		t.Errorf("the longest secret that fits does not open again: %v", err)
	}
	if sealed, err := s.Seal("u1", strings.Repeat("x", fits+1)); err == nil {
		t.Errorf("a %d-byte secret was sealed (%d bytes), though Open refuses anything over 4096", fits+1, len(sealed))
	}
}

// A recovery code's stored hash needs the key and names its user: the
// plain SHA-256 a copy of the store could be searched with is not it, nor
// is another key's or another user's; input is normalised as
// HashRecoveryCode normalises it. It must stay what it is: stores keep it.
func TestRecoveryHashIsKeyedAndBoundToTheUser(t *testing.T) {
	s := newSealer(t, testKey)
	h := s.RecoveryHash("user-1", "abcde-fghjk")
	if !strings.HasPrefix(h, "k1:") || len(h) != 3+64 {
		t.Fatalf("RecoveryHash = %q, want k1: and 64 hex digits", h)
	}
	// HMAC-SHA256 under HKDF(testKey, info "caddy-jitauth mfa recovery-code
	// hash v1") of "user-1\x00abcdefghjk", as stored by this version.
	want := "k1:" + recoveryHashV1
	if h != want {
		t.Errorf("RecoveryHash changed: %s, want %s (stored hashes would no longer match)", h, want)
	}
	for _, in := range []string{"ABCDE-FGHJK", "abcde fghjk", "abcdefghjk", " abcde\u2013fghjk "} {
		if got := s.RecoveryHash("user-1", in); got != h {
			t.Errorf("RecoveryHash(%q) differs from abcde-fghjk's", in)
		}
	}
	for name, other := range map[string]string{
		"the plain SHA-256": mfa.HashRecoveryCode("abcde-fghjk"),
		"another user's":    s.RecoveryHash("user-2", "abcde-fghjk"),
		"another key's":     newSealer(t, bytes.Repeat([]byte{9}, 32)).RecoveryHash("user-1", "abcde-fghjk"),
		"another code's":    s.RecoveryHash("user-1", "abcde-fghjm"),
	} {
		if strings.TrimPrefix(other, "k1:") == strings.TrimPrefix(h, "k1:") {
			t.Errorf("%s hash equals the user's", name)
		}
	}
}

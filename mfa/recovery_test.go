package mfa_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/mfa"
)

const alphabet = "23456789abcdefghjkmnpqrstuvwxyz"

var (
	codeFormat = regexp.MustCompile(`^[` + alphabet + `]{5}-[` + alphabet + `]{5}$`)
	hexHash    = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func TestNewRecoveryCodes(t *testing.T) {
	codes, hashes, err := mfa.NewRecoveryCodes(10)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 || len(hashes) != 10 {
		t.Fatalf("got %d codes and %d hashes, want 10 each", len(codes), len(hashes))
	}
	seenCode, seenHash := map[string]bool{}, map[string]bool{}
	for i, c := range codes {
		if !codeFormat.MatchString(c) {
			t.Errorf("code %q is not xxxxx-xxxxx from the alphabet", c)
		}
		if !hexHash.MatchString(hashes[i]) {
			t.Errorf("hash %q is not hex SHA-256", hashes[i])
		}
		if got := mfa.HashRecoveryCode(c); got != hashes[i] {
			t.Errorf("HashRecoveryCode(codes[%d]) != hashes[%d]", i, i)
		}
		if seenCode[c] || seenHash[hashes[i]] {
			t.Errorf("code %d repeats", i)
		}
		seenCode[c], seenHash[hashes[i]] = true, true
	}
}

func TestNewRecoveryCodesCount(t *testing.T) {
	for _, n := range []int{-1, 0, 101} {
		if _, _, err := mfa.NewRecoveryCodes(n); err == nil {
			t.Errorf("NewRecoveryCodes(%d) succeeded", n)
		}
	}
	for _, n := range []int{1, 100} {
		if codes, hashes, err := mfa.NewRecoveryCodes(n); err != nil || len(codes) != n || len(hashes) != n {
			t.Errorf("NewRecoveryCodes(%d) = %d codes, %d hashes, %v", n, len(codes), len(hashes), err)
		}
	}
}

// TestRecoveryCodesUseWholeAlphabet: over many codes every character of
// the alphabet turns up, and the sets do not repeat codes between them.
func TestRecoveryCodesUseWholeAlphabet(t *testing.T) {
	count := map[rune]int{}
	seen := map[string]bool{}
	for range 100 {
		codes, _, err := mfa.NewRecoveryCodes(10)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range codes {
			if seen[c] {
				t.Fatalf("code %s came up twice", c)
			}
			seen[c] = true
			for _, r := range strings.ReplaceAll(c, "-", "") {
				count[r]++
			}
		}
	}
	// 10,000 characters over 31: about 323 each; fewer than 200 would be
	// a broken sampler, not bad luck.
	for _, r := range alphabet {
		if count[r] < 200 {
			t.Errorf("character %c drawn %d times in 10000", r, count[r])
		}
	}
	if len(count) != len(alphabet) {
		t.Errorf("drew %d distinct characters, want %d", len(count), len(alphabet))
	}
}

func TestHashRecoveryCodeNormalisation(t *testing.T) {
	want := mfa.HashRecoveryCode("abcde-fghjk")
	for _, in := range []string{
		"abcdefghjk",
		"ABCDE-FGHJK",
		"AbCdE fGhJk",
		"  abcde - fghjk\n",
		"abcde\u2013fghjk", // en dash, as word processors write it
		"abcde\u2011fghjk", // non-breaking hyphen
		"a-b-c-d-e-f-g-h-j-k",
		"\tabcde\u00a0fghjk",
	} {
		if got := mfa.HashRecoveryCode(in); got != want {
			t.Errorf("HashRecoveryCode(%q) differs from abcde-fghjk's", in)
		}
	}
	for _, in := range []string{
		"abcde-fghjm",
		"abcde-fghj",
		"abcde-fghjkk",
		"abcde_fghjk",
		"ａｂｃｄｅ-ｆｇｈｊｋ", // full-width letters are other characters
		"",
	} {
		if mfa.HashRecoveryCode(in) == want {
			t.Errorf("HashRecoveryCode(%q) equals abcde-fghjk's", in)
		}
	}
	if got := mfa.HashRecoveryCode(""); !hexHash.MatchString(got) {
		t.Errorf("empty input hashes to %q", got)
	}
}

func FuzzHashRecoveryCode(f *testing.F) {
	f.Add("abcde-fghjk")
	f.Add("ABCDE FGHJK")
	f.Add("abcde\u2013fghjk")
	f.Add("\xff\xfe-")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		h := mfa.HashRecoveryCode(in)
		if !hexHash.MatchString(h) {
			t.Fatalf("hash %q is not hex SHA-256", h)
		}
		// Case of ASCII letters, and spaces and dashes around the input,
		// do not change the hash.
		upper := []byte(in)
		for i, c := range upper {
			if 'a' <= c && c <= 'z' {
				upper[i] = c - 'a' + 'A'
			}
		}
		if h2 := mfa.HashRecoveryCode(" -" + string(upper) + "\t-"); h2 != h {
			t.Fatalf("%q and its upper-case, padded form hash differently", in)
		}
	})
}

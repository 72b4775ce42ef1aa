package mfa

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"unicode"
)

const (
	// recoveryAlphabet has no characters that are easily confused when
	// read off paper or a screen: no 0/o, no 1/l/i. Codes are shown and
	// hashed in lower case; input is folded to lower case.
	recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"
	// recoveryLength is the number of characters in a recovery code,
	// shown as two groups of five: about 49.5 bits of entropy.
	recoveryLength = 10
	// maxRecoveryCodes bounds NewRecoveryCodes' n.
	maxRecoveryCodes = 100
)

// NewRecoveryCodes returns n new single-use recovery codes, for a user
// who has lost their authenticator, formatted "xxxxx-xxxxx" to be shown
// once, and their hashes (HashRecoveryCode) to be stored in their place.
// hashes[i] belongs to codes[i]; the codes are distinct. 10 is a usual n.
func NewRecoveryCodes(n int) (codes []string, hashes []string, err error) {
	if n < 1 || n > maxRecoveryCodes {
		return nil, nil, errors.New("mfa: number of recovery codes must be between 1 and 100")
	}
	codes = make([]string, 0, n)
	hashes = make([]string, 0, n)
	seen := make(map[string]bool, n)
	for len(codes) < n {
		raw := randomRecoveryCode()
		if seen[raw] {
			continue // vanishingly rare, but a duplicate would be one code fewer
		}
		seen[raw] = true
		codes = append(codes, raw[:recoveryLength/2]+"-"+raw[recoveryLength/2:])
		hashes = append(hashes, hashRecovery(raw))
	}
	return codes, hashes, nil
}

// randomRecoveryCode draws recoveryLength characters uniformly from
// recoveryAlphabet, by rejection sampling: 5 random bits index the
// alphabet of 31, and the one value past its end is drawn again, so no
// character is likelier than another.
func randomRecoveryCode() string {
	out := make([]byte, 0, recoveryLength)
	var buf [2 * recoveryLength]byte
	for len(out) < recoveryLength {
		rand.Read(buf[:]) // never returns an error (crypto/rand, Go 1.24+)
		for _, b := range buf {
			i := int(b & 0x1f)
			if i < len(recoveryAlphabet) && len(out) < recoveryLength {
				out = append(out, recoveryAlphabet[i])
			}
		}
	}
	return string(out)
}

// HashRecoveryCode returns the plain hash of a recovery code, for user
// input: ASCII letters are folded to lower case and white space and
// dashes (including Unicode dashes, as pasted from a document) are
// dropped, so "ABCDE-FGHJK", "abcde fghjk" and "abcdefghjk" hash alike.
// Any input gives a hash; one that is not a well-formed code just
// matches no stored hash.
//
// It is hex SHA-256, unkeyed and unsalted: what NewRecoveryCodes
// returns, and how codes were stored before Sealer.RecoveryHash, which
// is how a caller should store them (keyed and bound to the user:
// unsalted, one pass over the 31^10 codes, hours on a GPU, finds every
// user's codes in a copy of the store at once). It is still computed
// to accept codes stored that way. Not a slow password hash such as
// bcrypt either way: a slow hash is for secrets people choose; these
// are random, about 49.5 bits each, and a recovered code is only a
// second factor. Online guessing is slowed by the failure delay (Delay).
func HashRecoveryCode(input string) string {
	return hashRecovery(normaliseRecoveryCode(input))
}

func normaliseRecoveryCode(input string) string {
	out := make([]rune, 0, len(input))
	for _, r := range input {
		switch {
		case unicode.IsSpace(r), unicode.Is(unicode.Pd, r):
			continue
		case 'A' <= r && r <= 'Z':
			r += 'a' - 'A'
		}
		out = append(out, r)
	}
	return string(out)
}

func hashRecovery(normalised string) string {
	sum := sha256.Sum256([]byte(normalised))
	return hex.EncodeToString(sum[:])
}

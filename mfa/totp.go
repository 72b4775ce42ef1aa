package mfa

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"
	"unicode"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters are fixed rather than configurable: RFC 6238 with
// HMAC-SHA-1, 6 digits and a 30 second period is the only combination
// that every common authenticator app (Google Authenticator, Microsoft
// Authenticator, Authy, 1Password, ...) honours; several silently ignore
// the algorithm, digits and period parameters of the otpauth URL and
// would then show codes that never validate. SHA-1 is fine here: HOTP
// needs a PRF, and HMAC-SHA-1 is still one.
const (
	// Digits is the length of a TOTP code.
	Digits = 6
	// period is the length of one RFC 6238 time step.
	period = 30 * time.Second
	// skew is how many time steps either side of the current one are
	// accepted, to absorb clock drift between server and phone and the
	// time it takes to type a code.
	skew = 1

	// secretSize is the shared secret's length in bytes: 160 bits, the
	// size RFC 4226 recommends (and the HMAC-SHA-1 block output).
	secretSize = 20
	// minSecretSize is the shortest secret Validate accepts: RFC 4226
	// requires at least 128 bits. A truncated or empty secret (a store
	// bug) must not make a guessable factor.
	minSecretSize = 16
	// maxCodeInput bounds the work done on a user's input before it is
	// rejected; a code with generous spacing is far shorter.
	maxCodeInput = 64
	// qrSize is the QR code's width and height in pixels.
	qrSize = 256
)

// Enrolment is a freshly generated TOTP factor, to show the user once so
// they can add it to an authenticator app. Seal Secret (see Sealer) and
// store it only after the user has proved with a first valid code that
// the app has it.
type Enrolment struct {
	// Secret is the shared secret, base32 without padding, for users who
	// type it into the app instead of scanning the QR code.
	Secret string
	// URL is the otpauth:// key URI the QR code encodes.
	URL string
	// QRCode is a PNG image of URL as a data: URI, for <img src="...">.
	QRCode string
}

// String hides the secret, so that logging an Enrolment by accident (with
// %v, or zap.Any, which uses String) cannot leak it (S13).
func (e Enrolment) String() string { return "mfa.Enrolment{redacted}" }

// GoString hides the secret from %#v as well.
func (e Enrolment) GoString() string { return e.String() }

// NewSecret generates a new random TOTP secret for account at issuer.
// Both name the entry in the user's authenticator app: issuer is the
// site or service, account usually the user's email or username. The
// issuer may not contain a colon, because the otpauth label is
// "issuer:account" and apps split it at the first colon.
func NewSecret(issuer, account string) (Enrolment, error) {
	if issuer == "" || account == "" {
		return Enrolment{}, errors.New("mfa: issuer and account must not be empty")
	}
	if strings.Contains(issuer, ":") {
		return Enrolment{}, errors.New("mfa: issuer must not contain a colon")
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      uint(period / time.Second),
		SecretSize:  secretSize,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return Enrolment{}, fmt.Errorf("mfa: generating TOTP secret: %v", err)
	}
	qr, err := qrDataURI(key)
	if err != nil {
		return Enrolment{}, err
	}
	return Enrolment{Secret: key.Secret(), URL: key.URL(), QRCode: qr}, nil
}

// QRCode draws an enrolment's otpauth:// URL again, as NewSecret did, so
// a page can be shown anew without keeping the image.
func QRCode(otpauthURL string) (string, error) {
	key, err := otp.NewKeyFromURL(otpauthURL)
	if err != nil || key.Type() != "totp" || key.Secret() == "" {
		return "", errors.New("mfa: not an otpauth://totp/ URL with a secret")
	}
	return qrDataURI(key)
}

func qrDataURI(key *otp.Key) (string, error) {
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return "", fmt.Errorf("mfa: drawing QR code: %v", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("mfa: encoding QR code: %v", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// timeStep returns the RFC 6238 time step that contains t: the number
// of whole periods since the Unix epoch, rounded down.
func timeStep(t time.Time) int64 {
	s, p := t.Unix(), int64(period/time.Second)
	if s < 0 {
		// Round down, not towards zero, so that the seconds before the
		// epoch do not share step 0 (Validate refuses them anyway).
		return (s - p + 1) / p
	}
	return s / p
}

// Validate checks code, as typed by the user, against the base32 secret
// at time now. A code for the current time step or one step either side
// is accepted (clock skew); ok reports a match and step is the time step
// that matched.
//
// Validate does not prevent replay, because it keeps no state: a code
// stays valid for up to three periods. The caller must pass step to the
// store (provisioner.Store.UseTOTPStep), which accepts it only if it is
// later than the last accepted step, and refuse the login otherwise.
// When a code happens to match two steps, the later one is returned, so
// that it cannot be accepted a second time for the later step.
//
// Input is normalised as phones show and users type it: white space
// (including non-breaking and other Unicode spaces) is removed; anything
// else than ASCII digits, or a length other than Digits, is not ok. The
// comparison runs in constant time and every step in the window is
// checked, so timing does not tell which digits were right.
func Validate(secret string, code string, now time.Time) (step int64, ok bool) {
	input, ok := normaliseCode(code)
	if !ok {
		return 0, false
	}
	key, ok := decodeSecret(secret)
	if !ok {
		return 0, false
	}
	current := timeStep(now)
	ok = false
	// No early exit; ascending, so the later of two matching steps wins.
	for s := current - skew; s <= current+skew; s++ {
		if s < 0 {
			continue
		}
		want := hotp(key, uint64(s))
		if subtle.ConstantTimeCompare(want[:], input[:]) == 1 {
			step, ok = s, true
		}
	}
	return step, ok
}

// normaliseCode removes white space from a typed code and returns its
// digits, or false if what remains is not exactly Digits ASCII digits.
func normaliseCode(code string) (out [Digits]byte, ok bool) {
	if len(code) > maxCodeInput {
		return out, false
	}
	n := 0
	for _, r := range code {
		switch {
		case unicode.IsSpace(r):
			continue
		case r < '0' || r > '9' || n == Digits:
			return out, false
		}
		out[n] = byte(r)
		n++
	}
	return out, n == Digits
}

// decodeSecret decodes a secret as NewSecret writes it, RFC 4648 base32
// without padding, also taking lower case and correct padding, as other
// tools write it. Anything else (white space, line breaks, which Go's
// decoder would skip, stray padding) is refused rather than guessed at.
func decodeSecret(secret string) ([]byte, bool) {
	b := []byte(secret)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z', '2' <= c && c <= '7', c == '=':
		default:
			return nil, false
		}
	}
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	if bytes.HasSuffix(b, []byte("=")) {
		// Go's decoder lets extra padding pass; a padded secret is whole
		// groups of 8.
		if len(b)%8 != 0 {
			return nil, false
		}
		enc = base32.StdEncoding
	} else if r := len(b) % 8; r == 1 || r == 3 || r == 6 {
		// No whole byte ends there: Go's decoder drops the stray
		// characters, other TOTP tools refuse the secret.
		return nil, false
	}
	key := make([]byte, enc.DecodedLen(len(b)))
	n, err := enc.Decode(key, b)
	if err != nil || n < minSecretSize {
		return nil, false
	}
	return key[:n], true
}

// hotp computes the RFC 4226 HOTP value of key at counter as Digits ASCII
// digits. It is written out here (rather than calling pquerna/otp's
// validator) because Validate needs the matching step, and so that the
// tests, which compute codes with pquerna/otp, check it independently.
func hotp(key []byte, counter uint64) (code [Digits]byte) {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	// Dynamic truncation, RFC 4226 section 5.3.
	offset := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[offset:offset+4]) & 0x7fffffff
	for i := Digits - 1; i >= 0; i-- {
		code[i] = byte('0' + v%10)
		v /= 10
	}
	return code
}

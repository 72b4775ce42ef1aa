package mfa_test

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/jitauth/caddy-jitauth/mfa"
)

// pquernaOpts are the parameters NewSecret promises, spelt out for the
// independent code generator.
var pquernaOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// rfcSecret is the SHA-1 seed of RFC 6238 Appendix B, "12345678901234567890".
var rfcSecret = base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))

// codeAt computes the code for secret at t with pquerna/otp, not with mfa.
func codeAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, pquernaOpts)
	if err != nil {
		t.Fatalf("GenerateCodeCustom: %v", err)
	}
	return code
}

func TestNewSecret(t *testing.T) {
	e, err := mfa.NewSecret("Example Co", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || len(key) != 20 {
		t.Fatalf("secret is not 160 bits of unpadded base32: %d bytes, %v", len(key), err)
	}

	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Example Co:alice@example.com" {
		t.Errorf("URL = %q, want otpauth://totp/Example Co:alice@example.com", e.URL)
	}
	q := u.Query()
	for k, want := range map[string]string{"secret": e.Secret, "issuer": "Example Co", "algorithm": "SHA1", "digits": "6", "period": "30"} {
		if got := q.Get(k); got != want {
			t.Errorf("URL parameter %s = %q, want %q", k, got, want)
		}
	}

	// The code an app computes from the URL is the one Validate accepts.
	k, err := otp.NewKeyFromURL(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 10, 0, time.UTC)
	if _, ok := mfa.Validate(e.Secret, codeAt(t, k.Secret(), now), now); !ok {
		t.Error("code from the otpauth URL's secret does not validate")
	}

	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(e.QRCode, prefix) {
		t.Fatalf("QRCode does not start with %q", prefix)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(e.QRCode, prefix))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("QRCode is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
		t.Errorf("QR code is %dx%d, want 256x256", b.Dx(), b.Dy())
	}

	e2, err := mfa.NewSecret("Example Co", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if e2.Secret == e.Secret {
		t.Error("two enrolments got the same secret")
	}
}

func TestNewSecretRejects(t *testing.T) {
	for _, c := range []struct{ issuer, account string }{
		{"", "alice"},
		{"Example", ""},
		{"Example:Co", "alice"},
	} {
		if _, err := mfa.NewSecret(c.issuer, c.account); err == nil {
			t.Errorf("NewSecret(%q, %q) succeeded", c.issuer, c.account)
		}
	}
}

func TestEnrolmentStringHidesSecret(t *testing.T) {
	e, err := mfa.NewSecret("Example", "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, e); strings.Contains(out, e.Secret) || strings.Contains(out, "otpauth") {
			t.Errorf("%s shows the secret: %s", verb, out)
		}
	}
}

// TestValidateRFC6238 checks the test vectors of RFC 6238 Appendix B
// (SHA-1; the last 6 of their 8 digits, as dynamic truncation gives).
func TestValidateRFC6238(t *testing.T) {
	for _, c := range []struct {
		unix int64
		code string
	}{
		{59, "287082"},
		{1111111109, "081804"},
		{1111111111, "050471"},
		{1234567890, "005924"},
		{2000000000, "279037"},
		{20000000000, "353130"},
	} {
		step, ok := mfa.Validate(rfcSecret, c.code, time.Unix(c.unix, 0))
		if !ok || step != c.unix/30 {
			t.Errorf("at %d: Validate(%s) = %d, %v; want %d, true", c.unix, c.code, step, ok, c.unix/30)
		}
	}
}

func TestValidateAgainstPquerna(t *testing.T) {
	e, err := mfa.NewSecret("Example", "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, now := range []time.Time{
		time.Unix(30, 0), // step 1: step 0 is still in the window
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 29, 999999999, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC), // past int32 seconds
		time.Date(2100, 6, 30, 23, 59, 59, 0, time.UTC),
	} {
		step, ok := mfa.Validate(e.Secret, codeAt(t, e.Secret, now), now)
		if !ok || step != now.Unix()/30 {
			t.Errorf("at %v: got %d, %v; want %d, true", now, step, ok, now.Unix()/30)
		}
		// Secrets may be written in lower case, as some apps show them.
		if _, ok := mfa.Validate(strings.ToLower(e.Secret), codeAt(t, e.Secret, now), now); !ok {
			t.Errorf("at %v: lower-case secret refused", now)
		}
	}
}

func TestValidateSkew(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 15, 0, time.UTC) // mid-step
	current := now.Unix() / 30
	for _, c := range []struct {
		offset time.Duration
		ok     bool
		step   int64
	}{
		{-90 * time.Second, false, 0},
		{-60 * time.Second, false, 0},
		{-30 * time.Second, true, current - 1},
		{-15 * time.Second, true, current},
		{0, true, current},
		{14 * time.Second, true, current},
		{15 * time.Second, true, current + 1},
		{30 * time.Second, true, current + 1},
		{45 * time.Second, false, 0},
		{60 * time.Second, false, 0},
	} {
		code := codeAt(t, rfcSecret, now.Add(c.offset))
		step, ok := mfa.Validate(rfcSecret, code, now)
		if ok != c.ok || step != c.step {
			t.Errorf("code from %v off: got %d, %v; want %d, %v", c.offset, step, ok, c.step, c.ok)
		}
	}
}

// TestValidateLaterStepOnCollision: with the RFC secret, steps 57766335
// and 57766336 share the code 251166. Either way Validate must name the
// later step, so that the code cannot be accepted once for each.
func TestValidateLaterStepOnCollision(t *testing.T) {
	const a, b, code = 57766335, 57766336, "251166"
	if codeAt(t, rfcSecret, time.Unix(a*30, 0)) != code || codeAt(t, rfcSecret, time.Unix(b*30, 0)) != code {
		t.Fatal("fixture: steps do not share the code")
	}
	for _, now := range []int64{a, b} {
		step, ok := mfa.Validate(rfcSecret, code, time.Unix(now*30+10, 0))
		if !ok || step != b {
			t.Errorf("now in step %d: got %d, %v; want %d, true", now, step, ok, b)
		}
	}
}

func TestValidateWrongCode(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 15, 0, time.UTC)
	valid := map[string]bool{}
	for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
		valid[codeAt(t, rfcSecret, now.Add(d))] = true
	}
	good := codeAt(t, rfcSecret, now)
	tried := 0
	for i := range 6 {
		for delta := byte(1); delta <= 9; delta++ {
			b := []byte(good)
			b[i] = '0' + (b[i]-'0'+delta)%10
			if valid[string(b)] {
				continue
			}
			tried++
			if step, ok := mfa.Validate(rfcSecret, string(b), now); ok || step != 0 {
				t.Errorf("wrong code %s accepted (step %d)", b, step)
			}
		}
	}
	if tried < 50 {
		t.Fatalf("only %d wrong codes tried", tried)
	}
	other, err := mfa.NewSecret("Example", "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !valid[codeAt(t, other.Secret, now)] {
		if _, ok := mfa.Validate(rfcSecret, codeAt(t, other.Secret, now), now); ok {
			t.Error("another secret's code accepted")
		}
	}
}

func TestValidateInputNormalisation(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 15, 0, time.UTC)
	code := codeAt(t, rfcSecret, now)
	for _, in := range []string{
		code,
		" " + code + " ",
		"\t" + code + "\r\n",
		code[:3] + " " + code[3:],
		code[:3] + "\u00a0" + code[3:], // no-break space, as copied from a page
		code[:3] + "\u2009" + code[3:], // thin space
		strings.Join(strings.Split(code, ""), " "),
	} {
		if _, ok := mfa.Validate(rfcSecret, in, now); !ok {
			t.Errorf("Validate(%q) refused", in)
		}
	}
}

func TestValidateMalformed(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 15, 0, time.UTC)
	code := codeAt(t, rfcSecret, now)
	for _, in := range []string{
		"",
		"      ",
		code[:5],
		code + "0",
		"0" + code,
		code[:5] + "a",
		code[:3] + "-" + code[3:],
		"+" + code[1:],
		"-" + code[1:],
		code[:5] + "\x00",
		code + "\x00",
		fullwidth(code),
		"١٢٣٤٥٦", // Arabic-Indic digits
		code[:5] + "\xff",
		strings.Repeat(" ", 100) + code, // over the input bound
	} {
		if step, ok := mfa.Validate(rfcSecret, in, now); ok || step != 0 {
			t.Errorf("Validate(%q) = %d, %v; want refused", in, step, ok)
		}
	}
}

// TestValidateSecretPadding: a 128-bit secret is 26 base32 characters;
// it is accepted without padding or with the correct 6 "=", not else.
func TestValidateSecretPadding(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 15, 0, time.UTC)
	raw := []byte("0123456789abcdef")
	padded := base32.StdEncoding.EncodeToString(raw)
	bare := strings.TrimRight(padded, "=")
	code := codeAt(t, bare, now)
	for secret, want := range map[string]bool{
		bare:                         true,
		padded:                       true,
		bare + "=":                   false,
		padded + "=":                 false,
		bare[:13] + "\n" + bare[13:]: false,
		" " + bare:                   false,
	} {
		if _, ok := mfa.Validate(secret, code, now); ok != want {
			t.Errorf("secret %q: ok = %v, want %v", secret, ok, want)
		}
	}
}

func TestValidateBadSecret(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 15, 0, time.UTC)
	short := base32.StdEncoding.EncodeToString([]byte("0123456789")) // 80 bits
	for _, secret := range []string{"", "!!!!!!!!", "GEZDGNBV1", short} {
		code := "000000"
		if c, err := totp.GenerateCodeCustom(secret, now, pquernaOpts); err == nil {
			code = c
		}
		if _, ok := mfa.Validate(secret, code, now); ok {
			t.Errorf("secret %q accepted", secret)
		}
	}
}

func TestValidateBeforeEpoch(t *testing.T) {
	// Step 0's code is accepted at the start of time, and no negative
	// step ever is.
	if step, ok := mfa.Validate(rfcSecret, codeAt(t, rfcSecret, time.Unix(0, 0)), time.Unix(10, 0)); !ok || step != 0 {
		t.Errorf("step 0: got %d, %v", step, ok)
	}
	for _, unix := range []int64{-1, -31, -1e12} {
		for _, code := range []string{"000000", "123456", codeAt(t, rfcSecret, time.Unix(0, 0))} {
			if step, ok := mfa.Validate(rfcSecret, code, time.Unix(unix, 0)); ok && step < 0 {
				t.Errorf("at %d: negative step %d accepted", unix, step)
			}
		}
	}
}

func fullwidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r - '0' + '０')
	}
	return b.String()
}

func FuzzValidate(f *testing.F) {
	now := int64(1767225600)
	f.Add(rfcSecret, "287082", int64(59))
	f.Add(rfcSecret, " 123 456 ", now)
	f.Add(rfcSecret, "١٢٣٤٥٦", now)
	f.Add(rfcSecret, "12345\xff", now)
	f.Add("", "000000", now)
	f.Add("gezdgnbvgy3tqojq====", "000000", int64(-30))
	f.Add(rfcSecret, "251166", int64(57766335*30))
	f.Fuzz(func(t *testing.T, secret, code string, unix int64) {
		at := time.Unix(unix, 0)
		step, ok := mfa.Validate(secret, code, at)
		if !ok {
			if step != 0 {
				t.Fatalf("refused with step %d", step)
			}
			return
		}
		if cur := at.Unix() / 30; step < 0 || step < cur-1 || step > cur+1 {
			t.Fatalf("step %d outside the window around %d", step, cur)
		}
		// What was accepted is, white space aside, the code pquerna/otp
		// computes for that step.
		digits := strings.Join(strings.Fields(code), "")
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*30, 0), pquernaOpts)
		if err != nil || want != digits {
			t.Fatalf("accepted %q for step %d, pquerna says %q (%v)", code, step, want, err)
		}
	})
}

func TestQRCodeRedrawsEnrolment(t *testing.T) {
	en, err := mfa.NewSecret("example.com", "alice")
	if err != nil {
		t.Fatal(err)
	}
	qr, err := mfa.QRCode(en.URL)
	if err != nil || qr != en.QRCode {
		t.Fatalf("QRCode(URL) differs from the enrolment's image (err %v)", err)
	}
	if _, err := mfa.QRCode("https://not-otpauth"); err == nil {
		t.Error("QRCode accepted a URL that is not otpauth://")
	}
}

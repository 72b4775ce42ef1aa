package provisioner_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

func newStore(t *testing.T) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var on = provisioner.Policy{Enabled: true}

// clock is a settable Provisioner.Now.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func aliceClaims() provisioner.Claims {
	return provisioner.Claims{
		Issuer:            "https://idp.example.com",
		Subject:           "sub-alice",
		Email:             "Alice@Example.com",
		EmailVerified:     true,
		Name:              "Alice Example",
		GivenName:         "Alice",
		FamilyName:        "Example",
		PreferredUsername: "alice_pref",
		Picture:           "https://example.com/alice.png",
		Groups:            []string{"staff"},
		Raw:               []byte(`{"sub":"sub-alice","v":1}`),
	}
}

// provision runs one login with no answers from consent pages.
func provision(p *provisioner.Provisioner, ctx context.Context, conn string, pol provisioner.Policy, c provisioner.Claims) (provisioner.Result, error) {
	if err := pol.Validate(); err != nil {
		panic(err)
	}
	return p.Provision(ctx, provisioner.Request{Connection: conn, Policy: &pol, Claims: c})
}

func userCount(t *testing.T, s provisioner.Store) int {
	t.Helper()
	users, err := s.ListUsers(t.Context(), 0, 1000)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	return len(users)
}

func TestProvisionJITOff(t *testing.T) {
	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	for _, pol := range []provisioner.Policy{{}, {Enabled: false, Mode: provisioner.ModeSilent}} {
		res, err := provision(p, t.Context(), "corp", pol, aliceClaims())
		if err != nil {
			t.Fatalf("Provision: %v", err)
		}
		if res.Outcome != provisioner.OutcomeNotStored || res.User != nil {
			t.Errorf("Provision = %+v, want not stored and no user", res)
		}
	}
	if n := userCount(t, s); n != 0 {
		t.Errorf("store has %d users, want 0", n)
	}
}

func TestProvisionCreateThenUpdate(t *testing.T) {
	s := newStore(t)
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	p := &provisioner.Provisioner{Store: s, Now: clk.Now}
	ctx := t.Context()

	first, err := provision(p, ctx, "corp", on, aliceClaims())
	if err != nil {
		t.Fatalf("first Provision: %v", err)
	}
	if first.Outcome != provisioner.OutcomeCreated || first.User == nil {
		t.Fatalf("first Provision = %+v, want created", first)
	}
	u := first.User
	if u.Username != "alice@example.com" {
		t.Errorf("Username = %q, want the verified email, normalised", u.Username)
	}
	if u.Email != "Alice@Example.com" || !u.EmailVerified || u.Name != "Alice Example" ||
		u.GivenName != "Alice" || u.FamilyName != "Example" || u.Picture != "https://example.com/alice.png" ||
		strings.Join(u.Groups, ",") != "staff" || u.Status != provisioner.StatusActive {
		t.Errorf("created user = %+v", u)
	}
	if !u.LastLoginAt.Equal(clk.t) {
		t.Errorf("LastLoginAt = %v, want %v", u.LastLoginAt, clk.t)
	}

	clk.t = clk.t.Add(time.Hour)
	c := aliceClaims()
	c.Email = "alice@new.example.com"
	c.Name = "Alice Renamed"
	c.GivenName = "" // not sent: the stored value stays
	c.Groups = []string{"admins", "staff"}
	c.Raw = []byte(`{"sub":"sub-alice","v":2}`)
	second, err := provision(p, ctx, "corp", on, c)
	if err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	if second.Outcome != provisioner.OutcomeUpdated || second.User == nil {
		t.Fatalf("second Provision = %+v, want updated", second)
	}
	for name, got := range map[string]*provisioner.User{"returned": second.User, "stored": mustUser(t, s, u.ID)} {
		if got.ID != u.ID {
			t.Errorf("%s: ID = %s, want %s", name, got.ID, u.ID)
		}
		if got.Username != "alice@example.com" {
			t.Errorf("%s: Username = %q, want it unchanged by a new email", name, got.Username)
		}
		if got.Email != "alice@new.example.com" || got.Name != "Alice Renamed" || got.GivenName != "Alice" ||
			strings.Join(got.Groups, ",") != "admins,staff" {
			t.Errorf("%s: profile not updated: %+v", name, got)
		}
		if !got.LastLoginAt.Equal(clk.t) {
			t.Errorf("%s: LastLoginAt = %v, want %v", name, got.LastLoginAt, clk.t)
		}
		if !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("%s: CreatedAt changed from %v to %v", name, u.CreatedAt, got.CreatedAt)
		}
	}
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("Identities = %v, %v; want one", ids, err)
	}
	if string(ids[0].RawClaims) != `{"sub":"sub-alice","v":2}` {
		t.Errorf("RawClaims = %s, want the second login's", ids[0].RawClaims)
	}
	if !ids[0].LastLoginAt.Equal(clk.t) {
		t.Errorf("identity LastLoginAt = %v, want %v", ids[0].LastLoginAt, clk.t)
	}
	if n := userCount(t, s); n != 1 {
		t.Errorf("store has %d users, want 1", n)
	}
}

func mustUser(t *testing.T, s provisioner.Store, id string) *provisioner.User {
	t.Helper()
	u, err := s.User(t.Context(), id)
	if err != nil {
		t.Fatalf("User(%s): %v", id, err)
	}
	return u
}

func TestProvisionDisabledUser(t *testing.T) {
	s := newStore(t)
	clk := &clock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	p := &provisioner.Provisioner{Store: s, Now: clk.Now}
	ctx := t.Context()
	res, err := provision(p, ctx, "corp", on, aliceClaims())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, res.User.ID, provisioner.StatusDisabled, ""); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(time.Hour)
	got, err := provision(p, ctx, "corp", on, aliceClaims())
	if !errors.Is(err, provisioner.ErrUserDisabled) {
		t.Fatalf("Provision of disabled user = %+v, %v; want ErrUserDisabled", got, err)
	}
	if got.User != nil {
		t.Errorf("disabled login returned user %+v", got.User)
	}
	if u := mustUser(t, s, res.User.ID); !u.LastLoginAt.Equal(res.User.LastLoginAt) {
		t.Errorf("disabled login was recorded: LastLoginAt %v, want %v", u.LastLoginAt, res.User.LastLoginAt)
	}
	// Re-enabled, the user logs in again.
	if err := s.SetStatus(ctx, res.User.ID, provisioner.StatusActive, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := provision(p, ctx, "corp", on, aliceClaims()); err != nil || got.Outcome != provisioner.OutcomeUpdated {
		t.Errorf("Provision after re-enabling = %+v, %v; want updated", got, err)
	}
}

func TestProvisionUsernameConflict(t *testing.T) {
	for name, tc := range map[string]struct {
		second provisioner.Claims
		want   error
	}{
		"same verified email": {provisioner.Claims{
			Issuer: "https://idp.example.com", Subject: "sub-mallory",
			Email: "alice@example.com", EmailVerified: true,
		}, provisioner.ErrEmailConflict},
		"same email, unverified": {provisioner.Claims{
			Issuer: "https://idp.example.com", Subject: "sub-mallory",
			Email: "alice@example.com", PreferredUsername: "mallory",
		}, provisioner.ErrEmailConflict},
		"email differing in case, other connection's issuer": {provisioner.Claims{
			Issuer: "https://other.example.com", Subject: "sub-alice",
			Email: "ALICE@EXAMPLE.COM", EmailVerified: true,
		}, provisioner.ErrEmailConflict},
	} {
		second := tc.second
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			p := &provisioner.Provisioner{Store: s}
			ctx := t.Context()
			first, err := provision(p, ctx, "corp", on, aliceClaims())
			if err != nil {
				t.Fatal(err)
			}
			got, err := provision(p, ctx, "corp", on, second)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Provision = %+v, %v; want %v", got, err, tc.want)
			}
			if n := userCount(t, s); n != 1 {
				t.Errorf("store has %d users, want 1", n)
			}
			key := provisioner.IdentityKey{Connection: "corp", Issuer: second.Issuer, Subject: second.Subject}
			if _, err := s.UserByIdentity(ctx, key); !errors.Is(err, provisioner.ErrNotFound) {
				t.Errorf("conflicting identity was stored (err = %v)", err)
			}
			if ids, _ := s.Identities(ctx, first.User.ID); len(ids) != 1 {
				t.Errorf("first user has %d identities, want 1", len(ids))
			}
		})
	}
}

func TestProvisionInvalidClaims(t *testing.T) {
	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	ctx := t.Context()
	noSub := aliceClaims()
	noSub.Subject = ""
	for _, pol := range []provisioner.Policy{on, {}} {
		if _, err := provision(p, ctx, "corp", pol, noSub); !errors.Is(err, provisioner.ErrInvalidClaims) {
			t.Errorf("Provision without subject (policy %+v): err = %v, want ErrInvalidClaims", pol, err)
		}
	}
	// No usable username: no verified email, no preferred username, and
	// "<connection>-<subject>" too long.
	long := provisioner.Claims{Issuer: "i", Subject: strings.Repeat("x", provisioner.MaxUsernameLength)}
	if _, err := provision(p, ctx, "corp", on, long); !errors.Is(err, provisioner.ErrInvalidClaims) {
		t.Errorf("Provision without usable username: err = %v, want ErrInvalidClaims", err)
	}
	if n := userCount(t, s); n != 0 {
		t.Errorf("store has %d users, want 0", n)
	}
}

// faultyStore wraps a Store, failing the named methods.
type faultyStore struct {
	provisioner.Store
	fail map[string]bool
	// beforeRecordLogin, if set, runs before RecordLogin reaches the store.
	beforeRecordLogin func()
}

var errBoom = errors.New("boom: disk on fire")

func (f *faultyStore) UserByIdentity(ctx context.Context, k provisioner.IdentityKey) (*provisioner.User, error) {
	if f.fail["UserByIdentity"] {
		return nil, errBoom
	}
	return f.Store.UserByIdentity(ctx, k)
}

func (f *faultyStore) CreateUser(ctx context.Context, u *provisioner.User, id provisioner.Identity) (*provisioner.User, error) {
	if f.fail["CreateUser"] {
		return nil, errBoom
	}
	return f.Store.CreateUser(ctx, u, id)
}

func (f *faultyStore) RecordLogin(ctx context.Context, k provisioner.IdentityKey, raw []byte, at time.Time, update provisioner.UpdateFunc) (*provisioner.User, error) {
	if f.beforeRecordLogin != nil {
		f.beforeRecordLogin()
	}
	if f.fail["RecordLogin"] {
		return nil, errBoom
	}
	return f.Store.RecordLogin(ctx, k, raw, at, update)
}

func (f *faultyStore) UsersByEmail(ctx context.Context, email string) ([]provisioner.User, error) {
	if f.fail["UsersByEmail"] {
		return nil, errBoom
	}
	return f.Store.UsersByEmail(ctx, email)
}

func TestProvisionStoreUnavailable(t *testing.T) {
	for _, method := range []string{"UserByIdentity", "UsersByEmail", "CreateUser", "RecordLogin"} {
		t.Run(method, func(t *testing.T) {
			s := newStore(t)
			ctx := t.Context()
			// RecordLogin only runs for a known identity.
			if method == "RecordLogin" {
				if _, err := provision(&provisioner.Provisioner{Store: s}, ctx, "corp", on, aliceClaims()); err != nil {
					t.Fatal(err)
				}
			}
			f := &faultyStore{Store: s, fail: map[string]bool{method: true}}
			res, err := provision(&provisioner.Provisioner{Store: f}, ctx, "corp", on, aliceClaims())
			if !errors.Is(err, provisioner.ErrStoreUnavailable) {
				t.Fatalf("Provision = %+v, %v; want ErrStoreUnavailable", res, err)
			}
			if !strings.Contains(err.Error(), "boom") {
				t.Errorf("error %q hides the store's error", err)
			}
			if res.User != nil {
				t.Errorf("failed Provision returned user %+v", res.User)
			}
		})
	}
	t.Run("closed", func(t *testing.T) {
		s := newStore(t)
		s.Close()
		_, err := provision(&provisioner.Provisioner{Store: s}, t.Context(), "corp", on, aliceClaims())
		if !errors.Is(err, provisioner.ErrStoreUnavailable) {
			t.Fatalf("Provision on closed store: err = %v, want ErrStoreUnavailable", err)
		}
	})
}

// TestProvisionDeletedMeanwhile: a user deleted between lookup and
// RecordLogin is provisioned afresh.
func TestProvisionDeletedMeanwhile(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	first, err := provision(&provisioner.Provisioner{Store: s}, ctx, "corp", on, aliceClaims())
	if err != nil {
		t.Fatal(err)
	}
	f := &faultyStore{Store: s}
	f.beforeRecordLogin = func() {
		f.beforeRecordLogin = nil
		if err := s.DeleteUser(ctx, first.User.ID); err != nil {
			t.Errorf("DeleteUser: %v", err)
		}
	}
	res, err := provision(&provisioner.Provisioner{Store: f}, ctx, "corp", on, aliceClaims())
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if res.Outcome != provisioner.OutcomeCreated || res.User.ID == first.User.ID {
		t.Errorf("Provision = %s user %s, want a newly created user", res.Outcome, res.User.ID)
	}
	if n := userCount(t, s); n != 1 {
		t.Errorf("store has %d users, want 1", n)
	}
}

func TestNormalizeUsername(t *testing.T) {
	for in, want := range map[string]string{
		"alice":          "alice",
		"Alice":          "alice",
		"  ALICE \t":     "alice",
		"Ａｌｉｃｅ":          "alice",
		"\ufb01sh":       "fish", // ligature fi
		"\u212Aelvin":    "kelvin",
		"e\u0301":        "\u00e9", // composed
		"J\u030C":        "\u01f0", // lower case composes after lowering
		"Ǳ":              "dz",
		"alice@EXAMPLE.": "alice@example.",
		"":               "",
	} {
		if got := provisioner.NormalizeUsername(in); got != want {
			t.Errorf("NormalizeUsername(%+q) = %+q, want %+q", in, got, want)
		}
	}
	// Names that must collide.
	for _, pair := range [][2]string{{"Alice", "ALICE"}, {"alice", "Ａｌｉｃｅ"}, {"J\u030C", "\u01f0"}} {
		if a, b := provisioner.NormalizeUsername(pair[0]), provisioner.NormalizeUsername(pair[1]); a != b {
			t.Errorf("%+q and %+q normalise differently: %+q, %+q", pair[0], pair[1], a, b)
		}
	}
}

func TestUsernameFromClaims(t *testing.T) {
	tests := []struct {
		name string
		c    provisioner.Claims
		want string
	}{
		{"verified email preferred", provisioner.Claims{Subject: "s", Email: "Alice@Example.com", EmailVerified: true, PreferredUsername: "al"}, "alice@example.com"},
		{"unverified email not used", provisioner.Claims{Subject: "s", Email: "alice@example.com", PreferredUsername: "Al"}, "al"},
		{"unverified email, no preferred", provisioner.Claims{Subject: "s123", Email: "alice@example.com"}, "corp-s123"},
		{"preferred username", provisioner.Claims{Subject: "s", PreferredUsername: "Bob"}, "bob"},
		{"fallback", provisioner.Claims{Subject: "AbC"}, "corp-abc"},
		{"controls stripped", provisioner.Claims{Subject: "s", PreferredUsername: "bo\x00b\r\nX-Admin:\x7f1"}, "bobx-admin_1"},
		{"spaces and separators stripped", provisioner.Claims{Subject: "s", PreferredUsername: "bob smith, \"jr\"; x"}, "bobsmithjrx"},
		{"only controls falls back", provisioner.Claims{Subject: "s", PreferredUsername: "\t\x01 \n"}, "corp-s"},
		{"controls in subject", provisioner.Claims{Subject: "a\nb"}, "corp-ab"},
		{"email with controls is not that email", provisioner.Claims{Subject: "s", Email: "a\r\nb@example.com", EmailVerified: true}, "corp-s"},
		{"too long email falls back", provisioner.Claims{Subject: "s", Email: strings.Repeat("a", 130) + "@x", EmailVerified: true, PreferredUsername: "p"}, "p"},
		{"full width", provisioner.Claims{Subject: "s", PreferredUsername: "Ｂｏｂ"}, "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := provisioner.UsernameFromClaims("corp", tt.c); got != tt.want {
				t.Errorf("usernameFromClaims = %+q, want %+q", got, tt.want)
			}
		})
	}
}

func FuzzNormalizeUsername(f *testing.F) {
	for _, s := range []string{
		"alice", "Alice", " ALICE ", "Ａｌｉｃｅ", "\ufb01", "J\u030C", "\u01f0", "e\u0301",
		"a\x00b", "a b,c;d\"e", "\xff\xfe", "İstanbul", "ß", "\u0345", "\u1e9e", "\u00a0x\u00a0",
		"ᴬ", "\u2126", "\u212a", "x\u0307\u0323",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := provisioner.NormalizeUsername(s)
		if again := provisioner.NormalizeUsername(n); again != n {
			t.Errorf("NormalizeUsername not idempotent: %+q -> %+q -> %+q", s, n, again)
		}
		c := provisioner.CleanUsername(s)
		if len(c) > provisioner.MaxUsernameLength {
			t.Errorf("cleanUsername(%+q) = %+q, longer than %d bytes", s, c, provisioner.MaxUsernameLength)
		}
		for _, r := range c {
			if unicode.IsControl(r) || unicode.IsSpace(r) || r == ',' || r == ';' || r == '"' {
				t.Fatalf("cleanUsername(%+q) = %+q contains %+q", s, c, r)
			}
		}
		// A cleaned name is stable under further cleaning and
		// normalisation, as far as uniqueness is concerned.
		if c != "" && provisioner.NormalizeUsername(provisioner.CleanUsername(c)) != provisioner.NormalizeUsername(c) {
			t.Errorf("cleanUsername not stable: %+q -> %+q -> %+q", s, c, provisioner.CleanUsername(c))
		}
	})
}

func (f *faultyStore) UserByUsername(ctx context.Context, name string) (*provisioner.User, error) {
	if f.fail["UserByUsername"] {
		return nil, errBoom
	}
	return f.Store.UserByUsername(ctx, name)
}

// A JIT-off login is named by its verified email only while the
// directory agrees the address is this person's: no local user has the
// name, or the one who has it has it as their verified email (then the
// result names them as the holder, and their status applies); a local
// user whose email moved on keeps the name, and the login takes the next
// template.
func TestProvisionJITOffNameAgainstTheDirectory(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	p := &provisioner.Provisioner{Store: s}
	off := provisioner.Policy{}

	res, err := provision(p, ctx, "partner", off, aliceClaims())
	if err != nil || res.Username != "alice@example.com" || res.Holder != "" {
		t.Fatalf("no local user: %+v, %v; want alice@example.com and no holder", res, err)
	}
	created, err := provision(p, ctx, "corp", on, aliceClaims())
	if err != nil || created.User.Username != "alice@example.com" {
		t.Fatalf("JIT on: %+v, %v", created, err)
	}
	res, err = provision(p, ctx, "partner", off, aliceClaims())
	if err != nil || res.Username != "alice@example.com" || res.Holder != created.User.ID {
		t.Fatalf("the local user's own address: %+v, %v; want alice@example.com held by %s", res, err, created.User.ID)
	}
	if err := s.SetStatus(ctx, created.User.ID, provisioner.StatusDisabled, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := provision(p, ctx, "partner", off, aliceClaims()); !errors.Is(err, provisioner.ErrUserDisabled) {
		t.Fatalf("the holder disabled: %v, want ErrUserDisabled", err)
	}
	if err := s.SetStatus(ctx, created.User.ID, provisioner.StatusActive, "test"); err != nil {
		t.Fatal(err)
	}

	// Alice's address changes; the old one is then someone else's.
	moved := aliceClaims()
	moved.Email = "alice.new@example.com"
	if _, err := provision(p, ctx, "corp", on, moved); err != nil {
		t.Fatal(err)
	}
	other := aliceClaims()
	other.Subject = "sub-other"
	res, err = provision(p, ctx, "partner", off, other)
	if err != nil || res.Username != "partner:sub-other" || res.Holder != "" {
		t.Fatalf("an address the local user no longer has: %+v, %v; want partner:sub-other", res, err)
	}

	// An outage keeps JIT-off logins working, unchecked, and says so.
	f := &faultyStore{Store: s, fail: map[string]bool{"UserByUsername": true}}
	res, err = provision(&provisioner.Provisioner{Store: f}, ctx, "partner", off, aliceClaims())
	if err != nil || res.Username != "alice@example.com" || !errors.Is(res.DirectoryErr, provisioner.ErrStoreUnavailable) {
		t.Fatalf("directory unreadable: %+v, %v; want the email name and DirectoryErr", res, err)
	}
}

// A subject no store could index or keep is refused as invalid claims
// (a 4xx for the user), not written and failed as a store outage.
func TestProvisionRefusesAnUnstorableSubject(t *testing.T) {
	p := &provisioner.Provisioner{Store: newStore(t)}
	for _, sub := range []string{strings.Repeat("s", provisioner.MaxSubjectLength+1), "a\x00b", "a\xffb"} {
		c := aliceClaims()
		c.Subject = sub
		for _, pol := range []provisioner.Policy{on, {}} {
			if _, err := provision(p, t.Context(), "corp", pol, c); !errors.Is(err, provisioner.ErrInvalidClaims) {
				t.Errorf("subject %.20q (JIT %v): %v, want ErrInvalidClaims", sub, pol.Enabled, err)
			}
		}
	}
}

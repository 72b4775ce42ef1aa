package sqlitestore

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/mfa"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/storetest"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) provisioner.Store { return openTemp(t) })
	storetest.RunRefreshTokens(t, func(t *testing.T) storetest.UserAdminAndRefresh { return openTemp(t) })
	storetest.RunUserBatch(t, func(t *testing.T) storetest.UserAndBatch { return openTemp(t) })
	storetest.RunSingleUse(t, func(t *testing.T) storetest.RevocationsAndSingleUse { return openTemp(t) })
	storetest.RunTOTPEnroller(t, func(t *testing.T) storetest.UserFactorsAndEnroller { return openTemp(t) })
	storetest.RunUsernameRetirer(t, func(t *testing.T) storetest.UserAdminAndRetirer { return openTemp(t) })
	storetest.RunIssuerAdopter(t, func(t *testing.T) storetest.UserAndIssuerAdopter { return openTemp(t) })
}

// Each part of the suite needs only its role: run through a value that
// shows nothing but the user store (or one other role beside it), the
// SQLite store passes each part, as a third-party store that implements
// only some roles would.
func TestConformanceByRole(t *testing.T) {
	t.Run("UserStore", func(t *testing.T) {
		storetest.RunUserStore(t, func(t *testing.T) provisioner.UserStore {
			return struct{ provisioner.UserStore }{openTemp(t)}
		})
	})
	t.Run("RevocationStore", func(t *testing.T) {
		storetest.RunRevocations(t, func(t *testing.T) provisioner.RevocationStore {
			return struct{ provisioner.RevocationStore }{openTemp(t)}
		})
	})
}

func TestConformanceInMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) provisioner.Store {
		s, err := Open(":memory:")
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func versions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return vs
}

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	want := make([]int, SchemaVersion)
	for i := range want {
		want[i] = i + 1
	}
	if got := versions(t, s.db); !equalInts(got, want) {
		t.Fatalf("schema_migrations = %v, want %v", got, want)
	}
	u, err := s.CreateUser(t.Context(), &provisioner.User{Username: "alice"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "s"}})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for range 2 {
		s, err = Open(path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if got := versions(t, s.db); !equalInts(got, want) {
			t.Errorf("after reopen schema_migrations = %v, want %v", got, want)
		}
		got, err := s.User(t.Context(), u.ID)
		if err != nil || got.Username != "alice" {
			t.Errorf("after reopen User = %v, %v; want alice", got, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestPragmas(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	// Hold one connection so every pragma is read from the same one.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "10000",
		"synchronous":  "1", // NORMAL
	} {
		var got string
		if err := conn.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if strings.ToLower(got) != want {
			t.Errorf("PRAGMA %s = %q, want %q", pragma, got, want)
		}
	}
}

func TestFutureSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	future := SchemaVersion + 1
	if _, err := s.db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, future); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database with a future schema version succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("err = %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{fmt.Sprintf("schema version %d", future), fmt.Sprintf("knows up to %d", SchemaVersion), path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestCreatesMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "users.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("directory not created: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode = %v, want 0700", perm)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file not created: %v", err)
	}
}

func TestOddPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?x=1#frag", "users %41.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if _, err := s.CreateUser(t.Context(), &provisioner.User{Username: "alice"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "s"}}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at the path given: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "regular")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	notADB := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(notADB, []byte(strings.Repeat("this is not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"empty":          "",
		"under a file":   filepath.Join(file, "users.db"),
		"a directory":    dir,
		"not a database": notADB,
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", path)
			}
			if !strings.HasPrefix(err.Error(), "sqlite store: ") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
}

// TestOutage: once the database is unreachable every method returns an
// error (none panics), and the provisioner turns it into
// ErrStoreUnavailable.
func TestOutage(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	u, err := s.CreateUser(ctx, &provisioner.User{Username: "alice"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "s"}})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	key := provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "s"}
	calls := map[string]func() error{
		"Ping": func() error { return s.Ping(ctx) },
		"UserByIdentity": func() error {
			_, err := s.UserByIdentity(ctx, key)
			return err
		},
		"User": func() error {
			_, err := s.User(ctx, u.ID)
			return err
		},
		"UserByUsername": func() error {
			_, err := s.UserByUsername(ctx, "alice")
			return err
		},
		"CreateUser": func() error {
			_, err := s.CreateUser(ctx, &provisioner.User{Username: "bob"},
				provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "t"}})
			return err
		},
		"UsersByEmail": func() error {
			_, err := s.UsersByEmail(ctx, "alice@example.com")
			return err
		},
		"RecordLogin": func() error {
			_, err := s.RecordLogin(ctx, key, nil, time.Now(), nil)
			return err
		},
		"LinkIdentity": func() error {
			_, err := s.LinkIdentity(ctx, u.ID,
				provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "u"}}, nil)
			return err
		},
		"UpdateUser": func() error {
			_, err := s.UpdateUser(ctx, u.ID, func(u *provisioner.User) error { u.Name = "x"; return nil })
			return err
		},
		"TOTP": func() error {
			_, err := s.TOTP(ctx, u.ID)
			return err
		},
		"SetTOTP":         func() error { return s.SetTOTP(ctx, u.ID, provisioner.TOTP{SealedSecret: []byte("x")}) },
		"DeleteTOTP":      func() error { return s.DeleteTOTP(ctx, u.ID) },
		"UseTOTPStep":     func() error { return s.UseTOTPStep(ctx, u.ID, 1) },
		"UseRecoveryCode": func() error { return s.UseRecoveryCode(ctx, u.ID, "h") },
		"AdmitTOTPAttempt": func() error {
			_, _, err := s.AdmitTOTPAttempt(ctx, u.ID, time.Now(), mfa.Locked)
			return err
		},
		"ListUsers": func() error {
			_, err := s.ListUsers(ctx, 0, 10)
			return err
		},
		"Identities": func() error {
			_, err := s.Identities(ctx, u.ID)
			return err
		},
		"SetStatus":     func() error { return s.SetStatus(ctx, u.ID, provisioner.StatusDisabled, "") },
		"DeleteUser":    func() error { return s.DeleteUser(ctx, u.ID) },
		"RevokeSession": func() error { return s.RevokeSession(ctx, "x", time.Now().Add(time.Hour)) },
		"RevokedSessions": func() error {
			_, err := s.RevokedSessions(ctx, time.Time{})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if err == nil {
			t.Errorf("%s succeeded on a closed database", name)
			continue
		}
		if errors.Is(err, provisioner.ErrNotFound) {
			t.Errorf("%s: outage reported as ErrNotFound: %v", name, err)
		}
		if !strings.HasPrefix(err.Error(), "sqlite store: ") {
			t.Errorf("%s: error %q lacks context", name, err)
		}
	}

	p := &provisioner.Provisioner{Store: s}
	_, err = p.Provision(ctx, provisioner.Request{Connection: "c", Policy: &provisioner.Policy{Enabled: true},
		Claims: provisioner.Claims{Issuer: "i", Subject: "s"}})
	if !errors.Is(err, provisioner.ErrStoreUnavailable) {
		t.Errorf("Provision on closed store: err = %v, want ErrStoreUnavailable", err)
	}
}

// TestTimesRoundTrip: times come back Equal to what was written, in UTC,
// at full nanosecond precision, whatever zone they were given in.
func TestTimesRoundTrip(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	zone := time.FixedZone("X", 5*3600+30*60)
	login := time.Date(2031, 7, 8, 9, 10, 11, 123456789, zone)
	key := provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "s"}
	u, err := s.CreateUser(ctx, &provisioner.User{Username: "alice", LastLoginAt: login},
		provisioner.Identity{IdentityKey: key, CreatedAt: login, LastLoginAt: login})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if !u.LastLoginAt.Equal(login) || u.LastLoginAt.Location() != time.UTC {
		t.Errorf("LastLoginAt = %v, want %v in UTC", u.LastLoginAt, login)
	}
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("Identities = %v, %v", ids, err)
	}
	if !ids[0].CreatedAt.Equal(login) || !ids[0].LastLoginAt.Equal(login) {
		t.Errorf("identity times = %v, %v; want %v", ids[0].CreatedAt, ids[0].LastLoginAt, login)
	}

	// A user created without a login time has a zero LastLoginAt.
	u2, err := s.CreateUser(ctx, &provisioner.User{Username: "bob"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "t"}})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if !u2.LastLoginAt.IsZero() {
		t.Errorf("LastLoginAt = %v, want zero", u2.LastLoginAt)
	}

	// Out-of-range times are refused, not silently wrapped.
	_, err = s.CreateUser(ctx, &provisioner.User{Username: "carol", LastLoginAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "u"}})
	if err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("CreateUser with year 3000: err = %v, want out of range", err)
	}
}

// TestConstraintMapping exercises mapConstraint directly against the
// database, bypassing CreateUser's identity pre-check.
func TestConstraintMapping(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	u, err := s.CreateUser(ctx, &provisioner.User{Username: "alice"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO identities (connection, issuer, subject, user_id, created_at)
		VALUES ('c', 'i', 's', ?, 0)`, u.ID)
	if err := mapConstraint(err); !errors.Is(err, provisioner.ErrIdentityExists) {
		t.Errorf("duplicate identity insert maps to %v, want ErrIdentityExists", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO users (id, username, username_norm, created_at, updated_at)
		VALUES ('x', 'ALICE', 'alice', 0, 0)`)
	if err := mapConstraint(err); !errors.Is(err, provisioner.ErrUsernameTaken) {
		t.Errorf("duplicate username insert maps to %v, want ErrUsernameTaken", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO identities (connection, issuer, subject, user_id, created_at)
		VALUES ('c', 'i', 'other', 'no-such-user', 0)`)
	if err == nil {
		t.Error("identity for a missing user was accepted: foreign keys are off")
	} else if err := mapConstraint(err); errors.Is(err, provisioner.ErrIdentityExists) || errors.Is(err, provisioner.ErrUsernameTaken) {
		t.Errorf("foreign key violation mapped to %v", err)
	}
}

// TestTwoHandlesOneFile: two Stores on one file (as two processes would
// have) see each other's writes and serialise their first logins.
func TestTwoHandlesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	claims := provisioner.Claims{Issuer: "i", Subject: "s", Email: "x@example.com", EmailVerified: true}
	type result struct {
		id  string
		err error
	}
	results := make(chan result, 40)
	for i := range 40 {
		store := a
		if i%2 == 1 {
			store = b
		}
		go func() {
			r, err := (&provisioner.Provisioner{Store: store}).Provision(ctx,
				provisioner.Request{Connection: "corp", Policy: &provisioner.Policy{Enabled: true}, Claims: claims})
			if err != nil {
				results <- result{err: err}
				return
			}
			results <- result{id: r.User.ID}
		}()
	}
	var first string
	for range 40 {
		r := <-results
		switch {
		case r.err != nil:
			t.Error(r.err)
		case first == "":
			first = r.id
		case r.id != first:
			t.Errorf("user IDs differ: %s and %s", first, r.id)
		}
	}
	users, err := b.ListUsers(ctx, 0, 10)
	if err != nil || len(users) != 1 {
		t.Errorf("ListUsers = %v, %v; want one user", users, err)
	}
}

// TestTOTPAttemptsTwoHandles: two Stores on one file queue their writers
// separately, as two processes do; a burst of TOTP attempts split across
// them is still admitted 3 in all, because the count is read inside the
// write transaction (BEGIN IMMEDIATE).
func TestTOTPAttemptsTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := t.Context()
	r, err := (&provisioner.Provisioner{Store: a}).Provision(ctx, provisioner.Request{Connection: "corp",
		Policy: &provisioner.Policy{Enabled: true}, Claims: provisioner.Claims{Issuer: "i", Subject: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetTOTP(ctx, r.User.ID, provisioner.TOTP{SealedSecret: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	const n = 30
	now := time.Now()
	waits := make(chan time.Duration, n)
	for i := range n {
		store := a
		if i%2 == 1 {
			store = b
		}
		go func() {
			_, wait, err := store.AdmitTOTPAttempt(ctx, r.User.ID, now, mfa.Locked)
			if err != nil {
				t.Error(err)
				wait = -1
			}
			waits <- wait
		}()
	}
	admitted := 0
	for range n {
		if <-waits == 0 {
			admitted++
		}
	}
	if admitted != 3 {
		t.Errorf("two handles admitted %d of %d attempts at once, want 3", admitted, n)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNewDatabaseFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Fatalf("new database file mode %o, want 600", mode)
	}
}

// TestMigrationFromVersion1: users written under schema version 1 keep
// their data, get email_norm exactly as NormalizeEmail computes it (also
// beyond ASCII, which SQLite's lower() does not fold), and take part in
// the version 2 features.
func TestMigrationFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	latest := SchemaVersion
	SchemaVersion = 1
	s, err := Open(path)
	SchemaVersion = latest
	if err != nil {
		t.Fatalf("Open at version 1: %v", err)
	}
	emails := map[string]string{
		"u1": "Alice@Example.COM",
		"u2": " ÉMILE@Exemple.FR\t",
		"u3": "",
	}
	for id, email := range emails {
		if _, err := s.db.Exec(`INSERT INTO users (id, username, username_norm, email, groups, created_at, updated_at)
			VALUES (?, ?, ?, ?, '["g"]', 1, 1)`, id, id, id, email); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.Exec(`INSERT INTO identities (connection, issuer, subject, user_id, created_at)
			VALUES ('c', 'i', ?, ?, 1)`, id, id); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatalf("Open after version 1: %v", err)
	}
	defer s.Close()
	ctx := t.Context()
	for id, email := range emails {
		var norm string
		if err := s.db.QueryRow(`SELECT email_norm FROM users WHERE id = ?`, id).Scan(&norm); err != nil {
			t.Fatal(err)
		}
		if want := provisioner.NormalizeEmail(email); norm != want {
			t.Errorf("email_norm of %q = %q, want %q", email, norm, want)
		}
	}
	for email, want := range map[string]string{"alice@example.com": "u1", "émile@exemple.fr": "u2"} {
		us, err := s.UsersByEmail(ctx, email)
		if err != nil || len(us) != 1 || us[0].ID != want {
			t.Errorf("UsersByEmail(%q) = %v, %v; want %s", email, us, err, want)
		}
	}
	u, err := s.User(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "Alice@Example.COM" || len(u.Groups) != 1 || u.RoleGrants != nil || u.LocalAttributes != nil || u.Consents != nil {
		t.Errorf("migrated user = %+v", u)
	}
	if err := s.SetTOTP(ctx, "u1", provisioner.TOTP{SealedSecret: []byte("x")}); err != nil {
		t.Fatalf("SetTOTP: %v", err)
	}
	if err := s.DeleteUser(ctx, "u1"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	if _, err := s.TOTP(ctx, "u1"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("TOTP of a deleted migrated user: err = %v, want ErrNotFound", err)
	}
}

// TestMigrationNameNorm: users written before name_norm existed get it
// exactly as NormalizeName computes it (SQLite's lower() folds only
// ASCII), so the directory search finds them by any case of their name.
func TestMigrationNameNorm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	// Version 6 added name_norm.
	const before = 5
	latest := SchemaVersion
	SchemaVersion = before
	s, err := Open(path)
	SchemaVersion = latest
	if err != nil {
		t.Fatalf("Open at version %d: %v", before, err)
	}
	names := map[string]string{"u1": "Élodie Durand", "u2": "ALICE", "u3": ""}
	for id, name := range names {
		if _, err := s.db.Exec(`INSERT INTO users (id, username, username_norm, name, created_at, updated_at)
			VALUES (?, ?, ?, ?, 1, 1)`, id, id, id, name); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatalf("Open after version %d: %v", before, err)
	}
	defer s.Close()
	for id, name := range names {
		var norm string
		if err := s.db.QueryRow(`SELECT name_norm FROM users WHERE id = ?`, id).Scan(&norm); err != nil {
			t.Fatal(err)
		}
		if want := provisioner.NormalizeName(name); norm != want {
			t.Errorf("name_norm of %q = %q, want %q", name, norm, want)
		}
	}
	if found, err := s.SearchUsers(t.Context(), provisioner.UserQuery{Search: "ÉLODIE"}); err != nil || len(found) != 1 || found[0].ID != "u1" {
		t.Errorf("search ÉLODIE after the migration = %v, %v; want u1", found, err)
	}
}

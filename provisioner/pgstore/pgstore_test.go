package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jitauth/caddy-jitauth/internal/freeport"
	"github.com/jitauth/caddy-jitauth/internal/tcpproxy"
	"github.com/jitauth/caddy-jitauth/mfa"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/storetest"
)

// defaultTestURL is the server the tests use when JITAUTH_TEST_POSTGRES
// is unset (the one .ci/run starts and names).
const defaultTestURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
	serverSet  bool
)

// testServer returns the URL of the test server. With
// JITAUTH_TEST_POSTGRES set, a server that does not answer fails the
// test; without it, the default URL is tried and the test is skipped if
// nothing answers there.
func testServer(t *testing.T) string {
	t.Helper()
	serverOnce.Do(func() {
		serverURL, serverSet = os.LookupEnv("JITAUTH_TEST_POSTGRES")
		serverSet = serverSet && serverURL != ""
		if !serverSet {
			serverURL = defaultTestURL
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			serverErr = err
			return
		}
		defer conn.Close(ctx)
		serverErr = conn.Ping(ctx)
	})
	if serverErr != nil {
		if serverSet {
			t.Fatalf("JITAUTH_TEST_POSTGRES is set but the server does not answer: %v", serverErr)
		}
		t.Skipf("no PostgreSQL at %s (%v); set JITAUTH_TEST_POSTGRES to run these tests", RedactURL(serverURL), serverErr)
	}
	return serverURL
}

// admin runs one statement on the test server outside any store.
func admin(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// newSchema creates an empty schema of its own for the test, dropped when
// the test ends, and returns it with a URL whose search_path selects it.
func newSchema(t *testing.T) (schema, connString string) {
	t.Helper()
	base := testServer(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema = "jitauth_test_" + hex.EncodeToString(b)
	admin(t, `CREATE SCHEMA `+schema)
	t.Cleanup(func() { admin(t, `DROP SCHEMA `+schema+` CASCADE`) })
	return schema, withParam(t, base, "search_path", schema)
}

// withParam sets a parameter in a URL or keyword/value connection string.
func withParam(t *testing.T, connString, key, value string) string {
	t.Helper()
	if strings.Contains(connString, "://") {
		u, err := url.Parse(connString)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return connString + " " + key + "=" + value
}

func open(t *testing.T, connString string) *Store {
	t.Helper()
	s, err := Open(t.Context(), connString)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openFresh(t *testing.T) *Store {
	t.Helper()
	_, cs := newSchema(t)
	return open(t, cs)
}

func TestConformance(t *testing.T) {
	testServer(t)
	storetest.Run(t, func(t *testing.T) provisioner.Store { return openFresh(t) })
	storetest.RunRefreshTokens(t, func(t *testing.T) storetest.UserAdminAndRefresh { return openFresh(t) })
	storetest.RunUserBatch(t, func(t *testing.T) storetest.UserAndBatch { return openFresh(t) })
	storetest.RunSingleUse(t, func(t *testing.T) storetest.RevocationsAndSingleUse { return openFresh(t) })
	storetest.RunTOTPEnroller(t, func(t *testing.T) storetest.UserFactorsAndEnroller { return openFresh(t) })
	storetest.RunUsernameRetirer(t, func(t *testing.T) storetest.UserAdminAndRetirer { return openFresh(t) })
	storetest.RunIssuerAdopter(t, func(t *testing.T) storetest.UserAndIssuerAdopter { return openFresh(t) })
}

func versions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(vs))
	for i, v := range vs {
		out[i] = int(v)
	}
	return out
}

func allVersions() []int {
	want := make([]int, SchemaVersion)
	for i := range want {
		want[i] = i + 1
	}
	return want
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

func createAlice(t *testing.T, s *Store) *provisioner.User {
	t.Helper()
	u, err := s.CreateUser(t.Context(), &provisioner.User{Username: "alice"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "s"}})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	return u
}

func TestMigrationsIdempotent(t *testing.T) {
	_, cs := newSchema(t)
	s := open(t, cs)
	if got := versions(t, s); !equalInts(got, allVersions()) {
		t.Fatalf("schema_migrations = %v, want %v", got, allVersions())
	}
	u := createAlice(t, s)
	s.Close()
	for range 2 {
		s := open(t, cs)
		if got := versions(t, s); !equalInts(got, allVersions()) {
			t.Errorf("after reopen schema_migrations = %v, want %v", got, allVersions())
		}
		if got, err := s.User(t.Context(), u.ID); err != nil || got.Username != "alice" {
			t.Errorf("after reopen User = %v, %v; want alice", got, err)
		}
		s.Close()
	}
}

// TestConcurrentOpen: instances starting at once against an empty schema
// all come up, and each migration is applied once.
func TestConcurrentOpen(t *testing.T) {
	_, cs := newSchema(t)
	const n = 8
	stores := make([]*Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = Open(t.Context(), cs)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	if got := versions(t, stores[0]); !equalInts(got, allVersions()) {
		t.Errorf("schema_migrations = %v, want %v (each step once)", got, allVersions())
	}
	// They share one schema.
	u := createAlice(t, stores[1])
	if got, err := stores[n-1].User(t.Context(), u.ID); err != nil || got.ID != u.ID {
		t.Errorf("other instance: User = %v, %v", got, err)
	}
}

func TestFutureSchemaRefused(t *testing.T) {
	schema, cs := newSchema(t)
	s := open(t, cs)
	future := SchemaVersion + 1
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())`, future); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err := Open(t.Context(), cs)
	if err == nil {
		s.Close()
		t.Fatal("Open of a schema with a future version succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("err = %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{fmt.Sprintf("version %d", future), fmt.Sprintf("knows up to %d", SchemaVersion), schema, "127.0.0.1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestSchemasAreSeparate: stores in two schemas of one database do not
// see each other's users.
func TestSchemasAreSeparate(t *testing.T) {
	a, b := openFresh(t), openFresh(t)
	createAlice(t, a)
	if _, err := b.UserByUsername(t.Context(), "alice"); !errors.Is(err, provisioner.ErrNotFound) {
		t.Errorf("user of schema a found in schema b: %v", err)
	}
	createAlice(t, b) // the same identity and username are free there
}

func TestMissingSchema(t *testing.T) {
	cs := withParam(t, testServer(t), "search_path", "jitauth_test_no_such_schema")
	s, err := Open(t.Context(), cs)
	if err == nil {
		s.Close()
		t.Fatal("Open with a search_path naming no existing schema succeeded")
	}
	if !strings.Contains(err.Error(), "jitauth_test_no_such_schema") || !strings.Contains(err.Error(), "CREATE SCHEMA") {
		t.Errorf("error %q does not explain the missing schema", err)
	}
}

// closedPort returns a local TCP port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	port, err := freeport.Port()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func TestOpenUnreachable(t *testing.T) {
	port := closedPort(t)
	cs := fmt.Sprintf("postgres://jit:s3cr3t-pw@127.0.0.1:%d/auth?sslmode=disable", port)
	start := time.Now()
	s, err := Open(context.Background(), cs)
	if err == nil {
		s.Close()
		t.Fatal("Open of an unreachable server succeeded")
	}
	if d := time.Since(start); d > DefaultTimeout+time.Second {
		t.Errorf("Open took %v, want at most about %v", d, DefaultTimeout)
	}
	msg := err.Error()
	if strings.Contains(msg, "s3cr3t-pw") {
		t.Errorf("error shows the password: %q", msg)
	}
	if !strings.Contains(msg, fmt.Sprintf("127.0.0.1:%d", port)) || !strings.HasPrefix(msg, "postgres store: ") {
		t.Errorf("error %q does not name the server", msg)
	}
}

// TestOpenTimeout: a server that accepts but never answers makes Open
// fail within the context's deadline.
func TestOpenTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, err := Open(ctx, "postgres://jit@"+l.Addr().String()+"/auth?sslmode=disable")
	if err == nil {
		s.Close()
		t.Fatal("Open of a silent server succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open took %v despite a 300ms deadline", d)
	}
}

func TestOpenBadURL(t *testing.T) {
	for name, cs := range map[string]string{
		"empty":          "",
		"bad port":       "postgres://jit:s3cr3t-pw@db.example.com:notaport/auth",
		"bad scheme":     "mysql://jit:s3cr3t-pw@db.example.com/auth",
		"bad kv":         "host=db.example.com password=s3cr3t-pw port=notaport",
		"bad pool param": "postgres://jit:s3cr3t-pw@db.example.com/auth?pool_max_conns=x",
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Open(t.Context(), cs)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", cs)
			}
			t.Logf("error: %v", err)
			if strings.Contains(err.Error(), "s3cr3t-pw") {
				t.Errorf("error shows the password: %q", err)
			}
			if !strings.HasPrefix(err.Error(), "postgres store: ") {
				t.Errorf("error %q lacks context", err)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://jit:secret@db:5432/auth?sslmode=disable":     "postgres://jit:xxxxx@db:5432/auth?sslmode=disable",
		"postgres://jit@db/auth":                                 "postgres://jit@db/auth",
		"postgres://db/auth?password=secret":                     "postgres://db/auth?password=xxxxx",
		"host=db password=secret user=jit":                       "host=db password=xxxxx user=jit",
		"host=db password='se cret' user=jit":                    "host=db password=xxxxx user=jit",
		"postgres://jit:se%20cret@db:notaport/x":                 "(unparsable URL hidden)",
		"postgres://db/auth?sslpassword=secret&sslmode=required": "postgres://db/auth?sslmode=required&sslpassword=xxxxx",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOutage: once the pool is closed every method returns an error
// (none panics, none says ErrNotFound), and the provisioner turns it
// into ErrStoreUnavailable.
func TestOutage(t *testing.T) {
	s := openFresh(t)
	u := createAlice(t, s)
	s.Close()
	checkAllFail(t, s, u.ID)
}

func checkAllFail(t *testing.T, s *Store, userID string) {
	t.Helper()
	ctx := t.Context()
	key := provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "s"}
	calls := map[string]func() error{
		"Ping": func() error { return s.Ping(ctx) },
		"UserByIdentity": func() error {
			_, err := s.UserByIdentity(ctx, key)
			return err
		},
		"User": func() error {
			_, err := s.User(ctx, userID)
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
			_, err := s.LinkIdentity(ctx, userID,
				provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "u"}}, nil)
			return err
		},
		"UpdateUser": func() error {
			_, err := s.UpdateUser(ctx, userID, func(u *provisioner.User) error { u.Name = "x"; return nil })
			return err
		},
		"TOTP": func() error {
			_, err := s.TOTP(ctx, userID)
			return err
		},
		"SetTOTP":         func() error { return s.SetTOTP(ctx, userID, provisioner.TOTP{SealedSecret: []byte("x")}) },
		"DeleteTOTP":      func() error { return s.DeleteTOTP(ctx, userID) },
		"UseTOTPStep":     func() error { return s.UseTOTPStep(ctx, userID, 1) },
		"UseRecoveryCode": func() error { return s.UseRecoveryCode(ctx, userID, "h") },
		"AdmitTOTPAttempt": func() error {
			_, _, err := s.AdmitTOTPAttempt(ctx, userID, time.Now(), mfa.Locked)
			return err
		},
		"ListUsers": func() error {
			_, err := s.ListUsers(ctx, 0, 10)
			return err
		},
		"Identities": func() error {
			_, err := s.Identities(ctx, userID)
			return err
		},
		"SetStatus":     func() error { return s.SetStatus(ctx, userID, provisioner.StatusDisabled, "") },
		"DeleteUser":    func() error { return s.DeleteUser(ctx, userID) },
		"RevokeSession": func() error { return s.RevokeSession(ctx, "x", time.Now().Add(time.Hour)) },
		"RevokedSessions": func() error {
			_, err := s.RevokedSessions(ctx, time.Time{})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if err == nil {
			t.Errorf("%s succeeded without a database", name)
			continue
		}
		if errors.Is(err, provisioner.ErrNotFound) {
			t.Errorf("%s: outage reported as ErrNotFound: %v", name, err)
		}
		if !strings.HasPrefix(err.Error(), "postgres store: ") {
			t.Errorf("%s: error %q lacks context", name, err)
		}
	}
	p := &provisioner.Provisioner{Store: s}
	_, err := p.Provision(ctx, provisioner.Request{Connection: "c", Policy: &provisioner.Policy{Enabled: true},
		Claims: provisioner.Claims{Issuer: "i", Subject: "s"}})
	if !errors.Is(err, provisioner.ErrStoreUnavailable) {
		t.Errorf("Provision without a database: err = %v, want ErrStoreUnavailable", err)
	}
}

// TestRecoversAfterOutage: while the server is away calls fail with
// errors; once it is back the same Store works again by itself.
func TestRecoversAfterOutage(t *testing.T) {
	_, cs := newSchema(t)
	u, err := url.Parse(cs)
	if err != nil {
		t.Skip("needs a URL-form JITAUTH_TEST_POSTGRES")
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	px := tcpproxy.Start(t, host)
	u.Host = px.Addr()
	s := open(t, u.String())
	alice := createAlice(t, s)
	// Several connections in the pool, all of which will die.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ListUsers(t.Context(), 0, 10); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()

	px.Down()
	start := time.Now()
	checkAllFail(t, s, alice.ID)
	if d := time.Since(start); d > 3*DefaultTimeout {
		t.Errorf("failing calls took %v in all", d)
	}

	px.Up()
	deadline := time.Now().Add(5 * time.Second)
	attempts := 0
	for {
		attempts++
		got, err := s.User(t.Context(), alice.ID)
		if err == nil {
			if got.Username != "alice" {
				t.Errorf("User = %+v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover after the server came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("recovered after %d attempt(s)", attempts)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after recovery: %v", err)
	}
	if _, err := s.CreateUser(t.Context(), &provisioner.User{Username: "bob"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "bob"}}); err != nil {
		t.Errorf("CreateUser after recovery: %v", err)
	}
}

// TestDefaultTimeout: a call whose context has no deadline still ends,
// after the store's default timeout, when the database blocks it.
func TestDefaultTimeout(t *testing.T) {
	s := openFresh(t)
	alice := createAlice(t, s)
	s.timeout = 300 * time.Millisecond

	// Hold the user's row lock in another transaction.
	tx, err := s.pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, alice.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.SetStatus(context.Background(), alice.ID, provisioner.StatusDisabled, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SetStatus on a locked row: err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("SetStatus took %v with a 300ms default timeout", d)
	}
	// A deadline of the caller's own wins over the default.
	ctx, cancel := context.WithTimeout(context.Background(), 900*time.Millisecond)
	defer cancel()
	start = time.Now()
	_ = s.SetStatus(ctx, alice.ID, provisioner.StatusDisabled, "")
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Errorf("SetStatus gave up after %v, before the caller's deadline of 900ms", d)
	}
}

// TestConstraintMapping exercises mapConstraint directly against the
// database, bypassing CreateUser's identity pre-check.
func TestConstraintMapping(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	u := createAlice(t, s)
	_, err := s.pool.Exec(ctx, `INSERT INTO identities (connection, issuer, subject, user_id, created_at)
		VALUES ('c', 'i', 's', $1, now())`, u.ID)
	if err := mapConstraint(err); !errors.Is(err, provisioner.ErrIdentityExists) {
		t.Errorf("duplicate identity insert maps to %v, want ErrIdentityExists", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO users (id, username, username_norm, created_at, updated_at)
		VALUES ('x', 'ALICE', 'alice', now(), now())`)
	if err := mapConstraint(err); !errors.Is(err, provisioner.ErrUsernameTaken) {
		t.Errorf("duplicate username insert maps to %v, want ErrUsernameTaken", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO users (id, username, username_norm, created_at, updated_at)
		VALUES ($1, 'other', 'other', now(), now())`, u.ID)
	if err == nil {
		t.Error("duplicate user ID accepted")
	} else if err := mapConstraint(err); errors.Is(err, provisioner.ErrIdentityExists) || errors.Is(err, provisioner.ErrUsernameTaken) {
		t.Errorf("duplicate primary key of users mapped to %v", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO identities (connection, issuer, subject, user_id, created_at)
		VALUES ('c', 'i', 'other', 'no-such-user', now())`)
	if err == nil {
		t.Error("identity for a missing user was accepted")
	} else if err := mapConstraint(err); errors.Is(err, provisioner.ErrIdentityExists) || errors.Is(err, provisioner.ErrUsernameTaken) {
		t.Errorf("foreign key violation mapped to %v", err)
	}
}

// TestTwoInstancesConcurrentFirstLogin: two Stores with pools of their
// own on one schema (as two Caddy instances would have) racing first
// logins of one identity through the provisioner make exactly one user.
func TestTwoInstancesConcurrentFirstLogin(t *testing.T) {
	_, cs := newSchema(t)
	a, b := open(t, cs), open(t, cs)
	ctx := t.Context()
	claims := provisioner.Claims{Issuer: "i", Subject: "s", Email: "x@example.com", EmailVerified: true,
		Raw: []byte(`{"sub":"s"}`)}
	const n = 40
	type result struct {
		r   provisioner.Result
		err error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		store := a
		if i%2 == 1 {
			store = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := (&provisioner.Provisioner{Store: store}).Provision(ctx,
				provisioner.Request{Connection: "corp", Policy: &provisioner.Policy{Enabled: true}, Claims: claims})
			results[i] = result{r, err}
		}()
	}
	close(start)
	wg.Wait()
	var first string
	created := 0
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("login %d: %v", i, r.err)
		case first == "":
			first = r.r.User.ID
		case r.r.User.ID != first:
			t.Errorf("user IDs differ: %s and %s", first, r.r.User.ID)
		}
		if r.err == nil && r.r.Outcome == provisioner.OutcomeCreated {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d logins created the user, want 1", created)
	}
	for name, s := range map[string]*Store{"a": a, "b": b} {
		users, err := s.ListUsers(ctx, 0, 10)
		if err != nil || len(users) != 1 {
			t.Errorf("%s: ListUsers = %v, %v; want one user", name, users, err)
		}
	}
}

// TestTimesRoundTrip: times come back Equal to what was written at
// microsecond precision, in UTC, whatever zone they were given in.
func TestTimesRoundTrip(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	zone := time.FixedZone("X", 5*3600+30*60)
	login := time.Date(2031, 7, 8, 9, 10, 11, 123456000, zone)
	key := provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "s"}
	u, err := s.CreateUser(ctx, &provisioner.User{Username: "alice", LastLoginAt: login},
		provisioner.Identity{IdentityKey: key, CreatedAt: login, LastLoginAt: login})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if !u.LastLoginAt.Equal(login) || u.LastLoginAt.Location() != time.UTC {
		t.Errorf("LastLoginAt = %v, want %v in UTC", u.LastLoginAt, login)
	}
	if u.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt = %v, not UTC", u.CreatedAt)
	}
	ids, err := s.Identities(ctx, u.ID)
	if err != nil || len(ids) != 1 {
		t.Fatalf("Identities = %v, %v", ids, err)
	}
	if !ids[0].CreatedAt.Equal(login) || !ids[0].LastLoginAt.Equal(login) {
		t.Errorf("identity times = %v, %v; want %v", ids[0].CreatedAt, ids[0].LastLoginAt, login)
	}
	u2, err := s.CreateUser(ctx, &provisioner.User{Username: "bob"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "t"}})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if !u2.LastLoginAt.IsZero() {
		t.Errorf("LastLoginAt = %v, want zero", u2.LastLoginAt)
	}
}

func TestRawClaimsMustBeJSON(t *testing.T) {
	s := openFresh(t)
	_, err := s.CreateUser(t.Context(), &provisioner.User{Username: "alice"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: "s"},
			RawClaims: []byte("not json")})
	if err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("CreateUser with non-JSON raw claims: err = %v", err)
	}
}

// TestRevokeAgain: revoking a session again keeps the later expiry and
// records the row anew (the other instances read the expiry it now
// has); once its record has expired, a new revocation starts afresh, as
// if the old record had been pruned.
func TestRevokeAgain(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := t0
	s.now = func() time.Time { return clock }
	get := func() provisioner.RevokedSession {
		t.Helper()
		rs, err := s.RevokedSessions(ctx, time.Time{})
		if err != nil || len(rs) != 1 {
			t.Fatalf("RevokedSessions = %v, %v; want one", rs, err)
		}
		return rs[0]
	}
	if err := s.RevokeSession(ctx, "x", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	first := get()
	clock = t0.Add(time.Minute)
	if err := s.RevokeSession(ctx, "x", t0.Add(30*time.Minute)); err != nil { // earlier expiry
		t.Fatal(err)
	}
	again := get()
	if !again.RevokedAt.After(first.RevokedAt) || !again.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("after re-revocation: %+v, want recorded after %v, expiring %v", again, first.RevokedAt, t0.Add(time.Hour))
	}
	// Another session, expired by the time of the next revocation, is
	// pruned by it.
	if err := s.RevokeSession(ctx, "y", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	clock = t0.Add(2 * time.Hour)
	if err := s.RevokeSession(ctx, "x", t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if rs := get(); rs.ID != "x" || !rs.RevokedAt.After(again.RevokedAt) || !rs.ExpiresAt.Equal(t0.Add(3*time.Hour)) {
		t.Errorf("after revoking an expired record again: %+v, want recorded after %v, expiring %v", rs, again.RevokedAt, t0.Add(3*time.Hour))
	}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM revoked_sessions`).Scan(&n); err != nil || n != 1 {
		t.Errorf("revoked_sessions rows = %d, %v; want 1 (expired y pruned)", n, err)
	}
}

// TestRevocationTimesAreTheDatabases: a revocation written by a process
// whose clock is 30 s behind is listed to a reader that asks from the
// time of its previous answer less a few seconds: the times compared
// are the database's, not the processes'.
func TestRevocationTimesAreTheDatabases(t *testing.T) {
	s := openFresh(t)
	ctx := t.Context()
	if err := s.RevokeSession(ctx, "earlier", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rs, err := s.RevokedSessions(ctx, time.Time{})
	if err != nil || len(rs) != 1 {
		t.Fatalf("RevokedSessions = %v, %v; want one", rs, err)
	}
	since := rs[0].RevokedAt.Add(-time.Second)

	s.now = func() time.Time { return time.Now().Add(-30 * time.Second) }
	if err := s.RevokeSession(ctx, "slow", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rs, err = s.RevokedSessions(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	if !slices.Contains(ids, "slow") {
		t.Errorf("RevokedSessions(since the previous answer) = %q: the revocation written with a clock 30 s behind is missing", ids)
	}
}

// TestMigrationFromVersion1: users written under schema version 1 keep
// their data, get email_norm exactly as NormalizeEmail computes it
// (btrim() trims only spaces, and lower() follows the locale), and take
// part in the version 2 features.
func TestMigrationFromVersion1(t *testing.T) {
	_, cs := newSchema(t)
	latest := SchemaVersion
	SchemaVersion = 1
	s, err := Open(t.Context(), cs)
	SchemaVersion = latest
	if err != nil {
		t.Fatalf("Open at version 1: %v", err)
	}
	ctx := t.Context()
	emails := map[string]string{
		"u1": "Alice@Example.COM",
		"u2": " ÉMILE@Exemple.FR\t",
		"u3": "",
	}
	for id, email := range emails {
		if _, err := s.pool.Exec(ctx, `INSERT INTO users (id, username, username_norm, email, groups, created_at, updated_at)
			VALUES ($1, $1, $1, $2, '["g"]', now(), now())`, id, email); err != nil {
			t.Fatal(err)
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO identities (connection, issuer, subject, user_id, created_at)
			VALUES ('c', 'i', $1, $1, now())`, id); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = open(t, cs)
	if got := versions(t, s); !equalInts(got, allVersions()) {
		t.Errorf("schema_migrations = %v, want %v", got, allVersions())
	}
	for id, email := range emails {
		var norm string
		if err := s.pool.QueryRow(ctx, `SELECT email_norm FROM users WHERE id = $1`, id).Scan(&norm); err != nil {
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

// TestTOTPTwoInstances: two Stores with pools of their own (as two Caddy
// instances would have) racing to accept one code or one recovery code
// accept it exactly once.
func TestTOTPTwoInstances(t *testing.T) {
	_, cs := newSchema(t)
	a, b := open(t, cs), open(t, cs)
	ctx := t.Context()
	u := createAlice(t, a)
	if err := a.SetTOTP(ctx, u.ID, provisioner.TOTP{SealedSecret: []byte("x"), RecoveryHashes: []string{"h1", "h2"}}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for name, use := range map[string]func(s *Store) error{
		"step":          func(s *Store) error { return s.UseTOTPStep(ctx, u.ID, 1000) },
		"recovery code": func(s *Store) error { return s.UseRecoveryCode(ctx, u.ID, "h1") },
	} {
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				<-start
				errs[i] = use(s)
			})
		}
		close(start)
		wg.Wait()
		accepted := 0
		for i, err := range errs {
			switch {
			case err == nil:
				accepted++
			case !errors.Is(err, provisioner.ErrCodeUsed):
				t.Errorf("%s %d: %v", name, i, err)
			}
		}
		if accepted != 1 {
			t.Errorf("%s accepted %d times by two instances, want once", name, accepted)
		}
	}

	// A burst of attempts split across both instances: the policy,
	// run under the row lock, admits 3 in all.
	if err := a.UseTOTPStep(ctx, u.ID, 2000); err != nil { // resets the count
		t.Fatal(err)
	}
	now := time.Now()
	waits := make([]time.Duration, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			<-start
			_, waits[i], errs[i] = s.AdmitTOTPAttempt(ctx, u.ID, now, mfa.Locked)
		})
	}
	close(start)
	wg.Wait()
	admitted := 0
	for i, err := range errs {
		switch {
		case err != nil:
			t.Errorf("attempt %d: %v", i, err)
		case waits[i] == 0:
			admitted++
		}
	}
	if admitted != 3 {
		t.Errorf("two instances admitted %d of %d attempts at once, want 3", admitted, n)
	}
}

// TestMigrationNameNorm: users written before name_norm existed get it
// exactly as NormalizeName computes it (lower() follows the database's
// locale), so the directory search finds them by any case of their name.
func TestMigrationNameNorm(t *testing.T) {
	_, cs := newSchema(t)
	// Version 6 added name_norm.
	const before = 5
	latest := SchemaVersion
	SchemaVersion = before
	s, err := Open(t.Context(), cs)
	SchemaVersion = latest
	if err != nil {
		t.Fatalf("Open at version %d: %v", before, err)
	}
	ctx := t.Context()
	names := map[string]string{"u1": "Élodie Durand", "u2": "ALICE", "u3": ""}
	for id, name := range names {
		if _, err := s.pool.Exec(ctx, `INSERT INTO users (id, username, username_norm, name, created_at, updated_at)
			VALUES ($1, $1, $1, $2, now(), now())`, id, name); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s, err = Open(ctx, cs)
	if err != nil {
		t.Fatalf("Open after version %d: %v", before, err)
	}
	defer s.Close()
	for id, name := range names {
		var norm string
		if err := s.pool.QueryRow(ctx, `SELECT name_norm FROM users WHERE id = $1`, id).Scan(&norm); err != nil {
			t.Fatal(err)
		}
		if want := provisioner.NormalizeName(name); norm != want {
			t.Errorf("name_norm of %q = %q, want %q", name, norm, want)
		}
	}
	if found, err := s.SearchUsers(ctx, provisioner.UserQuery{Search: "ÉLODIE"}); err != nil || len(found) != 1 || found[0].ID != "u1" {
		t.Errorf("search ÉLODIE after the migration = %v, %v; want u1", found, err)
	}
}

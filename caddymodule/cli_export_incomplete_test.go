package caddymodule_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	_ "github.com/jitauth/caddy-jitauth/jitusers"
	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// flakySearchStore is the SQLite store whose SearchUsers fails from the
// call flakySearchFailFrom on (0: never), as a database lost part-way
// through an export would.
type flakySearchStore struct {
	Path string `json:"path,omitempty"`
	*sqlitestore.Store
}

var (
	flakySearchCalls    atomic.Int64
	flakySearchFailFrom atomic.Int64
)

func init() { caddy.RegisterModule(flakySearchStore{}) }

func (flakySearchStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.stores.flaky_search", New: func() caddy.Module { return new(flakySearchStore) }}
}

func (f *flakySearchStore) Provision(caddy.Context) (err error) {
	f.Store, err = sqlitestore.Open(f.Path)
	return err
}

func (f *flakySearchStore) Cleanup() error { return f.Store.Close() }

func (f *flakySearchStore) SearchUsers(ctx context.Context, q provisioner.UserQuery) ([]provisioner.User, error) {
	n := flakySearchCalls.Add(1)
	if from := flakySearchFailFrom.Load(); from > 0 && n >= from {
		return nil, errors.New("connection to the database lost (test)")
	}
	return f.Store.SearchUsers(ctx, q)
}

// runJitUsers runs `caddy jit-users <args> --address addr` in process, as
// the Caddy binary would; a non-nil error is exit status 1.
func runJitUsers(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	c, ok := caddycmd.Commands()["jit-users"]
	if !ok {
		t.Fatal("jit-users is not registered")
	}
	root := &cobra.Command{Use: c.Name}
	c.CobraFunc(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--address", addr))
	err := root.Execute()
	return out.String(), err
}

// `caddy jit-users export` whose store fails after the first
// page prints the admin API's "export incomplete" last line and exited 0,
// so `caddy jit-users export > users.csv && upload users.csv` (a backup
// or an HR reconciliation job) takes a truncated directory for a whole
// one. The README's promise ("An error … prints the admin API's message
// and exits 1") holds for every other failure.
func TestJitUsersExportIncompleteFails(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, jsonReplace: []string{`"backend":"sqlite"`, `"backend":"flaky_search"`}})
	st := openStore(t, s.dir)
	// One more user than the export reads per store query (500).
	for i := 0; i < 501; i++ {
		name := fmt.Sprintf("user%03d", i)
		if _, err := st.CreateUser(context.Background(), &provisioner.User{Username: name, Email: name + "@example.com"},
			provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp", Subject: name}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	flakySearchCalls.Store(0)
	flakySearchFailFrom.Store(2) // the first page is read, the second fails
	t.Cleanup(func() { flakySearchFailFrom.Store(0) })
	addr := fmt.Sprintf("localhost:%d", admin)
	for _, format := range []string{"json", "csv"} {
		flakySearchCalls.Store(0)
		out, err := runJitUsers(t, addr, "export", "--format", format)
		if !strings.Contains(out, "export incomplete") {
			t.Fatalf("export --format %s: the store failure did not reach the output:\n%.300s", format, out)
		}
		if err == nil {
			t.Errorf("export --format %s: the export is incomplete (%d lines, the last says %q), yet jit-users exits 0", format, strings.Count(out, "\n"), lastLine(out))
		}
	}
	// A whole export still exits 0.
	flakySearchFailFrom.Store(0)
	if out, err := runJitUsers(t, addr, "export", "--format", "json"); err != nil || strings.Count(out, "\n") != 501 {
		t.Errorf("a whole export: %v, %d lines, want 501 and no error", err, strings.Count(out, "\n"))
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

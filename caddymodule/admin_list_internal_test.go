package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// failAfter is an admin store whose SearchUsers fails from its n-th call.
type failAfter struct {
	provisioner.AdminStore
	n, calls int
}

func (f *failAfter) SearchUsers(ctx context.Context, q provisioner.UserQuery) ([]provisioner.User, error) {
	f.calls++
	if f.calls >= f.n {
		return nil, errors.New("connection reset")
	}
	return f.AdminStore.SearchUsers(ctx, q)
}

// The export reads the store a page at a time and writes every user once,
// in order, across pages; a store failure after the first page ends it
// with a line that says the export is incomplete, in either format.
func TestExportPagesAndSaysWhenCut(t *testing.T) {
	st, err := sqlitestore.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range 7 {
		name := fmt.Sprintf("u%d", i)
		if _, err := st.CreateUser(context.Background(), &provisioner.User{Username: name},
			provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "c", Issuer: "i", Subject: name}, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	old := exportPage
	exportPage = 3
	defer func() { exportPage = old }()

	export := func(store provisioner.AdminStore, format string) (string, error) {
		w := httptest.NewRecorder()
		err := exportUsers(w, httptest.NewRequest(http.MethodGet, "/jit_auth/users?format="+format, nil), store, provisioner.UserQuery{}, format)
		return w.Body.String(), err
	}
	body, err := export(st, "jsonl")
	if err != nil || strings.Count(body, "\n") != 7 || !strings.Contains(body, `"username":"u6"`) || strings.Index(body, `"u2"`) > strings.Index(body, `"u3"`) {
		t.Errorf("export over 3 pages: %v\n%s", err, body)
	}
	body, _ = export(&failAfter{AdminStore: st, n: 2}, "jsonl")
	if lines := strings.Split(strings.TrimSpace(body), "\n"); len(lines) != 4 || !strings.Contains(lines[3], `"error":"export incomplete`) {
		t.Errorf("export cut after a page: %q", lines)
	}
	body, _ = export(&failAfter{AdminStore: st, n: 2}, "csv")
	if lines := strings.Split(strings.TrimSpace(body), "\n"); len(lines) != 5 || !strings.HasPrefix(lines[4], "#error,export incomplete") {
		t.Errorf("CSV export cut after a page: %q", lines)
	}
	if _, err := export(&failAfter{AdminStore: st, n: 1}, "csv"); err == nil {
		t.Error("an export whose first page fails answers no error")
	}
}

// FuzzUserQuery: any query string is parsed or refused with a 400, never
// a panic, and an accepted one keeps the page within its bounds.
func FuzzUserQuery(f *testing.F) {
	for _, s := range []string{"q=al&status=disabled&limit=5", "cursor=YWxpY2U", "seen_after=30d&seen_before=2026-01-02T15:04:05Z", "format=csv&role=x", "limit=-1", "cursor=%%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, _, err := parseUserQuery(v, time.Now())
		if err != nil {
			var apiErr caddy.APIError
			if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusBadRequest {
				t.Fatalf("%q: %v, want a 400", raw, err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > provisioner.MaxSearchLimit {
			t.Fatalf("%q: limit %d", raw, q.Limit)
		}
	})
}

func TestInertCell(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"Alice":           "Alice",
		"=1+1":            "'=1+1",
		"+1":              "'+1",
		"-1":              "'-1",
		"@SUM(A1)":        "'@SUM(A1)",
		"\tx":             "'\tx",
		"\rx":             "'\rx",
		"a=b":             "a=b",
		"'quoted":         "'quoted",
		"\uff1dfullwidth": "\uff1dfullwidth",
	} {
		if got := inertCell(in); got != want {
			t.Errorf("inertCell(%q) = %q, want %q", in, got, want)
		}
	}
}

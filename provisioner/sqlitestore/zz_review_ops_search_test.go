package sqlitestore

import (
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The README promises the directory search `q` (`caddy jit-users list
// --search`) matches "part of the username, email or name, any case".
// Names come from providers and are often not ASCII: an operator looking
// for "Élodie Durand" types "élodie" (or "Élodie", or "ÉLODIE"). The
// PostgreSQL store finds her (its lower() folds Unicode); the default
// SQLite store compares lower(name), which folds ASCII only, against a
// pattern folded with strings.ToLower, so a name whose upper-case letter
// is not ASCII is never found, whatever the operator types.
func TestReviewOpsSearchFindsNonASCIINamesInAnyCase(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	now := time.Now().UTC()
	for _, u := range []struct{ username, name, email, sub string }{
		{"edurand", "Élodie Durand", "edurand@example.com", "s1"},
		{"oeide", "Øyvind Eide", "oeide@example.com", "s2"},
		{"uyilmaz", "Ümit Yılmaz", "uyilmaz@example.com", "s3"},
	} {
		_, err := s.CreateUser(ctx, &provisioner.User{Username: u.username, Name: u.name, Email: u.email, LastLoginAt: now},
			provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp.example", Subject: u.sub}, CreatedAt: now, LastLoginAt: now})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ search, want string }{
		{"élodie", "edurand"},
		{"Élodie", "edurand"},
		{"ÉLODIE DURAND", "edurand"},
		{"øyvind", "oeide"},
		{"Ümit", "uyilmaz"},
	} {
		got, err := s.SearchUsers(ctx, provisioner.UserQuery{Search: c.search, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Username != c.want {
			names := []string{}
			for _, u := range got {
				names = append(names, u.Username)
			}
			t.Errorf("search %q found %v, want [%s] (the name's case differs only in a non-ASCII letter)", c.search, names, c.want)
		}
	}
}

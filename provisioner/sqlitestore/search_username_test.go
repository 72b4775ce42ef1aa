package sqlitestore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// The search text is normalised for each column as the column is kept:
// a username typed decomposed (e + U+0301) is found, as a name is.
// (A final sigma typed in capitals is found in names only: usernames and
// emails are kept lower-cased, not case-folded.)
func TestSearchNormalisesTheTextForUsernames(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		user        provisioner.User
		search, why string
	}{
		{provisioner.User{Username: "élodie"}, "E\u0301lodie", "a username typed decomposed (NFD)"},
		{provisioner.User{Username: "zoë"}, "ZOE\u0308", "a username typed decomposed, in capitals"},
	}
	for i, c := range cases {
		u := c.user
		id := provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp", Subject: "s" + u.Username},
			RawClaims: []byte(`{}`), CreatedAt: at, LastLoginAt: at}
		if _, err := s.CreateUser(ctx, &u, id); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		// The same text as a name is found (the commit's fix).
		n := provisioner.User{Username: "name" + string(rune('a'+i)), Name: c.user.Username + c.user.Email}
		nid := id
		nid.Subject = "n" + n.Username
		if _, err := s.CreateUser(ctx, &n, nid); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
	}
	for _, c := range cases {
		found, err := s.SearchUsers(ctx, provisioner.UserQuery{Search: c.search, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range found {
			names = append(names, u.Username)
		}
		want := c.user.Username
		ok := false
		for _, n := range names {
			ok = ok || n == want
		}
		if !ok {
			t.Errorf("search %q found %v, not %s (%s); the same text in a name is found", c.search, names, want, c.why)
		}
	}
}

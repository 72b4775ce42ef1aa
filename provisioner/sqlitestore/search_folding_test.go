package sqlitestore

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// searchFoldingCases are names as providers send them and what an
// operator types to find them: the directory search (q, --search)
// matches part of the name in any case, so it case-folds (a Greek name's
// final sigma and the same name typed in capitals) and composes (a name
// a provider sends decomposed, e + U+0301, is found by the é an operator
// types).
var searchFoldingCases = []struct {
	username, name, search, why string
}{
	{"npapa", "Νίκος Παπαδόπουλος", "ΝΊΚΟΣ ΠΑΠΑΔΌΠΟΥΛΟΣ", "the name itself in capitals (strings.ToUpper of it)"},
	{"ndecomp", "E\u0301lodie Martin", "Élodie", "the name sent decomposed (NFD), typed composed"},
}

func searchFoldingSearch(t *testing.T, s provisioner.AdminStore, us provisioner.UserStore) {
	ctx := t.Context()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, c := range searchFoldingCases {
		u := &provisioner.User{Username: c.username, Name: c.name}
		id := provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp", Subject: "s" + c.username},
			RawClaims: []byte(`{}`), CreatedAt: at, LastLoginAt: at}
		if _, err := us.CreateUser(ctx, u, id); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
	}
	for _, c := range searchFoldingCases {
		found, err := s.SearchUsers(ctx, provisioner.UserQuery{Search: c.search, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, u := range found {
			names = append(names, u.Username)
		}
		if len(found) != 1 || found[0].Username != c.username {
			t.Errorf("search %q for the name %q found %v, want [%s]: %s", c.search, c.name, names, c.username, c.why)
		}
	}
}

func TestSearchFoldsAndComposesNames(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	searchFoldingSearch(t, s, s)
}

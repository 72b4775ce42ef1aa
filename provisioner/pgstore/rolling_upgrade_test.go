package pgstore

import (
	"testing"
	"time"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// Several instances share one PostgreSQL database, so while they are
// upgraded one by one, instances of the previous release keep writing
// users after an upgraded one migrated the schema to version 6: their
// INSERT leaves name_norm ” and their UPDATE of name leaves it stale.
// The directory search still finds those users by their name.
func TestSearchFindsUsersAnOlderBuildWroteAfterMigration6(t *testing.T) {
	_, cs := newSchema(t)
	ctx := t.Context()
	s, err := Open(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	// 9038020's createUser, verbatim column list.
	if _, err := s.pool.Exec(ctx, `INSERT INTO users (id, username, username_norm,
				email, email_norm, email_verified, name, given_name, family_name, picture,
				groups, attributes, role_grants, local_attributes, consents,
				status, created_at, updated_at, last_login_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		"u-old", "carol", "carol", "carol@example.com", "carol@example.com", true, "Carol Danvers", "", "", "",
		nil, nil, nil, nil, nil, "active", now, now, now); err != nil {
		t.Fatal(err)
	}
	// A user the new build created, renamed by 9038020's updateUser.
	u, err := s.CreateUser(ctx, &provisioner.User{Username: "dave", Name: "Dave Old"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp", Subject: "dave"}, RawClaims: []byte(`{}`), CreatedAt: now, LastLoginAt: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE users SET name = $1 WHERE id = $2`, "Dave Newname", u.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ search, want string }{{"carol danvers", "carol"}, {"newname", "dave"}} {
		found, err := s.SearchUsers(ctx, provisioner.UserQuery{Search: c.search, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != 1 || found[0].Username != c.want {
			t.Errorf("search %q after an older instance wrote the name found %d users, want %s (name_norm is not kept by older builds)", c.search, len(found), c.want)
		}
	}
}

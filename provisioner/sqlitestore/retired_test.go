package sqlitestore

import (
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// A deletion is also a request to remove a person's data: what the
// store keeps to retire the username is hashes, with no name, subject,
// issuer or connection in the clear.
func TestRetiredUsernameKeepsOnlyHashes(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	u, err := s.CreateUser(ctx, &provisioner.User{Username: "Alice"},
		provisioner.Identity{IdentityKey: provisioner.IdentityKey{Connection: "corp", Issuer: "https://idp.example.com", Subject: "alice-subject"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT name_hash || ' ' || holder_hash FROM retired_usernames`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var row string
		if err := rows.Scan(&row); err != nil {
			t.Fatal(err)
		}
		n++
		for _, clear := range []string{"alice", "corp", "idp.example.com", u.ID} {
			if strings.Contains(strings.ToLower(row), clear) {
				t.Errorf("retired_usernames row %q holds %q in the clear", row, clear)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Error("nothing was kept to retire the username")
	}
}

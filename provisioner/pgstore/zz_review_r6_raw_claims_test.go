package pgstore

import (
	"path/filepath"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// Review r6, raw claims PostgreSQL's jsonb refuses although Go calls them
// valid JSON (severity low: the shipped connectors re-marshal their
// claims through Go, which never writes these; a third-party connector
// that keeps what its provider sent does, and the README's Connector
// interface says raw claims are "a JSON object; anything else is stored
// as {"raw": "<text>"}").
//
// What happens: a connector returns raw claims that are one valid JSON
// object by Go's rules, but hold an unpaired UTF-16 surrogate escape
// ("\ud800", which JavaScript's JSON.stringify writes for a lone
// surrogate in a display name) or a number beyond PostgreSQL's numeric
// range (1e200000). storableClaims passes them through unchanged (no NUL,
// valid UTF-8, json.Valid), SQLite keeps them, and PostgreSQL's jsonb
// refuses them ("Unicode low surrogate must follow a high surrogate",
// "value overflows numeric format"): the login fails on PostgreSQL on
// every attempt, reported as a store error (503, "store outage"), while
// the same connector signs the user in on SQLite. That is the very split
// commit 32e202b set out to close for non-object raw claims.
//
// Expected: the login provisions the user on PostgreSQL as on SQLite.
//
// Fix: provisioner/storable.go storableClaims: also re-encode (through
// the decode/withoutNUL/Marshal path) raw that contains a "\u" escape
// of a surrogate (d800-dfff) or a number Go cannot hold as float64
// (decode with UseNumber and check each json.Number with ParseFloat),
// turning the lone surrogate into U+FFFD and the number into its string
// form; or fall back to {"raw": text} for them.
func TestReviewR6RawClaimsPostgresRefuses(t *testing.T) {
	lite, err := sqlitestore.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	pg := &provisioner.Provisioner{Store: openFresh(t)}
	sq := &provisioner.Provisioner{Store: lite}
	for i, raw := range []string{
		`{"sub":"s0","name":"Ann \ud800"}`,
		`{"sub":"s1","score":1e200000}`,
	} {
		sub := []string{"s0", "s1"}[i]
		req := provisioner.Request{Connection: "c", Policy: &provisioner.Policy{Enabled: true},
			Claims: provisioner.Claims{Issuer: "https://idp.example", Subject: sub, Raw: []byte(raw)}}
		if _, err := sq.Provision(t.Context(), req); err != nil {
			t.Fatalf("raw claims %s: SQLite refused them too (%v); this test assumes it takes them", raw, err)
		}
		if _, err := pg.Provision(t.Context(), req); err != nil {
			t.Errorf("raw claims %s: provisioning failed on PostgreSQL, where SQLite takes them: %v", raw, err)
		}
	}
}

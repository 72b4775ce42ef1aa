package pgstore

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// Review r7: raw claims holding a number too SMALL for PostgreSQL's
// numeric (more than 16383 digits after the decimal point: 1e-20000, or
// the same written out) still fail on PostgreSQL and not on SQLite
// (severity low, as the finding dd9c8ba fixed: the shipped connectors
// re-marshal their claims through Go, which never writes these; a
// third-party connector that keeps what its provider sent does).
//
// What happens: storableValue keeps a json.Number as it is when
// strconv.ParseFloat reads it without error, and ParseFloat reads
// 1e-20000 as 0 without error (underflow is not ErrRange), so the text
// goes to jsonb unchanged, and PostgreSQL refuses it ("value overflows
// numeric format"): the login fails on every attempt, reported as a store
// outage, while SQLite signs the user in.
//
// Expected: provisioned on PostgreSQL as on SQLite.
//
// Fix: provisioner/storable.go storableValue: keep as text also a number
// whose decimal exponent (or digits after the point) is beyond numeric's
// scale, e.g. any number ParseFloat reads as 0 (or ±Inf) whose text is
// not a zero, or one whose normalised exponent is below -16383.
func TestReviewR7RawClaimsTinyNumberOnPostgres(t *testing.T) {
	lite, err := sqlitestore.Open(filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	pg := &provisioner.Provisioner{Store: openFresh(t)}
	sq := &provisioner.Provisioner{Store: lite}
	for i, raw := range []string{
		`{"sub":"t0","tiny":1e-20000}`,
		`{"sub":"t1","tiny":0.` + strings.Repeat("0", 20000) + `1}`,
	} {
		sub := []string{"t0", "t1"}[i]
		req := provisioner.Request{Connection: "c", Policy: &provisioner.Policy{Enabled: true},
			Claims: provisioner.Claims{Issuer: "https://idp.example", Subject: sub, Raw: []byte(raw)}}
		if _, err := sq.Provision(t.Context(), req); err != nil {
			t.Fatalf("raw claims %.60s: SQLite refused them too (%v); this test assumes it takes them", raw, err)
		}
		if _, err := pg.Provision(t.Context(), req); err != nil {
			t.Errorf("raw claims %.60s…: provisioning failed on PostgreSQL, where SQLite takes them: %.300v", raw, err)
		}
	}
}

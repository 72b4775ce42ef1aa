package pgstore

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// A number a float64 reads as 0 by underflow (1e-20000, 0.000…1 past
// numeric's scale) provisions on PostgreSQL as on SQLite: it is kept as
// its text, since jsonb's numeric refuses it.
func TestRawClaimsTinyNumberIsStoredOnPostgresToo(t *testing.T) {
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

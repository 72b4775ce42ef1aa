package pgstore

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// Raw claims that Go reads as a JSON object and PostgreSQL's jsonb would
// refuse (a lone surrogate escape, as JavaScript's JSON.stringify writes;
// a number beyond float64, or one it reads as 0 by underflow, past
// numeric's scale) provision on PostgreSQL as on SQLite, not as a store
// outage on every login.
func TestRawClaimsGoReadsAreStoredOnPostgresToo(t *testing.T) {
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
		`{"sub":"s2","tiny":1e-20000}`,
		`{"sub":"s3","tiny":0.` + strings.Repeat("0", 20000) + `1}`,
	} {
		sub := fmt.Sprintf("s%d", i)
		req := provisioner.Request{Connection: "c", Policy: &provisioner.Policy{Enabled: true},
			Claims: provisioner.Claims{Issuer: "https://idp.example", Subject: sub, Raw: []byte(raw)}}
		if _, err := sq.Provision(t.Context(), req); err != nil {
			t.Fatalf("raw claims %.60s: SQLite refused them too (%v); this test assumes it takes them", raw, err)
		}
		if _, err := pg.Provision(t.Context(), req); err != nil {
			t.Errorf("raw claims %.60s: provisioning failed on PostgreSQL, where SQLite takes them: %.300v", raw, err)
		}
	}
}

package oidc

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// An nbf that go-oidc reads but a float64 check would skip or wrap (a
// numeric string three minutes ahead; 1e20 and a 20-digit integer, past
// any int64) does not let a bearer token in before its time.
func TestBearerNotBeforeInOtherShapesIsRefused(t *testing.T) {
	ti := newTokenIssuer(t)
	o := connectorFor(ti)
	ahead := strconv.FormatInt(time.Now().Add(3*time.Minute).Unix(), 10)
	for _, tt := range []struct {
		name string
		nbf  any
	}{
		{"a string three minutes ahead", ahead},
		{"1e20 (a float beyond int64)", 1e20},
		{"a 20-digit integer", json.Number("99999999999999999999")},
	} {
		tok := ti.sign(t, seedClaims(ti, func(c map[string]any) {
			delete(c, "events")
			c["aud"] = "api://x"
			c["nbf"] = tt.nbf
		}))
		if c, err := o.VerifyBearer(context.Background(), tok, []string{"api://x"}, nil); err == nil {
			t.Errorf("nbf %s: accepted as subject %q; want refused (not valid yet)", tt.name, c.Subject)
		}
	}
}

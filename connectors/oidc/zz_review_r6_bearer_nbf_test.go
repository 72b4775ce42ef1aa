package oidc

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// Review r6, nbf shapes the fixed check does not read (severity low: only
// the issuer can sign such a token, but the README promises "any nbf in
// the past (a minute ahead at most)" for every bearer token, and a token
// minted for later is then usable at once).
//
// What is sent: a bearer token, validly signed by the connection's
// issuer, whose nbf is (a) a JSON string holding a Unix time three minutes
// ahead (some issuers write NumericDate as a string; go-oidc reads it
// as a number and allows five minutes), or (b) a number beyond int64
// (1e20, or a 20-digit integer), i.e. not valid for billions of years.
//
// Today: VerifyBearer's own check only reads nbf when it decoded as a
// float64, so (a) passes go-oidc's five-minute leeway unchecked, and in
// (b) int64(nbf) overflows (on amd64 it becomes math.MinInt64, a date
// in the distant past), so both the go-oidc check and ours let it in.
//
// Expected: each is refused, as a token whose nbf is more than a minute
// ahead (or that cannot be read as a time) must be.
//
// Fix: connectors/oidc/oidc.go VerifyBearer: read nbf with
// json.Number (t.Claims into a struct with a json.Number, or decode the
// string form too), refuse a value that is not a finite number in int64
// range, and compare as a float (nbf > now+60s) instead of converting
// with int64() first.
func TestReviewR6BearerNotBeforeOddShapesAreRefused(t *testing.T) {
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

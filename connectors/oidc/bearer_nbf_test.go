package oidc

import (
	"context"
	"testing"
	"time"
)

// A bearer token is refused before its nbf, up to a minute of clock
// skew (go-oidc alone allows five): the README promises "any nbf in the
// past".
func TestBearerNotBeforeInTheFutureIsRefused(t *testing.T) {
	ti := newTokenIssuer(t)
	o := connectorFor(ti)
	for _, tt := range []struct {
		ahead time.Duration
		ok    bool
	}{{4 * time.Minute, false}, {2 * time.Minute, false}, {30 * time.Second, true}} {
		tok := ti.sign(t, seedClaims(ti, func(c map[string]any) {
			delete(c, "events")
			c["aud"] = "api://x"
			c["nbf"] = time.Now().Add(tt.ahead).Unix()
		}))
		if _, err := o.VerifyBearer(context.Background(), tok, []string{"api://x"}, nil); (err == nil) != tt.ok {
			t.Errorf("nbf %s ahead: err %v, want accepted %v", tt.ahead, err, tt.ok)
		}
	}
}

package caddymodule_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A logout token is accepted while its iat is within five minutes of
// now, so one whose iat is five minutes ahead (the edge) is accepted
// for ten minutes from its first use. Its jti is refused as long as its
// record lives, in the store every instance shares and here; a record
// that ends with the token's acceptance, or before it (an instance
// whose clock is a little behind, or one that prunes the record by a
// clock a little ahead), would let the token be replayed. The record
// outlives the last instant the token can be accepted by a minute.
func TestUsedLogoutTokenIsRememberedPastItsAcceptance(t *testing.T) {
	s := startSiteOpts(t, siteOptions{corpExtra: "backchannel_logout"})
	cfg := s.idp.Config()
	c := logoutClaims(cfg.Issuer, cfg.ClientID)
	iat := time.Now().Unix() + 5*60 // the latest iat accepted now
	c["sub"], c["iat"] = "alice-sub", iat
	token := signWith(t, s.idp.Keypair, c)
	if code, body := postLogoutToken(t, s.base, "corp", token); code != http.StatusOK {
		t.Fatalf("logout token at the edge of its window: %d %s", code, body)
	}
	if code, _ := postLogoutToken(t, s.base, "corp", token); code != http.StatusBadRequest {
		t.Fatalf("replayed at once: %d, want 400", code)
	}
	lastAccepted := time.Unix(iat, 0).Add(5 * time.Minute)

	list, err := openStore(t, s.dir).RevokedSessions(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var found int
	for _, r := range list {
		if !strings.HasPrefix(r.ID, "spent:") {
			continue
		}
		found++
		if margin := r.ExpiresAt.Sub(lastAccepted); margin < time.Minute {
			t.Errorf("the used jti is recorded until %s, %s after the last instant its token is accepted (%s): want at least a minute, or the token can be replayed once the record is gone",
				r.ExpiresAt.Format(time.RFC3339Nano), margin, lastAccepted.Format(time.RFC3339))
		}
	}
	if found != 1 {
		t.Fatalf("%d records of used IDs in the store, want the jti's one: %+v", found, list)
	}
}

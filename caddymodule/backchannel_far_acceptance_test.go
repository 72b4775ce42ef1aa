package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/connector"
)

// farLogout is slowLogout whose tokens its connector says it accepts
// until the year 9999: a third party's connector that sets no real
// bound.
type farLogout struct{ slowLogout }

func init() { caddy.RegisterModule(farLogout{}) }

func (farLogout) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.connectors.farlogout", New: func() caddy.Module { return new(farLogout) }}
}

func (f *farLogout) VerifyLogoutToken(ctx context.Context, token string) (connector.LogoutToken, error) {
	lt, err := f.slowLogout.VerifyLogoutToken(ctx, token)
	lt.AcceptableUntil = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	return lt, err
}

// A used logout token's jti was remembered until a minute after
// whatever its connector said it accepts the token until: a connector
// that says the year 9999 kept each jti in the store, and in every
// instance's memory, for ever (and such a time may not fit a store's
// timestamp). The jti is remembered at most a day and a minute.
func TestUsedLogoutTokenOfAConnectorWithoutABoundIsRememberedADay(t *testing.T) {
	dir := t.TempDir()
	up := newUpstream(t)
	base := fmt.Sprintf("http://localhost:%d", freePort(t))
	conn := "\t\tconnection far {\n\t\t\tfarlogout\n\t\t\tbackchannel_logout\n\t\t}"
	runCaddyfile(t, fmt.Sprintf("{%s\n}\n%s {\n\tjit_auth\n\treverse_proxy %s\n}\n", globalOptions(dir, conn), base, up.hostPort()))

	token := "op-session-1 jti-1"
	if code, body := postLogoutToken(t, base, "far", token); code != http.StatusOK {
		t.Fatalf("logout token: %d %s", code, body)
	}
	latest := time.Now().Add(24*time.Hour + time.Minute)
	if code, _ := postLogoutToken(t, base, "far", token); code != http.StatusBadRequest {
		t.Fatalf("replayed at once: %d, want 400", code)
	}
	list, err := openStore(t, dir).RevokedSessions(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var found int
	for _, r := range list {
		if !strings.HasPrefix(r.ID, "spent:") {
			continue
		}
		found++
		if r.ExpiresAt.After(latest) {
			t.Errorf("the used jti is recorded until %s, past a day and a minute from its use (%s)",
				r.ExpiresAt.Format(time.RFC3339), latest.Format(time.RFC3339))
		}
	}
	if found != 1 {
		t.Fatalf("%d records of used IDs in the store, want the jti's one: %+v", found, list)
	}
}

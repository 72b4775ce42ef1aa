package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// slowLogout is a third party's connector whose provider's logout tokens
// stay acceptable for an hour (a wider window than the oidc
// connector's five minutes either side of iat). Its logout tokens are
// "<sid> <jti>", trusted as is: only the window matters here.
type slowLogout struct{}

func init() { caddy.RegisterModule(slowLogout{}) }

func (slowLogout) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.connectors.slowlogout", New: func() caddy.Module { return new(slowLogout) }}
}

func (*slowLogout) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func (*slowLogout) Begin(*http.Request, connector.Login) (string, []byte, error) {
	return "", nil, fmt.Errorf("%w: slowlogout signs no one in", connector.ErrRejected)
}

func (*slowLogout) Finish(*http.Request, connector.Login, []byte) (provisioner.Claims, error) {
	return provisioner.Claims{}, fmt.Errorf("%w: slowlogout signs no one in", connector.ErrRejected)
}

// slowLogoutWindow is how long slowLogout accepts a logout token.
const slowLogoutWindow = time.Hour

func (*slowLogout) VerifyLogoutToken(_ context.Context, token string) (connector.LogoutToken, error) {
	sid, jti, ok := strings.Cut(token, " ")
	if !ok {
		return connector.LogoutToken{}, fmt.Errorf("%w: not a slowlogout token", connector.ErrRejected)
	}
	return connector.LogoutToken{Issuer: "https://slow.example", SessionID: sid, JTI: jti, AcceptableUntil: time.Now().Add(slowLogoutWindow)}, nil
}

// A used logout token's jti was remembered for the oidc connector's
// window (ten minutes and a margin), whatever the connector: a third
// party's connector that accepts its tokens for an hour would take the
// same token again once the record was gone, ending sessions issued
// since. The connector now says until when it accepts the token
// (LogoutToken.AcceptableUntil), and the jti is remembered until a
// minute after that.
func TestUsedLogoutTokenIsRememberedAsLongAsItsConnectorAcceptsIt(t *testing.T) {
	dir := t.TempDir()
	up := newUpstream(t)
	base := fmt.Sprintf("http://localhost:%d", freePort(t))
	conn := "\t\tconnection slow {\n\t\t\tslowlogout\n\t\t\tbackchannel_logout\n\t\t}"
	runCaddyfile(t, fmt.Sprintf("{%s\n}\n%s {\n\tjit_auth\n\treverse_proxy %s\n}\n", globalOptions(dir, conn), base, up.hostPort()))

	token := "op-session-1 jti-1"
	// At most the connector's AcceptableUntil, read before it is.
	lastAccepted := time.Now().Add(slowLogoutWindow)
	if code, body := postLogoutToken(t, base, "slow", token); code != http.StatusOK {
		t.Fatalf("logout token: %d %s", code, body)
	}
	if code, _ := postLogoutToken(t, base, "slow", token); code != http.StatusBadRequest {
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
		// Less two seconds: the store may keep whole seconds.
		if margin := r.ExpiresAt.Sub(lastAccepted); margin < time.Minute-2*time.Second {
			t.Errorf("the used jti is recorded until %s, %s after the last instant its connector accepts the token (%s): want a minute, or the token can be replayed once the record is gone",
				r.ExpiresAt.Format(time.RFC3339), margin.Round(time.Second), lastAccepted.Format(time.RFC3339))
		}
	}
	if found != 1 {
		t.Fatalf("%d records of used IDs in the store, want the jti's one: %+v", found, list)
	}
}

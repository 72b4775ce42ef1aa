package caddymodule_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// emailBarrierStore is the real SQLite store whose email lookups wait at
// emailBarrier (when set) until every overlapping login has its answer:
// the timing of two first logins that look before either writes.
type emailBarrierStore struct {
	Path string `json:"path,omitempty"`
	*sqlitestore.Store
}

var emailBarrier atomic.Pointer[barrier]

func init() { caddy.RegisterModule(emailBarrierStore{}) }

func (emailBarrierStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.stores.test_email_barrier_email_barrier", New: func() caddy.Module { return new(emailBarrierStore) }}
}

func (f *emailBarrierStore) Provision(caddy.Context) (err error) {
	f.Store, err = sqlitestore.Open(f.Path)
	return err
}

func (f *emailBarrierStore) Cleanup() error { return f.Store.Close() }

func (f *emailBarrierStore) UsersByEmail(ctx context.Context, email string) ([]provisioner.User, error) {
	users, err := f.Store.UsersByEmail(ctx, email)
	if b := emailBarrier.Load(); b != nil {
		b.wait()
	}
	return users, err
}

// Two first logins of one person at the same moment through two
// connections that both link by verified email link to one user (S9):
// both find no user with the email, both try to create one named by it,
// and the loser, whose name the winner took, links to the winner's user
// on its second pass instead of ending on an "Account conflict" page.
func TestConcurrentFirstLoginsThroughTwoLinkingConnectionsLink(t *testing.T) {
	dir := t.TempDir()
	idp := startMockOIDC(t)
	up := newUpstream(t)
	up.Config.Handler = echoLocalID(up)
	cfg := idp.Config()
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	conn := func(name string) string {
		return fmt.Sprintf(`
		connection %s {
			oidc %s %s %s
			scopes openid email profile
			jit {
				link verified_email
			}
		}`, name, cfg.Issuer, cfg.ClientID, cfg.ClientSecret)
	}
	caddyfile := fmt.Sprintf(`{%s
}
http://localhost:%d {
	jit_auth {
		header X-Seen-Local-Id {http.auth.user.local_id}
	}
	reverse_proxy %s
}
`, globalOptions(dir, conn("corp")+conn("portal")), port, up.hostPort())
	// The SQLite store, whose email lookups wait at emailBarrier: both
	// logins look for the email before either writes.
	runCaddyJSON(t, adaptCaddyfile(t, caddyfile, `"backend":"sqlite"`, `"backend":"test_email_barrier_email_barrier"`))
	emailBarrier.Store(newBarrier(2))
	defer emailBarrier.Store(nil)

	idp.QueueUser(alice())
	idp.QueueUser(alice())
	codes, ids := concurrentLoginsVia(t, base, []string{"corp", "portal"})
	users := allUsers(t, openStore(t, dir))
	if len(users) != 1 {
		t.Fatalf("%d users after first logins of one person through two linking connections, want 1", len(users))
	}
	for i, c := range []string{"corp", "portal"} {
		if codes[i] != http.StatusOK || ids[i] != users[0].ID {
			t.Errorf("first login through %s at the same moment as one through the other: status %d, local ID %q; want 200 for %q (the identity links to the user the other login created, as it does a moment later)", c, codes[i], ids[i], users[0].ID)
		}
	}

	// Control: the same two first logins one after the other both
	// succeed, the second linking.
	emailBarrier.Store(nil)
	bob := alice()
	bob.sub, bob.claims["email"] = "bob-sub", "bob@example.com"
	for _, c := range []string{"corp", "portal"} {
		idp.QueueUser(bob)
		codes, _ := concurrentLoginsVia(t, base, []string{c})
		if codes[0] != http.StatusOK {
			t.Fatalf("sequential first login of bob through %s: %d", c, codes[0])
		}
	}
}

// concurrentLoginsVia runs one browser login per connection at once and
// returns each final status and the local ID the upstream echoed.
func concurrentLoginsVia(t *testing.T, base string, conns []string) ([]int, []string) {
	t.Helper()
	codes := make([]int, len(conns))
	ids := make([]string, len(conns))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, conn := range conns {
		wg.Add(1)
		go func(i int, conn string) {
			defer wg.Done()
			b := newBrowser(t)
			<-start
			next := base + "/.jitauth/start/" + conn + "?rd=%2Fwhoami"
			for hop := 0; hop < 10; hop++ {
				req, _ := http.NewRequest(http.MethodGet, next, nil)
				req.Header.Set("Accept", "text/html")
				resp, err := b.client.Do(req)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
				if resp.StatusCode < 300 || resp.StatusCode > 399 {
					ids[i] = resp.Header.Get("X-Seen-Local-Id")
					return
				}
				loc, err := resp.Location()
				if err != nil {
					return
				}
				next = loc.String()
			}
		}(i, conn)
	}
	close(start)
	wg.Wait()
	return codes, ids
}

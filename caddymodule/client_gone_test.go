package caddymodule_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/provisioner"
	"github.com/jitauth/caddy-jitauth/provisioner/sqlitestore"
)

// holdingStore is the real SQLite store whose identity lookup, while
// holdingStoreHold is set, says it was entered and then waits until the
// request's context ends (the browser went away) before asking the
// store, which then answers with the context's error, as any store does
// for a request whose client left.
type holdingStore struct {
	Path string `json:"path,omitempty"`
	*sqlitestore.Store
}

var (
	holdingStoreHold atomic.Bool
	holdingEntered   = make(chan struct{}, 1)
)

func init() { caddy.RegisterModule(holdingStore{}) }

func (holdingStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.stores.test_holding", New: func() caddy.Module { return new(holdingStore) }}
}

func (f *holdingStore) Provision(caddy.Context) (err error) {
	f.Store, err = sqlitestore.Open(f.Path)
	return err
}

func (f *holdingStore) Cleanup() error { return f.Store.Close() }

func (f *holdingStore) UserByIdentity(ctx context.Context, k provisioner.IdentityKey) (*provisioner.User, error) {
	if holdingStoreHold.Load() {
		select {
		case holdingEntered <- struct{}{}:
		default:
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
	}
	return f.Store.UserByIdentity(ctx, k)
}

// A browser that goes away while its login is being provisioned (the
// user closed the tab, the connection dropped) is not a store outage:
// the store answered nothing wrong, the request's context ended. A store
// outage is "login failed" at ERROR with the reason store_unavailable,
// which operators alert on; a client disconnect must not raise it.
func TestABrowserGoneMidLoginIsNoStoreOutage(t *testing.T) {
	admin := freePort(t)
	s := startSiteOpts(t, siteOptions{adminPort: admin, auditLog: true,
		jsonReplace: []string{`"backend":"sqlite"`, `"backend":"test_holding"`}})
	defer holdingStoreHold.Store(false)
	before := scrapeMetrics(t, admin)

	b := newBrowser(t)
	s.queue(alice())
	resp, _, _ := b.follow(s.base+"/.jitauth/start/corp?rd=/x", func(u *url.URL) bool {
		return strings.Contains(u.Path, "/.jitauth/callback/")
	})
	cb, err := resp.Location()
	if err != nil || !strings.Contains(cb.Path, "/.jitauth/callback/") {
		t.Fatalf("no callback redirect: %v %v", resp.StatusCode, err)
	}

	holdingStoreHold.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cb.String(), nil)
		req.Header.Set("Accept", "text/html")
		if resp, err := b.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-holdingEntered:
	case <-time.After(10 * time.Second):
		t.Fatal("the callback never reached the store")
	}
	cancel() // the browser goes away
	<-done

	// The request ends in the access log once the handler returned.
	deadline := time.Now().Add(10 * time.Second)
	for {
		logged, _ := os.ReadFile(s.dir + "/access.log")
		if strings.Contains(string(logged), "/.jitauth/callback/") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the callback never finished")
		}
		time.Sleep(50 * time.Millisecond)
	}
	holdingStoreHold.Store(false)

	after := scrapeMetrics(t, admin)
	unavailable := `jit_auth_denials_total{reason="store_unavailable"}`
	if got := after[unavailable] - before[unavailable]; got != 0 {
		t.Errorf("%s went up by %v for a browser that went away; the store was fine", unavailable, got)
	}
	logs, _ := os.ReadFile(s.logFile())
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, `"level":"error"`) && strings.Contains(line, `"msg":"login failed"`) {
			t.Errorf("a browser that went away is logged at ERROR as a failed login (store unavailable): %s", line)
		}
	}
}

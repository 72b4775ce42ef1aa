package caddymodule_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// concurrentLogins runs n browser logins through corp at once and
// returns, for each, the local user ID the upstream saw.
func concurrentLogins(t *testing.T, s *site, n int) []string {
	t.Helper()
	ids := make([]string, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b := newBrowser(t)
			<-start
			// Not b.follow: it fails the test from a goroutine.
			next := s.base + "/.jitauth/start/corp?rd=%2Fwhoami"
			for hop := 0; hop < 10; hop++ {
				req, _ := http.NewRequest(http.MethodGet, next, nil)
				req.Header.Set("Accept", "text/html")
				resp, err := b.client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ids[i] = resp.Header.Get("X-Seen-Local-Id")
					return
				}
				loc, err := resp.Location()
				if err != nil {
					errs <- fmt.Errorf("login %d: status %d at %s", i, resp.StatusCode, next)
					return
				}
				next = loc.String()
			}
			errs <- fmt.Errorf("login %d: too many redirects", i)
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return ids
}

// S9 under load, through the real HTTP flow: 50 concurrent first logins
// of one new identity make one user, and every login gets a session for
// it; 50 logins of 50 identities make 50 users. No 5xx, no "database is
// locked".
func TestConcurrentFirstLoginsSQLite(t *testing.T) {
	const n = 50
	s := startSiteOpts(t, siteOptions{handlerBlock: "\t\theader X-Seen-Local-Id {http.auth.user.local_id}", faultyStore: true})
	// Identity lookups wait until all n logins have made one: all n find
	// no user before any has created it, so all but one meet the store's
	// uniqueness and must recover from it.
	lookupBarrier.Store(newBarrier(n))
	defer lookupBarrier.Store(nil)
	// The upstream echoes the local ID it received.
	s.upstream.Config.Handler = echoLocalID(s.upstream)

	for i := 0; i < n; i++ {
		s.queue(alice())
	}
	ids := concurrentLogins(t, s, n)
	users := allUsers(t, openStore(t, s.dir))
	if len(users) != 1 {
		t.Fatalf("%d users after %d concurrent first logins of one identity, want 1", len(users), n)
	}
	for i, id := range ids {
		if id != users[0].ID {
			t.Errorf("login %d got a session for %q, want %q", i, id, users[0].ID)
		}
	}

	lookupBarrier.Store(newBarrier(n))
	for i := 0; i < n; i++ {
		u := alice()
		u.sub = fmt.Sprintf("user-%02d", i)
		u.claims["email"] = fmt.Sprintf("user%02d@example.com", i)
		s.queue(u)
	}
	ids = concurrentLogins(t, s, n)
	st := openStore(t, s.dir)
	if users := allUsers(t, st); len(users) != n+1 {
		t.Fatalf("%d users after %d logins of distinct identities, want %d", len(users), n, n+1)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if _, err := st.User(context.Background(), id); err != nil || seen[id] {
			t.Errorf("session for %q: %v (duplicate %v)", id, err, seen[id])
		}
		seen[id] = true
	}
}

func echoLocalID(u *upstream) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.last = r.Clone(context.Background())
		u.hits++
		u.mu.Unlock()
		w.Header().Set("X-Seen-Local-Id", r.Header.Get("X-Seen-Local-Id"))
		fmt.Fprintln(w, "ok")
	})
}

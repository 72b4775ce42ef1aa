//go:build linux

// Command endurance holds jit_auth under sustained traffic and reloads
// and exits 1 when a bound breaks (issue #14). Traffic only goes to
// loopback; every process it starts stops with it.
//
// Soak (the default): -duration of authenticated requests at -rate
// through jit_auth + reverse_proxy, with a first login every
// -login-every and a logout every -logout-every mixed in. Bounds: no 5xx,
// no failed authenticated request, every login and logout works (a
// logged-out session is refused at once), resident memory and goroutines
// flat after the warm-up (slope of a least-squares line), p99 latency of
// the last minute within 3x the first minute's after warm-up. The slopes
// need minutes of samples: goroutines swing by a dozen with client
// connections, so a soak of under a few minutes can trip the bound on
// that noise alone.
//
//	go run ./bench/endurance                          # 10 minutes, SQLite
//	go run ./bench/endurance -store postgres
//
// Reload (-reloads N): the same traffic to jit_auth and to a bare
// reverse_proxy site of the same Caddy, and `POST /load` of the Caddyfile
// every -reload-every, alternately unchanged and changed. Bounds: the
// authenticated requests fail no more often than the bare site's in the
// same run (+2 for chance), sessions live on, a login started before a
// reload completes after it, and after the last reload Caddy has no more
// open files and goroutines than before the first (+5, +20).
//
//	go run ./bench/endurance -reloads 100
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitauth/caddy-jitauth/bench/internal/harness"
)

type options struct {
	store, pgURL            string
	duration, warmup        time.Duration
	rate, workers, sessions int
	loginEvery, logoutEvery time.Duration
	reloads                 int
	reloadEvery             time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.store, "store", "sqlite", "sqlite or postgres")
	flag.StringVar(&o.pgURL, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL database (a schema of its own is made and dropped)")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "soak: how long")
	flag.DurationVar(&o.warmup, "warmup", time.Minute, "soak: left out of the slopes and the first-minute p99")
	flag.IntVar(&o.rate, "rate", 3000, "authenticated requests per second (per site in reload mode)")
	flag.IntVar(&o.workers, "workers", 32, "concurrent clients")
	flag.IntVar(&o.sessions, "sessions", 50, "live sessions the traffic uses")
	flag.DurationVar(&o.loginEvery, "login-every", time.Second, "a first login this often")
	flag.DurationVar(&o.logoutEvery, "logout-every", 5*time.Second, "a logout this often")
	flag.IntVar(&o.reloads, "reloads", 0, "reload mode: this many reloads instead of a soak")
	flag.DurationVar(&o.reloadEvery, "reload-every", 2*time.Second, "reload mode: a reload this often")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatalf("endurance: %v", err)
	}
}

// env is the running system: provider, upstream, Caddy.
type env struct {
	dir, bin, caddyfile string
	adminURL            string
	jit, bare           string
	idp                 *harness.Provider
	caddy               *exec.Cmd
}

func run(o options) error {
	ctx := context.Background()
	e := &env{}
	var err error
	if e.dir, err = os.MkdirTemp("", "jitauth-endurance-"); err != nil {
		return err
	}
	defer os.RemoveAll(e.dir)
	if e.bin, err = harness.BuildCaddy(e.dir); err != nil {
		return err
	}
	if e.idp, err = harness.StartProvider(); err != nil {
		return err
	}
	defer e.idp.Shutdown()

	storeLine := "store sqlite " + filepath.Join(e.dir, "users.db")
	if o.store == "postgres" {
		storeURL, drop, err := harness.PGSchema(ctx, o.pgURL, "endurance")
		if err != nil {
			return err
		}
		defer drop()
		storeLine = fmt.Sprintf("store postgres %q", storeURL)
	} else if o.store != "sqlite" {
		return fmt.Errorf("-store %q: use sqlite or postgres", o.store)
	}

	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "ok")
	})}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = up.Serve(upLn) }()
	defer up.Close()

	cfg := e.idp.Config()
	jitPort, barePort, adminPort := harness.FreePort(), harness.FreePort(), harness.FreePort()
	e.jit, e.bare = fmt.Sprintf("http://localhost:%d", jitPort), fmt.Sprintf("http://localhost:%d", barePort)
	e.adminURL = fmt.Sprintf("http://127.0.0.1:%d", adminPort)
	e.caddyfile = fmt.Sprintf(`{
	admin 127.0.0.1:%d
	persist_config off
	log {
		output discard
	}
	storage file_system %s
	jit_auth {
		%s
		connection corp {
			oidc %s %s %s
			jit
		}
	}
}
http://localhost:%d {
	jit_auth
	reverse_proxy %s {
		transport http {
			keepalive 5s
		}
	}
	header X-Generation "GENERATION"
}
http://localhost:%d {
	reverse_proxy %s {
		transport http {
			keepalive 5s
		}
	}
}
`, adminPort, filepath.Join(e.dir, "storage"), storeLine, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, jitPort, upLn.Addr(), barePort, upLn.Addr())
	path := filepath.Join(e.dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(strings.Replace(e.caddyfile, "GENERATION", "0", 1)), 0o600); err != nil {
		return err
	}
	if err := e.start(path); err != nil {
		return err
	}
	defer func() { _ = e.caddy.Process.Kill(); _ = e.caddy.Wait() }()

	// The sessions the traffic uses.
	var cookies []string
	for range o.sessions {
		b, err := e.login()
		if err != nil {
			return fmt.Errorf("initial login: %v", err)
		}
		cookies = append(cookies, b.session)
	}
	fmt.Printf("endurance: %s store, %d sessions, %d req/s by %d clients, Caddy pid %d\n", o.store, len(cookies), o.rate, o.workers, e.caddy.Process.Pid)
	if o.reloads > 0 {
		return e.reloadRun(o, cookies)
	}
	return e.soak(o, cookies)
}

func (e *env) start(path string) (err error) {
	e.caddy, err = harness.StartCaddy(e.bin, path, e.dir, e.jit, filepath.Join(e.dir, "caddy.log"))
	return err
}

// browser is one user's browser, and its session once signed in.
type browser struct {
	*harness.Browser
	session string
}

// browserTransport is shared by the browsers, so the leak check can close
// their idle connections (see settle).
var browserTransport = &http.Transport{MaxIdleConnsPerHost: 4}

// trafficTransports are the load generators' transports.
var (
	trafficMu         sync.Mutex
	trafficTransports []*http.Transport
)

// settle closes every idle client connection and waits for reverse_proxy's
// idle upstream connections to expire, so that what Caddy holds afterwards
// is what it keeps, not keep-alives.
func settle() {
	browserTransport.CloseIdleConnections()
	harness.NoFollow.CloseIdleConnections()
	trafficMu.Lock()
	for _, t := range trafficTransports {
		t.CloseIdleConnections()
	}
	trafficMu.Unlock()
	// reverse_proxy keeps idle upstream connections for its keepalive
	// (5 s here, 2 min by default), also those of the configurations a
	// reload replaced: wait them out.
	time.Sleep(7 * time.Second)
}

func newBrowser() *browser { return &browser{Browser: harness.NewBrowser(browserTransport)} }

// toCallback starts a login of a new user and follows it to the
// provider's redirect back, which it returns unvisited.
func (e *env) toCallback(b *browser) (string, error) {
	_, cb, err := e.idp.Begin(b.Browser, e.jit+"/.jitauth/start/corp", "user")
	return cb, err
}

// finish visits the callback and keeps the session cookie.
func (b *browser) finish(callback string) error {
	cookie, status, err := b.Finish(callback)
	if err == nil && cookie == "" {
		err = fmt.Errorf("callback: %d without a session", status)
	}
	b.session = cookie
	return err
}

func (e *env) login() (*browser, error) {
	b := newBrowser()
	cb, err := e.toCallback(b)
	if err != nil {
		return nil, err
	}
	return b, b.finish(cb)
}

// logout signs b out through the sign-out page and checks that the
// session is refused afterwards.
func (e *env) logout(b *browser) error {
	if err := harness.SignOut(e.jit, b.session); err != nil {
		return err
	}
	code, err := harness.Get(harness.NoFollow, e.jit+"/after-logout", b.session)
	if err != nil || code != http.StatusFound {
		return fmt.Errorf("the logged-out session still answers %d (%v)", code, err)
	}
	return nil
}

// traffic sends authenticated requests to target at rate until stop,
// recording each latency in window and counting failures.
type traffic struct {
	ok, failed, fiveXX atomic.Int64
	mu                 sync.Mutex
	lat                []time.Duration // since the last take
}

func (t *traffic) take() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lat
	t.lat = nil
	return l
}

func drive(ctx context.Context, target string, cookies []string, rate, workers int, t *traffic) *sync.WaitGroup {
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	trafficMu.Lock()
	trafficTransports = append(trafficTransports, tr)
	trafficMu.Unlock()
	client := &http.Client{Timeout: 10 * time.Second, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) * float64(workers) / float64(rate))
	for w := range workers {
		wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for i := w; ; i += workers {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				start := time.Now()
				cookie := ""
				if len(cookies) > 0 {
					cookie = cookies[i%len(cookies)]
				}
				code, err := harness.Get(client, target+"/page", cookie)
				d := time.Since(start)
				switch {
				case err != nil && ctx.Err() != nil:
					return
				case err != nil || code != http.StatusOK:
					t.failed.Add(1)
					if code >= 500 {
						t.fiveXX.Add(1)
					}
				default:
					t.ok.Add(1)
				}
				t.mu.Lock()
				t.lat = append(t.lat, d)
				t.mu.Unlock()
			}
		})
	}
	return &wg
}

// sample is the Caddy process's state at one time.
type sample struct {
	at         time.Time
	rssMiB     float64
	goroutines int
	fds        int
	p99        time.Duration
}

func (e *env) sample(lat []time.Duration) sample {
	s := sample{at: time.Now(), goroutines: -1}
	pid := e.caddy.Process.Pid
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(st), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				s.rssMiB = kb / 1024
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(ents)
	}
	if resp, err := http.Get(e.adminURL + "/debug/pprof/goroutine?debug=1"); err == nil {
		head := make([]byte, 64)
		n, _ := io.ReadFull(resp.Body, head)
		resp.Body.Close()
		if _, err := fmt.Sscanf(string(head[:n]), "goroutine profile: total %d", &s.goroutines); err != nil {
			s.goroutines = -1
		}
	}
	s.p99 = percentile(lat, 0.99)
	return s
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(math.Ceil(p*float64(len(d))))-1)]
}

// slope is the least-squares slope of ys over xs (per minute).
func slope(xs []time.Time, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i, x := range xs {
		m := x.Sub(xs[0]).Minutes()
		sx += m
		sy += ys[i]
		sxx += m * m
		sxy += m * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// every runs fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fn()
	}
}

func (e *env) soak(o options, cookies []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var t traffic
	wg := drive(ctx, e.jit, cookies, o.rate, o.workers, &t)

	var logins, loginFails, logouts, logoutFails atomic.Int64
	var pool []*browser
	var poolMu sync.Mutex
	var side sync.WaitGroup
	side.Go(func() {
		every(ctx, o.loginEvery, func() {
			b, err := e.login()
			if err != nil {
				if ctx.Err() == nil {
					loginFails.Add(1)
					fmt.Printf("login failed: %v\n", err)
				}
				return
			}
			logins.Add(1)
			poolMu.Lock()
			pool = append(pool, b)
			poolMu.Unlock()
		})
	})
	side.Go(func() {
		every(ctx, o.logoutEvery, func() {
			poolMu.Lock()
			var b *browser
			if len(pool) > 0 {
				b, pool = pool[0], pool[1:]
			}
			poolMu.Unlock()
			if b == nil {
				return
			}
			if err := e.logout(b); err != nil {
				if ctx.Err() == nil {
					logoutFails.Add(1)
					fmt.Printf("logout failed: %v\n", err)
				}
				return
			}
			logouts.Add(1)
		})
	})

	var samples []sample
	tick := time.NewTicker(10 * time.Second)
	start := time.Now()
	fmt.Printf("%8s %10s %10s %10s %8s %6s %10s\n", "t", "req ok", "failed", "RSS MiB", "gorout.", "fds", "p99")
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		s := e.sample(t.take())
		samples = append(samples, s)
		fmt.Printf("%8s %10d %10d %10.1f %8d %6d %10s\n", s.at.Sub(start).Round(time.Second), t.ok.Load(), t.failed.Load(), s.rssMiB, s.goroutines, s.fds, s.p99.Round(10*time.Microsecond))
	}
	tick.Stop()
	wg.Wait()
	side.Wait()

	var xs []time.Time
	var rss, gor []float64
	var firstMin, lastMin []time.Duration
	for _, s := range samples {
		if s.at.Sub(start) < o.warmup {
			continue
		}
		xs = append(xs, s.at)
		rss = append(rss, s.rssMiB)
		gor = append(gor, float64(s.goroutines))
		if s.at.Sub(start) < o.warmup+time.Minute {
			firstMin = append(firstMin, s.p99)
		}
		if start.Add(o.duration).Sub(s.at) <= time.Minute {
			lastMin = append(lastMin, s.p99)
		}
	}
	rssSlope, gorSlope := slope(xs, rss), slope(xs, gor)
	p99First, p99Last := slices.Max(append(firstMin, 0)), slices.Max(append(lastMin, 0))
	total := t.ok.Load() + t.failed.Load()
	fmt.Printf("\nsoak %s on %s: %d authenticated requests (%.0f/s), %d failed, %d 5xx; %d logins (%d failed), %d logouts (%d failed)\n",
		o.duration, o.store, total, float64(total)/o.duration.Seconds(), t.failed.Load(), t.fiveXX.Load(), logins.Load(), loginFails.Load(), logouts.Load(), logoutFails.Load())
	fmt.Printf("after the %s warm-up: RSS slope %+.2f MiB/min (%.1f to %.1f MiB), goroutines slope %+.2f/min, p99 first minute %s, last minute %s\n",
		o.warmup, rssSlope, rss[0], rss[len(rss)-1], gorSlope, p99First, p99Last)

	var broken []string
	if t.failed.Load() > 0 || t.fiveXX.Load() > 0 {
		broken = append(broken, "failed or 5xx authenticated requests")
	}
	if loginFails.Load() > 0 || logoutFails.Load() > 0 {
		broken = append(broken, "failed logins or logouts")
	}
	if rssSlope > 1.0 {
		broken = append(broken, fmt.Sprintf("resident memory grows %.2f MiB/min (bound 1)", rssSlope))
	}
	if gorSlope > 1.0 {
		broken = append(broken, fmt.Sprintf("goroutines grow %.2f/min (bound 1)", gorSlope))
	}
	if p99First > 0 && p99Last > 3*p99First && p99Last > 50*time.Millisecond {
		broken = append(broken, fmt.Sprintf("p99 went from %s to %s", p99First, p99Last))
	}
	if len(broken) > 0 {
		return errors.New(strings.Join(broken, "; "))
	}
	fmt.Println("soak: every bound held")
	return nil
}

// dumpGoroutines prints Caddy's most numerous goroutine stacks.
func (e *env) dumpGoroutines() {
	resp, err := http.Get(e.adminURL + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	groups := strings.Split(string(body), "\n\n")
	for i, g := range groups {
		if i > 6 {
			break
		}
		lines := strings.Split(g, "\n")
		fmt.Println(strings.Join(lines[:min(len(lines), 12)], "\n"))
		fmt.Println("--")
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", e.caddy.Process.Pid)); err == nil {
		kinds := map[string]int{}
		for _, ent := range ents {
			l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", e.caddy.Process.Pid, ent.Name()))
			if i := strings.Index(l, ":["); i > 0 {
				l = l[:i]
			}
			kinds[l]++
		}
		fmt.Println("open files by kind:", kinds)
	}
	if out, err := exec.Command("ss", "-tanp").Output(); err == nil {
		pid := fmt.Sprintf("pid=%d,", e.caddy.Process.Pid)
		states := map[string]int{}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, pid) {
				f := strings.Fields(line)
				states[f[0]+" "+f[4]]++
			}
		}
		fmt.Println("Caddy's TCP connections (state peer):", states)
	}
}

func (e *env) reloadRun(o options, cookies []string) error {
	// What Caddy holds with no client connected, before the reloads.
	settle()
	before := e.sample(nil)
	ctx, cancel := context.WithCancel(context.Background())
	var jitT, bareT traffic
	wgJ := drive(ctx, e.jit, cookies, o.rate, o.workers/2, &jitT)
	wgB := drive(ctx, e.bare, nil, o.rate, o.workers/2, &bareT)
	loginFails := 0
	reloadFails := 0
	for i := 1; i <= o.reloads; i++ {
		time.Sleep(o.reloadEvery)
		gen := "0"
		if i%2 == 0 {
			gen = strconv.Itoa(i) // a changed config every other time
		}
		// A login in flight across the reload: started before, finished
		// after.
		b := newBrowser()
		cb, err := e.toCallback(b)
		req, _ := http.NewRequest(http.MethodPost, e.adminURL+"/load", bytes.NewBufferString(strings.Replace(e.caddyfile, "GENERATION", gen, 1)))
		req.Header.Set("Content-Type", "text/caddyfile")
		resp, rerr := http.DefaultClient.Do(req)
		if rerr != nil || resp.StatusCode != http.StatusOK {
			reloadFails++
			if resp != nil {
				body, _ := io.ReadAll(resp.Body)
				fmt.Printf("reload %d: %d %s\n", i, resp.StatusCode, body)
			} else {
				fmt.Printf("reload %d: %v\n", i, rerr)
			}
		}
		if resp != nil {
			resp.Body.Close()
		}
		if err == nil {
			err = b.finish(cb)
		}
		if err != nil {
			loginFails++
			fmt.Printf("reload %d: a login across it failed: %v\n", i, err)
		}
		if i%10 == 0 {
			fmt.Printf("reload %3d: jit_auth %d ok / %d failed, bare %d ok / %d failed\n", i, jitT.ok.Load(), jitT.failed.Load(), bareT.ok.Load(), bareT.failed.Load())
		}
	}
	cancel()
	wgJ.Wait()
	wgB.Wait()
	settle()
	after := e.sample(nil)
	// The sessions made before the first reload still work.
	stale := 0
	for _, c := range cookies {
		if code, err := harness.Get(harness.NoFollow, e.jit+"/still", c); err != nil || code != http.StatusOK {
			stale++
		}
	}
	fmt.Printf("\n%d reloads every %s (every other one changed the config): jit_auth %d ok, %d failed (%d 5xx); bare reverse_proxy %d ok, %d failed (%d 5xx)\n",
		o.reloads, o.reloadEvery, jitT.ok.Load(), jitT.failed.Load(), jitT.fiveXX.Load(), bareT.ok.Load(), bareT.failed.Load(), bareT.fiveXX.Load())
	fmt.Printf("logins across a reload: %d of %d failed; reloads refused: %d; sessions from before refused after: %d of %d\n", loginFails, o.reloads, reloadFails, stale, len(cookies))
	fmt.Printf("Caddy with no client connected, before the first reload: %d goroutines, %d open files, %.1f MiB; after the last: %d goroutines, %d open files, %.1f MiB\n",
		before.goroutines, before.fds, before.rssMiB, after.goroutines, after.fds, after.rssMiB)
	var broken []string
	if jitT.failed.Load() > bareT.failed.Load()+2 {
		broken = append(broken, "jit_auth failed more requests than bare reverse_proxy across the reloads")
	}
	if loginFails > 0 || reloadFails > 0 || stale > 0 {
		broken = append(broken, "a login, a reload or a session did not survive")
	}
	if after.fds > before.fds+5 || after.goroutines > before.goroutines+20 {
		broken = append(broken, "open files or goroutines grew across the reloads")
		e.dumpGoroutines()
	}
	if len(broken) > 0 {
		return errors.New(strings.Join(broken, "; "))
	}
	fmt.Println("reload: every bound held")
	return nil
}

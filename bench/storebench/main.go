// Command storebench measures the user stores (provisioner/sqlitestore
// and provisioner/pgstore) at a given number of existing users:
//
//   - the fill: users created one by one through Store.CreateUser (the
//     first -api-fill users), then, for larger stores, a store-specific
//     bulk path that writes the very rows CreateUser would write (one
//     transaction of prepared INSERTs per batch for SQLite, COPY for
//     PostgreSQL), checked afterwards through the Store API;
//   - lookups: UserByIdentity and UserByUsername of random existing
//     users, one at a time, latency percentiles;
//   - provisioning: first logins of fresh identities through
//     Provisioner.Provision, at each -concurrency, users per second.
//
// Example (the full run of bench/README.md):
//
//	go run ./bench/storebench -store sqlite,postgres -users 10k,1M
//
// Each (store, users) pair starts from an empty store: a new SQLite file
// in -dir (default: a temporary directory) or a new PostgreSQL schema
// storebench_<pid>_<users> in the -pg database, removed afterwards
// unless -keep. Any store error fails the run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

// backend is what differs between the stores: how a fresh store is made
// and the bulk path.
type backend interface {
	name() string
	// open creates an empty store for a run with n users.
	open(ctx context.Context, n int) (provisioner.Store, error)
	describe() string
	// writeBatch writes rows as CreateUser would, bypassing the store.
	writeBatch(ctx context.Context, rows []row) error
	// finishBulk brings the database to the state a store grown one
	// user at a time would be in; it returns what it did.
	finishBulk(ctx context.Context) (string, error)
	// signature describes the stored form of one user's rows.
	signature(ctx context.Context, key provisioner.IdentityKey) (string, error)
	size(ctx context.Context) (int64, error)
	// cleanup removes the run's database (unless kept).
	cleanup(ctx context.Context) error
}

type config struct {
	stores      []string
	users       []int
	apiFill     int
	batch       int
	provision   int
	concurrency []int
	lookups     int
	warmup      int
	verify      int
	seed        uint64
	dir         string
	pgURL       string
	keep        bool
	serialise   bool
}

func main() {
	var (
		cfg                              config
		stores, users, concurrency, seed string
	)
	flag.StringVar(&stores, "store", "sqlite", "stores to measure, comma-separated: sqlite, postgres")
	flag.StringVar(&users, "users", "10000", "existing users to measure at, comma-separated (suffixes k and M allowed: 10k,1M)")
	flag.IntVar(&cfg.apiFill, "api-fill", 10000, "fill at most this many users one by one through Store.CreateUser; the rest of -users goes through the store-specific bulk path")
	flag.IntVar(&cfg.batch, "batch", 50000, "users per bulk transaction")
	flag.IntVar(&cfg.provision, "provision", 2000, "fresh users provisioned through Provisioner.Provision at each concurrency")
	flag.StringVar(&concurrency, "concurrency", "1,8", "provisioning concurrencies, comma-separated")
	flag.IntVar(&cfg.lookups, "lookups", 20000, "measured lookups by identity and by username (each, one at a time)")
	flag.IntVar(&cfg.warmup, "warmup", 1000, "unmeasured lookups of each kind before measuring")
	flag.IntVar(&cfg.verify, "verify", 1000, "bulk-filled users (plus the first and last) checked through the Store API")
	flag.StringVar(&seed, "seed", "1", "seed of the random lookups")
	flag.StringVar(&cfg.dir, "dir", "", "directory for the SQLite files (default: a new temporary directory)")
	flag.StringVar(&cfg.pgURL, "pg", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL database URL (without search_path: each run makes its own schema)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the SQLite files and PostgreSQL schemas")
	flag.BoolVar(&cfg.serialise, "serialise-writes", false, "diagnostic: wrap the store so that CreateUser, RecordLogin and LinkIdentity take one in-process mutex (what the stores themselves do not do)")
	flag.Parse()

	var err error
	cfg.stores = strings.Split(stores, ",")
	for _, s := range cfg.stores {
		if s != "sqlite" && s != "postgres" {
			fail(fmt.Errorf("-store: unknown store %q (sqlite, postgres)", s))
		}
	}
	if cfg.users, err = parseCounts(users); err != nil {
		fail(fmt.Errorf("-users: %w", err))
	}
	if cfg.concurrency, err = parseCounts(concurrency); err != nil {
		fail(fmt.Errorf("-concurrency: %w", err))
	}
	if cfg.seed, err = strconv.ParseUint(seed, 10, 64); err != nil {
		fail(fmt.Errorf("-seed: %w", err))
	}
	if cfg.batch < 1 || cfg.lookups < 1 || cfg.provision < 0 || cfg.apiFill < 0 || cfg.verify < 0 {
		fail(errors.New("-batch and -lookups must be positive, -provision, -api-fill and -verify not negative"))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg)
	stop()
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "storebench:", err)
	os.Exit(1)
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "M"):
			mult, f = 1000000, strings.TrimSuffix(f, "M")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

func run(ctx context.Context, cfg config) error {
	fmt.Printf("storebench: %s, GOMAXPROCS %d, NumCPU %d\n", runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU())
	var results []*result
	for _, name := range cfg.stores {
		var b backend
		switch name {
		case "sqlite":
			dir := cfg.dir
			if dir == "" {
				d, err := os.MkdirTemp("", "storebench-")
				if err != nil {
					return err
				}
				if !cfg.keep {
					defer os.RemoveAll(d)
				}
				dir = d
			}
			b = &sqliteBackend{dir: dir, keep: cfg.keep}
		case "postgres":
			pb := &pgBackend{base: cfg.pgURL, keep: cfg.keep}
			defer pb.close(context.WithoutCancel(ctx))
			b = pb
		}
		for _, n := range cfg.users {
			res, err := runOne(ctx, cfg, b, n)
			if err != nil {
				printTable(cfg, results)
				return fmt.Errorf("%s, %s users: %w", name, count(n), err)
			}
			results = append(results, res)
		}
	}
	printTable(cfg, results)
	return nil
}

// result is one (store, users) run.
type result struct {
	store string
	n     int

	apiFill  latencies // CreateUser one by one
	bulkN    int
	bulkWall time.Duration // writing and finishing
	bulkNote string

	byIdentity, byUsername latencies
	provision              []latencies // one per -concurrency, in order
	size                   int64
	directory              *directoryResult
}

func (r *result) bulkRate() float64 {
	if r.bulkN == 0 || r.bulkWall <= 0 {
		return 0
	}
	return float64(r.bulkN) / r.bulkWall.Seconds()
}

func runOne(ctx context.Context, cfg config, b backend, n int) (res *result, err error) {
	res = &result{store: b.name(), n: n}
	if cfg.serialise {
		res.store += " (writes serialised)"
	}
	fmt.Printf("\n== %s, %s users (load average %s)\n", res.store, count(n), loadavg())
	defer func() { fmt.Printf("load average after: %s\n", loadavg()) }()
	st, err := b.open(ctx, n)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	fmt.Printf("store: %s\n", b.describe())
	walPath = ""
	if b.name() == "sqlite" {
		walPath = b.describe() + "-wal"
	}
	defer func() {
		cctx := context.WithoutCancel(ctx)
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
		if cerr := b.cleanup(cctx); cerr != nil && err == nil {
			err = cerr
		}
	}()
	rng := rand.New(rand.NewPCG(cfg.seed, uint64(n)))
	sigs := map[string][]string{} // signature -> where seen

	// 1. Fill through the API.
	apiN := min(n, cfg.apiFill)
	apiWin := window{from: time.Now()}
	res.apiFill, err = fillAPI(ctx, st, apiN)
	apiWin.to = time.Now()
	if err != nil {
		return nil, err
	}
	fmt.Printf("fill via CreateUser (c=1): %s\n", res.apiFill)

	// 2. Fill the rest with the bulk path.
	bulkWin := window{from: time.Now()}
	samples := sampleIndices(rng, apiN, n, cfg.verify)
	sampleIDs := make(map[int]string, len(samples))
	if apiN < n {
		res.bulkN = n - apiN
		start := time.Now()
		rows := make([]row, 0, min(cfg.batch, res.bulkN))
		next := start
		for lo := apiN; lo < n; lo += cfg.batch {
			hi := min(lo+cfg.batch, n)
			rows = rows[:0]
			for i := lo; i < hi; i++ {
				r := bulkRow(i, uuid.NewString(), time.Now())
				if samples[i] {
					sampleIDs[i] = r.user.ID
				}
				rows = append(rows, r)
			}
			if err := b.writeBatch(ctx, rows); err != nil {
				return nil, fmt.Errorf("bulk fill: %w", err)
			}
			if now := time.Now(); now.After(next) || hi == n {
				fmt.Fprintf(os.Stderr, "  bulk: %s/%s users, %s, %.0f/s\n", count(hi-apiN), count(res.bulkN),
					now.Sub(start).Round(time.Second), float64(hi-apiN)/now.Sub(start).Seconds())
				next = now.Add(10 * time.Second)
			}
		}
		written := time.Since(start)
		note, err := b.finishBulk(ctx)
		if err != nil {
			return nil, fmt.Errorf("bulk fill: %w", err)
		}
		res.bulkWall = time.Since(start)
		res.bulkNote = fmt.Sprintf("rows written in %s, then %s in %s", written.Round(time.Millisecond), note, (res.bulkWall - written).Round(time.Millisecond))
		fmt.Printf("fill via bulk path: %s users in %s (%.0f/s): %s\n", count(res.bulkN), res.bulkWall.Round(time.Millisecond), res.bulkRate(), res.bulkNote)
	}
	bulkWin.to = time.Now()

	// 3. Check the filled users through the Store API, and that bulk rows
	// are stored like CreateUser's.
	checked := 0
	for i, id := range sampleIDs {
		if err := verifyUser(ctx, st, b, i, id, bulkWin, sigs, "bulk"); err != nil {
			return nil, fmt.Errorf("bulk-filled user check: %w", err)
		}
		checked++
	}
	for _, i := range randomIndices(rng, 0, apiN, min(apiN, 200)) {
		if err := verifyUser(ctx, st, b, i, "", apiWin, sigs, "CreateUser"); err != nil {
			return nil, fmt.Errorf("user filled through CreateUser: %w", err)
		}
		checked++
	}
	fmt.Printf("checked %d filled users through UserByIdentity, UserByUsername and Identities (%d of them bulk-filled, IDs compared)\n", checked, len(sampleIDs))

	// 4. Lookups of random existing users, one at a time.
	if res.byIdentity, err = lookups(ctx, rng, n, cfg.warmup, cfg.lookups, func(i int) func() (*provisioner.User, error) {
		key := keyFor(i)
		return func() (*provisioner.User, error) { return st.UserByIdentity(ctx, key) }
	}); err != nil {
		return nil, fmt.Errorf("UserByIdentity: %w", err)
	}
	fmt.Printf("UserByIdentity (c=1): %s\n", res.byIdentity)
	if res.byUsername, err = lookups(ctx, rng, n, cfg.warmup, cfg.lookups, func(i int) func() (*provisioner.User, error) {
		name := usernameFor(i)
		return func() (*provisioner.User, error) { return st.UserByUsername(ctx, name) }
	}); err != nil {
		return nil, fmt.Errorf("UserByUsername: %w", err)
	}
	fmt.Printf("UserByUsername (c=1): %s\n", res.byUsername)

	// 5. Provisioning of fresh identities.
	var pst provisioner.Store = st
	if cfg.serialise {
		pst = &serialisedWrites{Store: st}
	}
	next := n
	for _, c := range cfg.concurrency {
		w := window{from: time.Now()}
		l, err := provision(ctx, pst, next, cfg.provision, c)
		w.to = time.Now()
		if err != nil {
			return nil, fmt.Errorf("provisioning at c=%d: %w", c, err)
		}
		res.provision = append(res.provision, l)
		fmt.Printf("Provision of new users (c=%d, store had %s users): %s\n", c, count(next), l)
		for _, i := range randomIndices(rng, next, next+cfg.provision, min(cfg.provision, 100)) {
			if err := verifyUser(ctx, st, b, i, "", w, sigs, "Provision"); err != nil {
				return nil, fmt.Errorf("provisioned user: %w", err)
			}
		}
		next += cfg.provision
	}
	if len(sigs) != 1 {
		var b strings.Builder
		for s, where := range sigs {
			fmt.Fprintf(&b, "\n  %q from %s", s, strings.Join(where, ", "))
		}
		return nil, fmt.Errorf("rows are not all stored alike:%s", b.String())
	}
	for s, where := range sigs {
		fmt.Printf("stored form of every checked row (from %s): %s\n", strings.Join(where, ", "), s)
	}
	if res.size, err = b.size(ctx); err != nil {
		return nil, err
	}
	fmt.Printf("size with %s users: %s\n", count(next), mib(res.size))

	// 6. Operating the directory: list pages, searches and the export.
	if res.directory, err = measureDirectory(ctx, st, n); err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	fmt.Printf("%s\n", res.directory)

	// 7. The status refresh of live sessions' users (issue #14).
	sr, err := measureStatusRefresh(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("status refresh: %w", err)
	}
	fmt.Printf("%s\n", sr)
	return res, nil
}

func fillAPI(ctx context.Context, st provisioner.Store, n int) (latencies, error) {
	d := make([]time.Duration, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		u, id := newUser(claimsFor(i), time.Now().UTC())
		t := time.Now()
		_, err := st.CreateUser(ctx, u, id)
		d = append(d, time.Since(t))
		if err != nil {
			return latencies{}, fmt.Errorf("CreateUser of user %d: %w", i, err)
		}
	}
	return summarise(d, time.Since(start)), nil
}

// sampleIndices picks up to k users of [lo, hi), always with lo and
// hi-1.
func sampleIndices(rng *rand.Rand, lo, hi, k int) map[int]bool {
	m := map[int]bool{}
	if hi <= lo {
		return m
	}
	m[lo], m[hi-1] = true, true
	for _, i := range randomIndices(rng, lo, hi, k) {
		m[i] = true
	}
	return m
}

func randomIndices(rng *rand.Rand, lo, hi, k int) []int {
	if hi <= lo {
		return nil
	}
	out := make([]int, k)
	for j := range out {
		out[j] = lo + rng.IntN(hi-lo)
	}
	return out
}

// verifyUser looks user i up by identity and by username, compares both
// with what provisioning user i produces (and the ID with wantID when
// set), checks its one identity and records the stored form of its rows.
func verifyUser(ctx context.Context, st provisioner.Store, b backend, i int, wantID string, w window, sigs map[string][]string, origin string) error {
	u, err := st.UserByIdentity(ctx, keyFor(i))
	if err != nil {
		return fmt.Errorf("user %d by identity: %w", i, err)
	}
	if err := checkUser(u, i, wantID, w); err != nil {
		return err
	}
	u2, err := st.UserByUsername(ctx, usernameFor(i))
	if err != nil {
		return fmt.Errorf("user %d by username: %w", i, err)
	}
	if err := checkUser(u2, i, u.ID, w); err != nil {
		return fmt.Errorf("by username: %w", err)
	}
	ids, err := st.Identities(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("identities of user %d: %w", i, err)
	}
	if len(ids) != 1 {
		return fmt.Errorf("user %d has %d identities, want 1", i, len(ids))
	}
	if err := checkIdentity(ids[0], i, u.ID, w); err != nil {
		return err
	}
	sig, err := b.signature(ctx, keyFor(i))
	if err != nil {
		return fmt.Errorf("stored form of user %d: %w", i, err)
	}
	if !slices.Contains(sigs[sig], origin) {
		sigs[sig] = append(sigs[sig], origin)
	}
	return nil
}

// lookups measures k calls, one at a time, of random existing users of
// [0, n) after warm unmeasured ones, and checks every answer.
func lookups(ctx context.Context, rng *rand.Rand, n, warm, k int, call func(i int) func() (*provisioner.User, error)) (latencies, error) {
	type op struct {
		i int
		f func() (*provisioner.User, error)
	}
	ops := make([]op, warm+k)
	for j := range ops {
		i := rng.IntN(n)
		ops[j] = op{i, call(i)}
	}
	d := make([]time.Duration, 0, k)
	var start time.Time
	for j, o := range ops {
		if j == warm {
			start = time.Now()
		}
		t := time.Now()
		u, err := o.f()
		el := time.Since(t)
		if err != nil {
			return latencies{}, fmt.Errorf("user %d: %w", o.i, err)
		}
		if want := usernameFor(o.i); u.Username != want {
			return latencies{}, fmt.Errorf("user %d: got %q, want %q", o.i, u.Username, want)
		}
		if j >= warm {
			d = append(d, el)
		}
		if err := ctx.Err(); err != nil {
			return latencies{}, err
		}
	}
	return summarise(d, time.Since(start)), nil
}

// provision runs first logins of users [first, first+k) through
// Provisioner.Provision with c workers; every one must create a user.
func provision(ctx context.Context, st provisioner.Store, first, k, c int) (latencies, error) {
	p := &provisioner.Provisioner{Store: st}
	policy := &provisioner.Policy{Enabled: true}
	if err := policy.Validate(); err != nil {
		return latencies{}, err
	}
	var (
		next    atomic.Int64
		mu      sync.Mutex
		all     []time.Duration
		errs    []error
		wg      sync.WaitGroup
		stopped atomic.Bool
	)
	next.Store(int64(first))
	var slow []slowCall
	sampler := startIOSampler()
	start := time.Now()
	for range c {
		wg.Go(func() {
			var d []time.Duration
			for !stopped.Load() {
				i := int(next.Add(1) - 1)
				if i >= first+k {
					break
				}
				claims := claimsFor(i)
				t := time.Now()
				r, err := p.Provision(ctx, provisioner.Request{Connection: connection, Policy: policy, Claims: claims})
				el := time.Since(t)
				if err == nil && r.Outcome != provisioner.OutcomeCreated {
					err = fmt.Errorf("outcome %s, want %s", r.Outcome, provisioner.OutcomeCreated)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("user %d: %w", i, err))
					mu.Unlock()
					stopped.Store(true)
					break
				}
				d = append(d, el)
				if el > slowCallThreshold {
					mu.Lock()
					slow = append(slow, slowCall{t, el})
					mu.Unlock()
				}
			}
			mu.Lock()
			all = append(all, d...)
			mu.Unlock()
		})
	}
	wg.Wait()
	samples := sampler.finish()
	slices.SortFunc(slow, func(a, b slowCall) int { return a.start.Compare(b.start) })
	explain(slow, samples)
	l := summarise(all, time.Since(start))
	if len(errs) > 0 {
		return l, errors.Join(errs...)
	}
	return l, nil
}

func printTable(cfg config, results []*result) {
	if len(results) == 0 {
		return
	}
	fmt.Printf("\n== results (lookups: %s of each kind, one at a time, random existing users; provisioning: %s new users per concurrency)\n\n",
		count(cfg.lookups), count(cfg.provision))
	head := []string{"store", "users", "fill: CreateUser", "fill: bulk"}
	for _, c := range cfg.concurrency {
		head = append(head, fmt.Sprintf("provision/s c=%d", c))
	}
	head = append(head, "UserByIdentity p50 / p99 / max", "UserByUsername p50 / p99 / max", "size after")
	fmt.Println("| " + strings.Join(head, " | ") + " |")
	fmt.Println("|" + strings.Repeat("---|", len(head)))
	for _, r := range results {
		cells := []string{r.store, count(r.n),
			fmt.Sprintf("%s at %.0f/s", count(r.apiFill.n), r.apiFill.perSecond)}
		if r.bulkN > 0 {
			cells = append(cells, fmt.Sprintf("%s at %.0f/s", count(r.bulkN), r.bulkRate()))
		} else {
			cells = append(cells, "–")
		}
		for _, l := range r.provision {
			cells = append(cells, fmt.Sprintf("%.0f", l.perSecond))
		}
		for _, l := range []latencies{r.byIdentity, r.byUsername} {
			cells = append(cells, fmt.Sprintf("%s / %s / %s", dur(l.p50), dur(l.p99), dur(l.max)))
		}
		cells = append(cells, mib(r.size))
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}
}

// serialisedWrites makes the writes Provision uses wait on one
// in-process mutex (first come, first served in Go) instead of on the
// store's own locking; see -serialise-writes.
type serialisedWrites struct {
	provisioner.Store
	mu sync.Mutex
}

func (s *serialisedWrites) CreateUser(ctx context.Context, u *provisioner.User, id provisioner.Identity) (*provisioner.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Store.CreateUser(ctx, u, id)
}

func (s *serialisedWrites) RecordLogin(ctx context.Context, key provisioner.IdentityKey, rawClaims []byte, at time.Time, update provisioner.UpdateFunc) (*provisioner.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Store.RecordLogin(ctx, key, rawClaims, at, update)
}

func (s *serialisedWrites) LinkIdentity(ctx context.Context, userID string, id provisioner.Identity, update provisioner.UpdateFunc) (*provisioner.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Store.LinkIdentity(ctx, userID, id, update)
}

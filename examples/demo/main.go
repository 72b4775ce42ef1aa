// Command demo runs jit_auth end to end on one machine, offline: a local
// OpenID Connect provider (internal/devidp), a "legacy app" without any
// login code, and Caddy in-process with jit_auth in front of the app.
//
//	go run ./examples/demo
//
// then open http://localhost:8080 and sign in as alice or bob.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the "caddyfile" adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/jitauth/caddy-jitauth/caddymodule"
	"github.com/jitauth/caddy-jitauth/examples/internal/legacyapp"
	"github.com/jitauth/caddy-jitauth/internal/devidp"
)

// The demo's accounts at the identity provider.
var demoUsers = []devidp.User{
	{Username: "alice", Password: "wonderland", GivenName: "Alice", FamilyName: "Liddell",
		Email: "alice@example.com", EmailVerified: true},
	{Username: "bob", Password: "builder", GivenName: "Bob", FamilyName: "Builder",
		Email: "bob@example.com", EmailVerified: true},
}

const (
	connectionName = "demo"
	clientID       = "demo"
	clientSecret   = "demo-secret"
)

type config struct {
	// DataDir holds jit_auth's SQLite database (and Caddy's storage).
	DataDir string
	// Port is Caddy's: the site is http://localhost:<Port>.
	Port int
	// IdPAddr and AppAddr are where the provider and the legacy app listen.
	IdPAddr, AppAddr string
	// Quiet discards Caddy's logs.
	Quiet bool
	// AdminAddr is Caddy's admin endpoint (the jit_auth users API, the
	// caddy jit-users command and /metrics); "" turns it off.
	AdminAddr string
}

// running describes a started demo.
type running struct {
	SiteURL, Issuer, AppURL, DBPath string
	// AdminURL is Caddy's admin endpoint, if on.
	AdminURL string
}

func main() {
	cfg := config{}
	flag.StringVar(&cfg.DataDir, "data", defaultDataDir(), "directory for the demo's user database")
	flag.IntVar(&cfg.Port, "port", 8080, "port of the protected site http://localhost:<port>")
	idpPort := flag.Int("idp-port", 9998, "port of the identity provider (127.0.0.1)")
	appPort := flag.Int("app-port", 9997, "port of the legacy app (127.0.0.1)")
	flag.BoolVar(&cfg.Quiet, "quiet", false, "discard Caddy's logs")
	flag.StringVar(&cfg.AdminAddr, "admin", "localhost:2019", "Caddy's admin endpoint, where `caddy jit-users` and /metrics reach it (off: none)")
	flag.Parse()
	adminChosen := false
	flag.Visit(func(f *flag.Flag) { adminChosen = adminChosen || f.Name == "admin" })
	switch {
	case cfg.AdminAddr == "off":
		cfg.AdminAddr = ""
	case !adminChosen && !portFree(cfg.AdminAddr):
		// Most likely the machine's own Caddy: the demo runs without
		// an admin endpoint rather than not at all.
		fmt.Fprintf(os.Stderr, "demo: %s is taken (by a Caddy of this machine?), so the demo runs without its admin endpoint; choose one with -admin localhost:<port>\n", cfg.AdminAddr)
		cfg.AdminAddr = ""
	}
	cfg.IdPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(*idpPort))
	cfg.AppAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(*appPort))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Stdout, printBanner(os.Stdout)); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// defaultDataDir is under the user's cache directory rather than a
// temporary one so that the users jit_auth provisions persist across runs:
// the first login of alice creates her local account, later runs (and
// later logins) find it. It is a cache because nothing in it matters:
// delete the directory to start the demo afresh.
func defaultDataDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "caddy-jitauth-demo")
}

func printBanner(out io.Writer) func(running) {
	return func(r running) {
		fmt.Fprintf(out, `
jit_auth demo is running.

  Open                %s
  Sign in as          alice / wonderland   or   bob / builder
  Identity provider   %s  (client %q)
  Legacy app          %s  (direct, without jit_auth: no identity)
  User database       %s
`, r.SiteURL, r.Issuer, clientID, r.AppURL, r.DBPath)
		if r.AdminURL != "" {
			fmt.Fprintf(out, `  Admin endpoint      %s  (loopback only)
                      go run ./cmd/caddy jit-users list%s
                      curl -s %s/metrics | grep ^jit_auth_
`, r.AdminURL, jitUsersAddress(r.AdminURL), r.AdminURL)
		}
		fmt.Fprint(out, "\nPress Ctrl-C to stop.\n\n")
	}
}

// jitUsersAddress is the --address option that sends `caddy jit-users`
// to the demo's admin endpoint, or "" for localhost:2019, where the
// command looks by default. Without it, a demo moved off a port some
// other Caddy holds would have the command ask (and change) that Caddy.
func jitUsersAddress(adminURL string) string {
	addr := strings.TrimPrefix(adminURL, "http://")
	if addr == "localhost:2019" {
		return ""
	}
	return " --address " + addr
}

// run starts the provider, the legacy app and Caddy, calls started once all
// serve, and stops everything when ctx is done. Caddy's state is
// process-wide: one run at a time per process.
func run(ctx context.Context, cfg config, out io.Writer, started func(running)) (err error) {
	if err := checkPortsFree(cfg); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	site := "http://localhost:" + strconv.Itoa(cfg.Port)

	// The legacy app.
	appLn, err := net.Listen("tcp", cfg.AppAddr)
	if err != nil {
		return fmt.Errorf("legacy app: %w (choose another port with -app-port)", err)
	}
	app := &http.Server{Handler: legacyapp.Handler(), ReadHeaderTimeout: 10 * time.Second}
	appDone := make(chan struct{})
	go func() {
		defer close(appDone)
		app.Serve(appLn)
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		app.Shutdown(sctx)
		<-appDone
	}()

	// The identity provider.
	idp, err := devidp.Start(cfg.IdPAddr, demoUsers, []devidp.Client{{
		ID: clientID, Secret: clientSecret,
		RedirectURIs:           []string{site + "/.jitauth/callback/" + connectionName},
		PostLogoutRedirectURIs: []string{site + "/"},
	}})
	if err != nil {
		return fmt.Errorf("identity provider: %w (choose another port with -idp-port)", err)
	}
	defer idp.Close()

	// Caddy.
	dbPath := filepath.Join(dataDir, "jit_auth.db")
	caddyfile := demoCaddyfile(demoParams{
		Site:       site,
		Upstream:   appLn.Addr().String(),
		Issuer:     idp.Issuer(),
		DBPath:     dbPath,
		StorageDir: filepath.Join(dataDir, "caddy"),
		Quiet:      cfg.Quiet,
		Admin:      cfg.AdminAddr,
	})
	cfgJSON, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "demo Caddyfile"})
	if err != nil {
		return fmt.Errorf("adapting the Caddyfile: %w\n%s", err, caddyfile)
	}
	for _, w := range warnings {
		fmt.Fprintln(out, "caddyfile warning:", w.String())
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		return fmt.Errorf("starting Caddy: %w (choose another port with -port)", err)
	}
	defer func() {
		if serr := caddy.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stopping Caddy: %w", serr)
		}
	}()

	if started != nil {
		started(running{
			SiteURL:  site,
			Issuer:   idp.Issuer(),
			AppURL:   "http://" + appLn.Addr().String(),
			DBPath:   dbPath,
			AdminURL: adminURL(cfg.AdminAddr),
		})
	}
	<-ctx.Done()
	fmt.Fprintln(out, "stopping…")
	return nil
}

// checkPortsFree refuses to start on a port something else holds. Caddy
// opens its listeners with SO_REUSEPORT, so a second demo would otherwise
// bind the site's port beside the first one's and the kernel would split
// the browsers' requests between two unrelated demos (and providers). A
// plain listen, without SO_REUSEPORT, fails while any socket holds the
// port; it is closed again at once.
func checkPortsFree(cfg config) error {
	for _, p := range []struct{ addr, what, flag string }{
		{net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)), "the protected site", "-port"},
		{cfg.IdPAddr, "the identity provider", "-idp-port"},
		{cfg.AppAddr, "the legacy app", "-app-port"},
		{cfg.AdminAddr, "Caddy's admin endpoint", "-admin"},
	} {
		if _, port, err := net.SplitHostPort(p.addr); p.addr == "" || (err == nil && port == "0") {
			continue // off, or any free port will do
		}
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			return fmt.Errorf("%s (%s) is already in use, perhaps by another demo: stop it, or choose another port with %s (%v)", p.addr, p.what, p.flag, err)
		}
		ln.Close()
	}
	return nil
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) bool {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

type demoParams struct {
	Site, Upstream, Issuer, DBPath, StorageDir string
	Quiet                                      bool
	// Admin is the admin endpoint's address; "" is admin off.
	Admin string
}

// adminURL is the admin endpoint's URL, or "" when it is off.
func adminURL(addr string) string {
	if addr == "" {
		return ""
	}
	return "http://" + addr
}

// demoCaddyfile is the configuration a user of jit_auth would write, plus
// settings that keep the demo from touching a real Caddy installation.
func demoCaddyfile(p demoParams) string {
	var b strings.Builder
	if p.Admin == "" {
		b.WriteString("{\n\tadmin off\n")
	} else {
		// Caddy's admin endpoint refuses requests whose Host or Origin
		// is not its own address, so a web page cannot reach it.
		fmt.Fprintf(&b, "{\n\tadmin %s\n", p.Admin)
	}
	// Do not write autosave.json into the user's Caddy config directory,
	// nor anything into Caddy's default data directory.
	b.WriteString("\tpersist_config off\n")
	fmt.Fprintf(&b, "\tstorage file_system %s\n", quote(p.StorageDir))
	// Ctrl-C should not wait for browsers' open connections.
	b.WriteString("\tgrace_period 2s\n")
	if p.Quiet {
		b.WriteString("\tlog {\n\t\toutput discard\n\t}\n")
	}
	fmt.Fprintf(&b, `	jit_auth {
		store sqlite %s
		connection %s {
			oidc %s %s %s
			display_name "Demo identity provider"
			jit
		}
	}
}

%s {
	# The demo is for this machine only.
	bind 127.0.0.1
	jit_auth
	reverse_proxy %s
}
`, quote(p.DBPath), connectionName, p.Issuer, clientID, clientSecret, p.Site, p.Upstream)
	return b.String()
}

// quote makes s one Caddyfile token (paths may contain spaces; Windows
// paths contain backslashes, which backquotes keep as they are).
func quote(s string) string {
	if !strings.Contains(s, "`") {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}

//go:build linux

// Command setup prepares the contenders of bench/run.sh and keeps them
// running until it is told to stop:
//
//   - a local OpenID Connect provider (internal/devidp) with one user;
//   - a Caddyfile with four sites on loopback ports, all proxying to the
//     same upstream: "bare" (reverse_proxy only), "jit_auth" (jit_auth +
//     reverse_proxy), "bare_headers" (request_header making the upstream
//     request jit_auth leaves, then reverse_proxy) and "jit_assertion"
//     (jit_auth with a signed assertion), with identical global options
//     and no access logs;
//   - the built Caddy binary running that Caddyfile as a subprocess;
//   - one login through the provider's form, for the session cookie;
//   - with -twin, a second Caddy process (the twin) running the same
//     sites on ports of its own, with the same storage (so the same
//     cookie keys) and the same store, for run.sh's paired rounds;
//   - with -oauth2-proxy, a third contender: that oauth2-proxy binary
//     (OIDC provider = the same devidp, its own client, cookie session
//     store, request/auth/standard logging off) proxying to the same
//     upstream, and one login through it for its session cookie.
//
// When the sites answer and the logins worked it writes KEY=value lines
// (BARE_URL, AUTH_URL, HEADERS_URL, ASSERT_URL, COOKIE, CADDY_PID,
// ADMIN_URL with -admin, TWIN_* with -twin, and OAUTH2_URL,
// OAUTH2_COOKIE, OAUTH2_PID with -oauth2-proxy) to -out, then waits for SIGINT or SIGTERM and stops
// Caddy, the twin and oauth2-proxy. Both are
// also killed if setup dies (Pdeathsig), so nothing outlives a run. Linux
// only, like run.sh.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jitauth/caddy-jitauth/internal/devidp"
	"github.com/jitauth/caddy-jitauth/internal/freeport"
)

const (
	connectionName = "bench"
	clientID       = "bench"
	clientSecret   = "bench-secret"
	username       = "bench"
	password       = "bench-password"
	cookieName     = "jitauth_session" // plain-HTTP loopback: no __Host- prefix

	// oauth2-proxy's client at the provider and its session cookie name
	// (its default; a session too large for one cookie is split into
	// _oauth2_proxy_0, _oauth2_proxy_1, ...).
	oauth2ClientID     = "oauth2-proxy"
	oauth2ClientSecret = "oauth2-proxy-secret"
	oauth2CookieName   = "_oauth2_proxy"
)

func main() {
	caddyBin := flag.String("caddy", "", "path to the Caddy binary built from ./cmd/caddy")
	upstream := flag.String("upstream", "", "host:port of the upstream")
	dir := flag.String("dir", "", "working directory for the Caddyfile, storage, database and logs")
	out := flag.String("out", "", "file to write BARE_URL, AUTH_URL, COOKIE and CADDY_PID to")
	admin := flag.String("admin", "", "enable Caddy's admin endpoint (and its /debug/pprof/) at this loopback host:port, or \"auto\" for a free port (written as ADMIN_URL); default: admin off")
	oauth2Bin := flag.String("oauth2-proxy", "", "path to an oauth2-proxy v7 binary: run it as a third contender (OAUTH2_URL, OAUTH2_COOKIE, OAUTH2_PID); default: none")
	twin := flag.Bool("twin", false, "also run a second Caddy process with the same sites on other ports, the same storage and the same store (TWIN_BARE_URL, TWIN_AUTH_URL, TWIN_HEADERS_URL, TWIN_ASSERT_URL, TWIN_CADDY_PID), for paired rounds")
	twinBin := flag.String("twin-caddy", "", "with -twin, run the twin from this Caddy binary (another build of ./cmd/caddy) instead of -caddy's")
	flag.Parse()
	if *caddyBin == "" || *upstream == "" || *dir == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	log.SetPrefix("setup: ")
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *twinBin == "" {
		*twinBin = *caddyBin
	}
	if err := run(ctx, *caddyBin, *oauth2Bin, *upstream, *dir, *out, *admin, *twin, *twinBin); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func run(ctx context.Context, caddyBin, oauth2Bin, upstream, dir, out, admin string, twin bool, twinBin string) error {
	ports, err := freePorts()
	if err != nil {
		return err
	}
	barePort, authPort, headersPort, assertPort := ports[0], ports[1], ports[2], ports[3]
	if admin == "auto" {
		p, err := freePort()
		if err != nil {
			return err
		}
		admin = fmt.Sprintf("127.0.0.1:%d", p)
	}
	bareURL := fmt.Sprintf("http://127.0.0.1:%d/", barePort)
	authURL := fmt.Sprintf("http://127.0.0.1:%d/", authPort)
	headersURL := fmt.Sprintf("http://127.0.0.1:%d/", headersPort)
	assertURL := fmt.Sprintf("http://127.0.0.1:%d/", assertPort)

	clients := []devidp.Client{{ID: clientID, Secret: clientSecret,
		RedirectURIs: []string{authURL + ".jitauth/callback/" + connectionName}}}
	var oauth2URL string
	if oauth2Bin != "" {
		p, err := freePort()
		if err != nil {
			return err
		}
		oauth2URL = fmt.Sprintf("http://127.0.0.1:%d/", p)
		clients = append(clients, devidp.Client{ID: oauth2ClientID, Secret: oauth2ClientSecret,
			RedirectURIs: []string{oauth2URL + "oauth2/callback"}})
	}
	idp, err := devidp.Start("127.0.0.1:0",
		[]devidp.User{{Username: username, Password: password, GivenName: "Bench", FamilyName: "User",
			Email: "bench@example.com", EmailVerified: true, Groups: []string{"staff", "bench"}}},
		clients)
	if err != nil {
		return fmt.Errorf("starting the identity provider: %w", err)
	}
	defer idp.Close()

	caddy, err := startCaddy(ctx, caddyBin, dir, "", benchCaddyfile(dir, idp.Issuer(), upstream, admin, barePort, authPort, headersPort, assertPort, oauth2Bin != ""),
		bareURL, authURL, assertURL)
	if err != nil {
		return err
	}
	defer caddy.stop()

	cookies, err := login(authURL, authURL, idp.Issuer(), cookieName)
	if err != nil {
		return err
	}

	env := fmt.Sprintf("BARE_URL=%s\nAUTH_URL=%s\nHEADERS_URL=%s\nASSERT_URL=%s\nCOOKIE=%s\nCADDY_PID=%d\n", bareURL, authURL, headersURL, assertURL, cookies, caddy.cmd.Process.Pid)
	if admin != "" {
		env += "ADMIN_URL=http://" + admin + "/\n"
	}
	var twinExited chan error // nil (never ready) without a twin
	if twin {
		// The same sites, global options and storage (so the same cookie
		// keys: the session cookie opens there too) on ports of its
		// own, started once the first has written its keys.
		tp, err := freePorts()
		if err != nil {
			return err
		}
		u := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/", port) }
		t, err := startCaddy(ctx, twinBin, dir, "twin", benchCaddyfile(dir, idp.Issuer(), upstream, "", tp[0], tp[1], tp[2], tp[3], oauth2Bin != ""),
			u(tp[0]), u(tp[1]), u(tp[3]))
		if err != nil {
			return fmt.Errorf("the twin: %w", err)
		}
		defer t.stop()
		twinExited = t.exited
		env += fmt.Sprintf("TWIN_BARE_URL=%s\nTWIN_AUTH_URL=%s\nTWIN_HEADERS_URL=%s\nTWIN_ASSERT_URL=%s\nTWIN_CADDY_PID=%d\n",
			u(tp[0]), u(tp[1]), u(tp[2]), u(tp[3]), t.cmd.Process.Pid)
	}
	var o2exited chan error // nil (never ready) without oauth2-proxy
	if oauth2Bin != "" {
		o2, err := startOAuth2Proxy(ctx, oauth2Bin, dir, oauth2URL, idp.Issuer(), upstream)
		if err != nil {
			return err
		}
		defer o2.stop()
		o2exited = o2.exited
		// /oauth2/start sends the browser to the provider straight away
		// (no sign-in page), the callback back to rd.
		cookies, err := login(oauth2URL+"oauth2/start?rd=%2F", oauth2URL, idp.Issuer(), oauth2CookieName)
		if err != nil {
			return fmt.Errorf("oauth2-proxy: %w (see %s)", err, o2.logName)
		}
		env += fmt.Sprintf("OAUTH2_URL=%s\nOAUTH2_COOKIE=%s\nOAUTH2_PID=%d\n", oauth2URL, cookies, o2.cmd.Process.Pid)
	}
	if err := os.WriteFile(out+".tmp", []byte(env), 0o600); err != nil {
		return err
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return err
	}
	log.Printf("ready: bare %s, jit_auth %s, Caddy pid %d, oauth2-proxy %q, twin %v", bareURL, authURL, caddy.cmd.Process.Pid, oauth2URL, twin)

	select {
	case <-ctx.Done():
		return nil
	case err := <-caddy.exited:
		caddy.exited <- err // for stop
		return fmt.Errorf("Caddy exited: %v (see %s)", err, caddy.logName)
	case err := <-twinExited:
		twinExited <- err // for stop
		return fmt.Errorf("the twin Caddy exited: %v (see %s)", err, filepath.Join(dir, "caddy-twin.log"))
	case err := <-o2exited:
		o2exited <- err // for stop
		return fmt.Errorf("oauth2-proxy exited: %v (see %s)", err, filepath.Join(dir, "oauth2-proxy.log"))
	}
}

// caddyProc is a running Caddy of the bench.
type caddyProc struct {
	cmd     *exec.Cmd
	exited  chan error
	logName string
}

// startCaddy writes caddyfile as Caddyfile (Caddyfile.<name> with a
// name), starts the Caddy binary on it with its log in caddy.log
// (caddy-<name>.log) and waits until every URL in serving answers.
func startCaddy(ctx context.Context, caddyBin, dir, name, caddyfile string, serving ...string) (*caddyProc, error) {
	file, logName := "Caddyfile", "caddy.log"
	if name != "" {
		file, logName = "Caddyfile."+name, "caddy-"+name+".log"
	}
	file, logName = filepath.Join(dir, file), filepath.Join(dir, logName)
	if err := os.WriteFile(file, []byte(caddyfile), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	// The child has its own copy of the descriptor.
	defer logFile.Close()
	cmd := exec.Command(caddyBin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Keep Caddy away from the user's config and data directories.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting Caddy: %w", err)
	}
	p := &caddyProc{cmd: cmd, exited: make(chan error, 1), logName: logName}
	go func() { p.exited <- cmd.Wait() }()
	for _, u := range serving {
		if err := waitServing(ctx, u, p.exited); err != nil {
			p.stop()
			return nil, fmt.Errorf("%w (see %s)", err, logName)
		}
	}
	return p, nil
}

func (p *caddyProc) stop() { stopCaddy(p.cmd, p.exited) }

// freePorts returns four loopback TCP ports that were free a moment ago,
// for the four sites of benchCaddyfile.
func freePorts() ([4]int, error) {
	var ports [4]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return ports, err
		}
		ports[i] = p
	}
	return ports, nil
}

// benchCaddyfile has the Caddy contenders with identical global options:
// no admin endpoint (unless profiling), no persisted config, no HTTPS,
// logs discarded (below ERROR) and no access logs, so logging costs none
// of them anything.
func benchCaddyfile(dir, issuer, upstream, admin string, barePort, authPort, headersPort, assertPort int, withOAuth2Cookie bool) string {
	adminLine := "admin off"
	if admin != "" {
		adminLine = "admin " + admin
	}
	return fmt.Sprintf(`{
	%[10]s
	persist_config off
	auto_https off
	storage file_system %[1]s
	log {
		output discard
		level ERROR
	}
	jit_auth {
		store sqlite %[2]s
		connection %[3]s {
			oidc %[4]s %[5]s %[6]s
			jit
		}
	}
}

# Contender "bare": reverse_proxy only.
http://:%[7]d {
	bind 127.0.0.1
	reverse_proxy %[9]s
}

# Contender "jit_auth": the same, behind jit_auth.
http://:%[8]d {
	bind 127.0.0.1
	jit_auth
	reverse_proxy %[9]s
}

# Contender "bare_headers": reverse_proxy behind Caddy's request_header,
# which makes of the request's header set what jit_auth makes of it: its
# session cookie withheld, the four identity headers it sends by default
# set, as constants of the same length. What the upstream request jit_auth
# leaves costs the proxy and the upstream, without jit_auth's own work.
http://:%[11]d {
	bind 127.0.0.1
	request_header %[13]s
	request_header Remote-User "bench@example.com"
	request_header Remote-Email "bench@example.com"
	request_header Remote-Name "Bench User"
	request_header Remote-Groups "staff,bench"
	reverse_proxy %[9]s
}

# Contender "jit_assertion": jit_auth sending a signed identity assertion
# as well (the same session cookie: cookies do not depend on the port).
http://:%[12]d {
	bind 127.0.0.1
	jit_auth {
		assertion
	}
	reverse_proxy %[9]s
}
`, quote(filepath.Join(dir, "storage")), quote(filepath.Join(dir, "users.db")), connectionName,
		issuer, clientID, clientSecret, barePort, authPort, upstream, adminLine, headersPort, assertPort,
		withholdSessionCookie(withOAuth2Cookie))
}

// withholdSessionCookie is the request_header operation that takes
// jit_auth's session cookie off the Cookie line as jit_auth does: the
// whole header when the session cookie is all it carries, else just that
// pair (the requests carry oauth2-proxy's cookie after it when oauth2-proxy
// is a contender).
func withholdSessionCookie(withOAuth2Cookie bool) string {
	if withOAuth2Cookie {
		return "Cookie " + quote(cookieName+"=[^;]*(; )?") + ` ""`
	}
	return "-Cookie"
}

func quote(s string) string { return "`" + s + "`" }

// freePort returns a TCP port that was free a moment ago and that no
// port-0 listener (an upstream, a connection) can be given meanwhile.
func freePort() (int, error) { return freeport.Port() }

// waitServing waits until u answers HTTP at all.
func waitServing(ctx context.Context, u string, exited chan error) error {
	return waitServingProc(ctx, "Caddy", u, exited)
}

// waitServingProc waits until u answers HTTP at all, failing early if the
// process named what exits.
func waitServingProc(ctx context.Context, what, u string, exited chan error) error {
	c := &http.Client{Timeout: time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("%s exited before serving %s: %v", what, u, err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := c.Get(u); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer within 30s", u)
}

// acceptHTML makes every request a browser navigation, so jit_auth
// redirects to the login instead of answering 401.
type acceptHTML struct{}

func (acceptHTML) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Accept", "text/html")
	return http.DefaultTransport.RoundTrip(r)
}

// login signs in as a browser would: it GETs start, which must send it to
// the provider, fills in the provider's form, follows the redirect back to
// the site and from there to site itself (which must answer 200). It
// returns the site's session cookies, the ones named name or name_<n>
// (split cookies), as a Cookie header value ("name=value; ...").
func login(start, site, issuer, name string) (string, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 15 * time.Second, Transport: acceptHTML{}}

	// The site sends the browser to the provider's login page.
	resp, err := c.Get(start)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Request.URL.String(), issuer+"/") {
		return "", fmt.Errorf("login: GET %s ended at %s (%s), not at the provider", start, resp.Request.URL, resp.Status)
	}

	resp, err = devidp.Login(c, resp.Request.URL.String(), username, password)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	callback, err := resp.Location()
	if err != nil {
		return "", fmt.Errorf("login: the provider did not redirect back: %s", resp.Status)
	}

	// The callback sets the session and sends the browser back to /.
	resp, err = c.Get(callback.String())
	if err != nil {
		return "", fmt.Errorf("login: callback: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != site {
		return "", fmt.Errorf("login: after the callback: %s at %s: %s", resp.Status, resp.Request.URL, body)
	}
	u, _ := url.Parse(site)
	var pairs []string
	for _, ck := range jar.Cookies(u) {
		if ck.Name == name || strings.HasPrefix(ck.Name, name+"_") && strings.Trim(ck.Name[len(name)+1:], "0123456789") == "" {
			pairs = append(pairs, ck.Name+"="+ck.Value)
		}
	}
	if len(pairs) == 0 {
		return "", errors.New("login: no " + name + " cookie after the callback")
	}
	return strings.Join(pairs, "; "), nil
}

// stopCaddy asks Caddy to stop and kills it if it does not within 5s.
func stopCaddy(cmd *exec.Cmd, exited chan error) {
	select {
	case err := <-exited:
		exited <- err
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

package caddymodule_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/jitauth/caddy-jitauth/connector"
	"github.com/jitauth/caddy-jitauth/provisioner"
)

// formPost is a connector as a third party would write one, outside the
// module's packages and using only what they export: its provider
// answers with a cross-site form POST carrying a signed assertion (the
// shape of SAML's HTTP-POST binding and OpenID Connect's form_post), so
// it exercises the whole-request interface, the POST callback and the
// connector's own opaque login state.
type formPost struct {
	// Provider is the provider's base URL.
	Provider string `json:"provider,omitempty"`
	// Key is the secret the provider signs assertions with.
	Key string `json:"key,omitempty"`
}

func init() { caddy.RegisterModule(formPost{}) }

func (formPost) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "jit_auth.connectors.formpost", New: func() caddy.Module { return new(formPost) }}
}

func (f *formPost) Validate() error {
	if f.Provider == "" || f.Key == "" {
		return errors.New("formpost needs a provider URL and a key")
	}
	return nil
}

// UnmarshalCaddyfile reads `formpost <provider> <key>`.
func (f *formPost) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.Args(&f.Provider, &f.Key) || d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// formPostNonce is the connector's own state for one login.
type formPostNonce struct {
	Nonce string `json:"n"`
}

func (f *formPost) Begin(r *http.Request, login connector.Login) (string, []byte, error) {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	st := formPostNonce{Nonce: hex.EncodeToString(nonce)}
	state, _ := json.Marshal(st)
	q := url.Values{"state": {login.State}, "redirect_uri": {login.RedirectURI}, "nonce": {st.Nonce}}
	return f.Provider + "/authorize?" + q.Encode(), state, nil
}

func (f *formPost) Finish(r *http.Request, login connector.Login, state []byte) (provisioner.Claims, error) {
	var st formPostNonce
	if err := json.Unmarshal(state, &st); err != nil || st.Nonce == "" {
		return provisioner.Claims{}, fmt.Errorf("%w: no nonce in the login state", connector.ErrRejected)
	}
	if r.Method != http.MethodPost {
		return provisioner.Claims{}, fmt.Errorf("%w: the assertion comes by POST", connector.ErrRejected)
	}
	sub, email, mac := r.PostForm.Get("sub"), r.PostForm.Get("email"), r.PostForm.Get("mac")
	if !hmac.Equal([]byte(mac), []byte(assertionMAC(f.Key, st.Nonce, sub, email))) {
		return provisioner.Claims{}, fmt.Errorf("%w: assertion signature", connector.ErrRejected)
	}
	raw, _ := json.Marshal(map[string]any{"sub": sub, "email": email})
	return provisioner.Claims{Issuer: f.Provider, Subject: sub, Email: email, EmailVerified: true, EmailVerifiedKnown: true, Raw: raw}, nil
}

func (f *formPost) CallbackIsCrossSitePost() bool { return true }

func assertionMAC(key, nonce, sub, email string) string {
	m := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(m, "%s\x00%s\x00%s", nonce, sub, email)
	return hex.EncodeToString(m.Sum(nil))
}

// formPostProvider is the provider: its authorize page is a form that
// posts the signed assertion for the next user to the redirect URI.
type formPostProvider struct {
	*httptest.Server
	key string
	mu  sync.Mutex
	sub string
}

func newFormPostProvider(t *testing.T, key string) *formPostProvider {
	p := &formPostProvider{key: key}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p.mu.Lock()
		sub := p.sub
		p.mu.Unlock()
		email := sub + "@partner.example"
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<form method="post" action="%s"><input name="state" value="%s"><input name="sub" value="%s"><input name="email" value="%s"><input name="mac" value="%s"></form>`,
			html.EscapeString(q.Get("redirect_uri")), html.EscapeString(q.Get("state")), sub, email, assertionMAC(p.key, q.Get("nonce"), sub, email))
	}))
	t.Cleanup(p.Close)
	return p
}

var formFieldRE = regexp.MustCompile(`<input name="([a-z]+)" value="([^"]*)">`)

// submitAssertion submits the provider's form on page as a browser
// would, after change (if any) edits its fields.
func (b *browser) submitAssertion(page string, change func(url.Values)) (*http.Response, string) {
	b.t.Helper()
	action := html.UnescapeString(regexp.MustCompile(`action="([^"]+)"`).FindStringSubmatch(page)[1])
	v := url.Values{}
	for _, m := range formFieldRE.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if change != nil {
		change(v)
	}
	return b.postRaw(action, v)
}

// A connector module registered from a test package, as a third party's
// would be, loads from a Caddyfile's `connection <name> { <kind> … }`
// and logs users in through a real Caddy: its POST callback reaches
// Finish with the form and its own login state, JIT provisions the
// identity it returns, and the upstream sees the user. The login's state
// stays single-use and bound to the browser, and a forged assertion is
// refused without a session.
func TestThirdPartyConnectorModuleLogsIn(t *testing.T) {
	dir := t.TempDir()
	provider := newFormPostProvider(t, "provider-key")
	up := newUpstream(t)
	port := freePort(t)
	base := fmt.Sprintf("http://localhost:%d", port)
	conn := fmt.Sprintf("\t\tconnection partner {\n\t\t\tformpost %s provider-key\n\t\t\tjit\n\t\t}", provider.URL)
	runCaddyfile(t, fmt.Sprintf("{%s\n}\n%s {\n\tjit_auth\n\treverse_proxy %s\n}\n", globalOptions(dir, conn), base, up.hostPort()))

	login := func(b *browser, sub string) (*http.Response, string) {
		t.Helper()
		provider.mu.Lock()
		provider.sub = sub
		provider.mu.Unlock()
		resp, page, _ := b.follow(base+"/secret", nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), provider.URL+"/authorize") {
			t.Fatalf("the login did not reach the provider's page: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		return resp, page
	}

	b := newBrowser(t)
	_, page := login(b, "carol")
	resp, _ := b.submitAssertion(page, nil)
	loc, _ := resp.Location()
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Path != "/secret" {
		t.Fatalf("POST callback: %d to %v, want 302 to /secret", resp.StatusCode, loc)
	}
	if got, body := b.get(base + "/secret"); got.StatusCode != http.StatusOK || !strings.Contains(body, "upstream saw carol@partner.example") {
		t.Fatalf("after the POST callback: %d %q", got.StatusCode, body)
	}
	users := allUsers(t, openStore(t, dir))
	if len(users) != 1 || users[0].Username != "carol@partner.example" {
		t.Fatalf("provisioned users: %+v", users)
	}

	// The same POST again: the login's state is spent.
	if again, _ := b.submitAssertion(page, nil); again.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed POST callback: %d, want 400", again.StatusCode)
	}
	// Another browser posting this login's answer has no flow cookie.
	if other, _ := newBrowser(t).submitAssertion(page, nil); other.StatusCode != http.StatusBadRequest {
		t.Errorf("the answer posted from another browser: %d, want 400", other.StatusCode)
	}
	// A forged assertion: 401, no session, nothing stored.
	b2 := newBrowser(t)
	_, page = login(b2, "mallory")
	forged, body := b2.submitAssertion(page, func(v url.Values) { v.Set("sub", "carol") })
	if forged.StatusCode != http.StatusUnauthorized || b2.cookie(base, "jitauth_session") != nil {
		t.Errorf("forged assertion: %d, session %v\n%s", forged.StatusCode, b2.cookie(base, "jitauth_session"), body)
	}
	if n := len(allUsers(t, openStore(t, dir))); n != 1 {
		t.Errorf("%d users after the forged assertion, want 1", n)
	}
}

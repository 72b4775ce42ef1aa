package caddymodule

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jitauth/caddy-jitauth/connector"
)

// flowLifetime bounds a login from start to callback (S4: ≤10 minutes).
const flowLifetime = 10 * time.Minute

// flowState is the per-login state. It lives only in a sealed cookie in
// the browser that started the login, never in shared process memory, so
// one user's PKCE verifier or nonce can never be used for another's login.
type flowState struct {
	// State is the 256-bit state the provider returns to the callback.
	State string `json:"st"`
	// Connection is the connection this login goes through.
	Connection string `json:"c"`
	// ReturnTo is the validated same-origin path to go to afterwards.
	ReturnTo string `json:"r"`
	// RedirectURI is the callback URL sent to the provider; the token
	// request must repeat it exactly.
	RedirectURI string `json:"ru"`
	// Connector is the connector's own state for this login (a PKCE
	// verifier and nonce, a goth session), opaque here.
	Connector []byte `json:"k,omitempty"`
	// ExpiresAt is Unix seconds.
	ExpiresAt int64 `json:"exp"`
	// Elsewhere records that a page of another origin sent the browser
	// to start this login (a link or a redirect from another site).
	Elsewhere bool `json:"el,omitempty"`
}

// login is what the connector is told about this login.
func (f *flowState) login() connector.Login {
	return connector.Login{Connection: f.Connection, State: f.State, RedirectURI: f.RedirectURI}
}

// maxCallbackForm bounds a provider's form post to the callback.
const maxCallbackForm = 64 << 10

// callbackState is the state a callback names: where the connector says
// (connector.CallbackStater), else the "state" parameter of the query
// or, for a form post, of the form.
func callbackState(r *http.Request, c connector.Connector) string {
	if s, ok := c.(connector.CallbackStater); ok {
		return s.CallbackState(r)
	}
	if r.Method == http.MethodPost {
		return r.PostForm.Get("state")
	}
	return r.URL.Query().Get("state")
}

// randomToken returns n random bytes, base64url-encoded.
func randomToken(n int) string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(n))
}

// flowCookieName derives the flow cookie's name from the state, so
// several logins in several tabs do not overwrite each other, and the
// callback finds its cookie from the state parameter alone.
func flowCookieName(state string, secure bool) string {
	sum := sha256.Sum256([]byte(state))
	return cookieName(flowCookieBase+hex.EncodeToString(sum[:8]), secure)
}

// maxFlows bounds the logins one browser has in progress: each has a
// flow cookie of its own (about 650 bytes) for ten minutes, so tabs
// restored at once, or a user going back and forth between the site and
// the provider's page, would otherwise pile them up until the Cookie
// header outgrows what a proxy in front accepts (8 KiB for nginx's
// defaults), and the whole site answers 400 until they expire
// (oauth2-proxy #2163, #2383). Starting a login beyond the bound drops
// the oldest; its tab's callback then says to start again.
const maxFlows = 5

// maxHeldFlowBytes bounds the flow cookies a start leaves in place
// (names and values): with the new one, at most maxCookieLength more,
// the module's flows stay under 8 KiB even when long return paths make
// each of them larger.
const maxHeldFlowBytes = 4 << 10

// maxFlowsOpened bounds how many flow cookies one start opens to learn
// their age; any beyond it count as the oldest.
const maxFlowsOpened = 4 * maxFlows

// maxFlowsDropped bounds the flow cookies one answer expires: each is a
// Set-Cookie line of about 100 bytes, and anyone can send a Cookie
// header of thousands of junk flow names (about 20 bytes each) to any
// start or callback, which answered with a Set-Cookie line for every
// one of them, several times the request's size. A browser's own flows
// are dropped at each start, so it never holds more than a tab restore's
// worth; what one answer leaves, the next start or callback drops.
const maxFlowsDropped = maxFlowsOpened

// dropOldFlows expires the oldest of the flow cookies r carries, so that
// at most keep of them, of at most maxHeldFlowBytes, remain: maxFlows-1
// beside the one a start is about to set, or maxFlows at a callback,
// besides the one it used up (skip, deleted by the caller). Cookies that
// do not open (other keys, tampered) go first; an expired one is older
// than any live one. Under both bounds nothing is dropped. At the
// callback it catches the flows of starts sent at the same moment (a
// browser restoring many tabs), which each found none before them. At
// most maxFlowsDropped go in one answer.
func dropOldFlows(w http.ResponseWriter, r *http.Request, codecs cookieSeal, secure bool, keep int, skip string) {
	prefix := cookieName(flowCookieBase, secure)
	type held struct {
		name    string
		size    int
		expires int64 // 0: does not open
	}
	var flows []held
	total := 0
	seen := map[string]bool{}
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, prefix) || seen[ck.Name] || ck.Name == skip {
			continue
		}
		seen[ck.Name] = true
		h := held{name: ck.Name, size: len(ck.Name) + len(ck.Value)}
		var f flowState
		if len(flows) < maxFlowsOpened && codecs.decode(ck.Name, ck.Value, &f) {
			h.expires = f.ExpiresAt
		}
		flows = append(flows, h)
		total += h.size
	}
	sort.SliceStable(flows, func(i, j int) bool { return flows[i].expires < flows[j].expires })
	for dropped := 0; (len(flows) > keep || total > maxHeldFlowBytes) && dropped < maxFlowsDropped; dropped++ {
		setCookie(w, flows[0].name, "", -1, secure)
		total -= flows[0].size
		flows = flows[1:]
	}
}

// openFlow reads and checks the flow cookie for state. It fails when the
// cookie is missing, tampered, expired, or for a different state.
func openFlow(r *http.Request, codecs cookieSeal, state string, secure bool, now time.Time) (*flowState, string, bool) {
	if state == "" || len(state) > 128 {
		return nil, "", false
	}
	name := flowCookieName(state, secure)
	var f flowState
	if !codecs.open(r, name, &f) {
		return nil, name, false
	}
	if now.Unix() >= f.ExpiresAt || subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) != 1 {
		return nil, name, false
	}
	return &f, name, true
}

// usedStates holds the states (and pending login IDs, logout tokens)
// being answered, so that a replayed callback (the same cookie and
// state sent twice) is refused even though the cookie itself is still
// valid. It holds digests only, and is bounded. A state is claimed
// before the provider's answer is checked, so that two copies of one
// callback never both reach the provider, and released again when that
// answer is refused (release): anyone can start logins, so were refused
// answers kept, junk callbacks to flows of one's own would fill the set,
// and every login would be refused until they expired. For the same
// reason a state is released once its use is recorded (sessions.spend):
// the revocation set refuses it from then on, until its flow expires,
// and were it kept here too, logins completed through any account at the
// provider (refused by the allow rules or not), a dozen answers each on
// the username page, would fill the set and refuse every login.
type usedStates struct {
	mu   sync.Mutex
	seen map[[32]byte]time.Time
	// owed holds IDs spent here whose work could not be recorded after
	// (owe): a retry of each may finish it once (resume).
	owed map[[32]byte]time.Time
	// audited holds the states whose refusal was audited
	// (sessions.firstRefusal): a state refused is released, so the same
	// callback can be sent again, and is audited only the first time.
	audited onceSet
}

// maxUsedStates bounds usedStates: claims whose answers are in flight
// (a variable for the tests).
var maxUsedStates = 100_000

// claim marks state as used and reports whether it was unused before.
func (u *usedStates) claim(state string, now time.Time) bool {
	key := sha256.Sum256([]byte(state))
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.seen == nil {
		u.seen = make(map[[32]byte]time.Time)
	}
	if exp, ok := u.seen[key]; ok && now.Before(exp) {
		return false
	}
	if len(u.seen) >= maxUsedStates {
		for k, exp := range u.seen {
			if !now.Before(exp) {
				delete(u.seen, k)
			}
		}
		if len(u.seen) >= maxUsedStates {
			// Still full of live states: refuse rather than forget one
			// that could then be replayed.
			return false
		}
	}
	u.seen[key] = now.Add(flowLifetime)
	return true
}

// release forgets a claimed state whose login did not complete because
// the provider's answer was refused, so that it takes no room.
func (u *usedStates) release(state string) {
	key := sha256.Sum256([]byte(state))
	u.mu.Lock()
	delete(u.seen, key)
	u.mu.Unlock()
}

// maxOwed bounds owed. Only a genuine answer (a logout token the
// provider signed) is owed, and only while neither the store nor Caddy's
// storage takes a write, so it stays small; past the bound an ID is not
// owed, and its retry is refused as a replay, as it was before owed.
const maxOwed = 10_000

// owe records that id was spent (its use recorded for every instance)
// but the work it stands for failed, and the caller asked for a retry:
// until expires, one retry here may resume it, though claim refuses it.
// The spend cannot be undone (the store has no delete), so a retry that
// reaches another instance, or this one after a restart, is still refused.
func (u *usedStates) owe(id string, now, expires time.Time) {
	key := sha256.Sum256([]byte(id))
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.owed == nil {
		u.owed = make(map[[32]byte]time.Time)
	}
	for k, exp := range u.owed {
		if !now.Before(exp) {
			delete(u.owed, k)
		}
	}
	if len(u.owed) < maxOwed {
		u.owed[key] = expires
	}
}

// resume reports whether id is owed (owe), and takes it: of concurrent
// retries, one resumes.
func (u *usedStates) resume(id string, now time.Time) bool {
	key := sha256.Sum256([]byte(id))
	u.mu.Lock()
	defer u.mu.Unlock()
	exp, ok := u.owed[key]
	delete(u.owed, key)
	return ok && now.Before(exp)
}

package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/jitauth/caddy-jitauth/provisioner"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI adds jit_auth's user operations to Caddy's admin API (by
// default on localhost:2019, reachable only by whoever controls Caddy).
// <user> is a local ID or a username:
//
//	GET    /jit_auth/users/<user>        the user, its identities and TOTP status
//	PATCH  /jit_auth/users/<user>        change attributes or local roles
//	DELETE /jit_auth/users/<user>/totp   reset the TOTP factor
//
// A PATCH body is {"set": {"<attribute>": "<value>", …}, "grant_roles":
// […], "revoke_roles": […], "keep": true|false}. Attributes set here
// become locally owned, so connections with sync preserve_local keep
// them; roles granted here are never removed by a connection's sync;
// keep exempts the user from the connections' deprovision rules.
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.jit_auth",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

// Routes returns the admin routes.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: "/jit_auth/users", Handler: caddy.AdminHandlerFunc(handleAdminUserList)},
		{Pattern: "/jit_auth/users/", Handler: caddy.AdminHandlerFunc(handleAdminUsers)},
	}
}

// userChange is the body of a PATCH.
type userChange struct {
	Set         map[string]string `json:"set,omitempty"`
	GrantRoles  []string          `json:"grant_roles,omitempty"`
	RevokeRoles []string          `json:"revoke_roles,omitempty"`
	// Keep exempts the user from deprovisioning (true) or not (false).
	Keep *bool `json:"keep,omitempty"`
}

// userView is what GET answers.
type userView struct {
	*provisioner.User
	Roles      []string               `json:"roles"`
	Identities []provisioner.Identity `json:"identities"`
	TOTP       bool                   `json:"totp_enrolled"`
	// LoginHistory is the user's latest login attempts, newest first
	// (absent when the store keeps none).
	LoginHistory []provisioner.LoginEvent `json:"login_history,omitempty"`
}

func adminError(status int, format string, args ...any) error {
	return caddy.APIError{HTTPStatus: status, Err: fmt.Errorf(format, args...)}
}

// adminRequest is what every user route works on: the user the path
// names, found before the route's handler runs.
type adminRequest struct {
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	app *App
	u   *provisioner.User
}

// emit records an administrator's change to the request's user through
// the app's logger.
func (a *adminRequest) emit(kind eventKind, attributes, roles []string) {
	a.app.observers.emit(a.app.logger, event{kind: kind, username: a.u.Username, localID: a.u.ID, attributes: attributes, roles: roles})
}

// adminUserRoute is one endpoint under /jit_auth/users/<user>: its
// sub-path ("" for the user itself) and one handler per method.
type adminUserRoute struct {
	sub   string
	serve map[string]func(*adminRequest) error
}

// methods are the route's methods, sorted, for Allow and the error.
func (rt *adminUserRoute) methods() []string { return slices.Sorted(maps.Keys(rt.serve)) }

// adminUserRoutes are the user endpoints; a new one is one row.
var adminUserRoutes = []adminUserRoute{
	{sub: "",
		serve: map[string]func(*adminRequest) error{http.MethodGet: adminGetUser, http.MethodPatch: adminPatchUser, http.MethodDelete: adminDeleteUser}},
	{sub: "totp",
		serve: map[string]func(*adminRequest) error{http.MethodDelete: adminResetTOTP}},
	{sub: "disable",
		serve: map[string]func(*adminRequest) error{http.MethodPost: adminSetStatus(provisioner.StatusDisabled)}},
	{sub: "enable",
		serve: map[string]func(*adminRequest) error{http.MethodPost: adminSetStatus(provisioner.StatusActive)}},
	{sub: "signout",
		serve: map[string]func(*adminRequest) error{http.MethodPost: adminSignOut}},
}

// adminSignOut ends every live session of the user (POST …/signout): at
// once here, on every instance sharing the store within revocation_poll,
// and across restarts, as a logout does. The user can sign in again.
func adminSignOut(a *adminRequest) error {
	if err := a.signOutEverywhere(); err != nil {
		return err
	}
	a.emit(eventAdminSignedOut, nil, nil)
	return writeJSON(a.w, map[string]string{"local_id": a.u.ID, "username": a.u.Username, "signed_out": "true"})
}

// signOutEverywhere ends the user's sessions issued until now.
func (a *adminRequest) signOutEverywhere() error {
	subjects, err := a.app.identityCutoffKeys(a.ctx, a.u.ID)
	if err != nil {
		return adminError(http.StatusServiceUnavailable, "ending the user's sessions: %v", err)
	}
	if err := a.app.sessions.signOutEverywhere(a.ctx, a.u, subjects, time.Duration(a.app.SessionLifetime)); err != nil {
		return adminError(http.StatusServiceUnavailable, "ending the user's sessions: %v", err)
	}
	return nil
}

// statusChange is the optional body of …/disable and …/enable.
type statusChange struct {
	// Reason says why, for the audit log and the Caddy event.
	Reason string `json:"reason"`
}

// adminSetStatus disables or enables the user (POST …/disable, …/enable,
// with an optional {"reason": "…"}). Disabling refuses the user's live
// sessions at once on this instance and, through the store, on every
// instance within user_status_refresh; a login is refused from then on.
func adminSetStatus(status provisioner.Status) func(*adminRequest) error {
	return func(a *adminRequest) error {
		if a.app.admin == nil {
			return adminError(http.StatusNotImplemented, "the store (%s) cannot disable or enable users (it does not implement provisioner.AdminStore)", a.app.storeName())
		}
		var ch statusChange
		if err := a.decodeBody(&ch, []string{"reason"}, `{"reason": "…"}, or no body`, true); err != nil {
			return err
		}
		if len(ch.Reason) > provisioner.MaxStatusReason {
			return adminError(http.StatusBadRequest, "reason: at most %d bytes", provisioner.MaxStatusReason)
		}
		if !provisioner.StorableText(ch.Reason) {
			return adminError(http.StatusBadRequest, "reason: remove the NUL character (\\u0000)")
		}
		if a.u.Status == status {
			return adminError(http.StatusConflict, "user %q is already %s", a.u.Username, status)
		}
		var subjects []string
		if status != provisioner.StatusActive {
			var err error
			if subjects, err = a.app.identityCutoffKeys(a.ctx, a.u.ID); err != nil {
				return adminError(http.StatusServiceUnavailable, "user store: %v", err)
			}
		}
		if err := a.app.admin.SetStatus(a.ctx, a.u.ID, status, ch.Reason); err != nil {
			return adminStoreError(err, a.u)
		}
		kind := eventAdminDisabled
		if status == provisioner.StatusActive {
			kind = eventAdminEnabled
		}
		// The change is made: it is audited whatever happens next.
		a.app.observers.emit(a.app.logger, event{kind: kind, username: a.u.Username, localID: a.u.ID, reason: ch.Reason})
		if status == provisioner.StatusActive {
			a.app.sessions.status.set(a.u.ID, false)
		} else if err := a.app.endSessions(a.ctx, a.u, subjects); err != nil {
			// A disabled user's sessions end for good (enabling the user
			// again must not bring back a cookie someone may have
			// copied); the status refresh refuses them meanwhile.
			return adminError(http.StatusServiceUnavailable, "the user is disabled, and refused everywhere within user_status_refresh, but ending their sessions for good failed; run signout for them once the store answers: %v", err)
		}
		if u, err := a.app.store.User(a.ctx, a.u.ID); err == nil {
			a.u = u // as stored, with the reason and time of the change
		}
		return adminGetUser(a)
	}
}

// adminDeleteUser removes the user with its identities, second factors,
// consents and roles (DELETE …/<user>). Its live sessions end as for a
// disabled user; a later login through a JIT connection creates a new
// user.
func adminDeleteUser(a *adminRequest) error {
	if a.app.admin == nil {
		return adminError(http.StatusNotImplemented, "the store (%s) cannot delete users (it does not implement provisioner.AdminStore)", a.app.storeName())
	}
	// Read first: the deletion takes the identities with it.
	subjects, err := a.app.identityCutoffKeys(a.ctx, a.u.ID)
	if err != nil {
		return adminError(http.StatusServiceUnavailable, "user store: %v", err)
	}
	if err := a.app.admin.DeleteUser(a.ctx, a.u.ID); err != nil {
		return adminStoreError(err, a.u)
	}
	a.emit(eventAdminDeleted, nil, nil)
	if err := a.app.endSessions(a.ctx, a.u, subjects); err != nil {
		return adminError(http.StatusServiceUnavailable, "the user is deleted, and refused everywhere within user_status_refresh, but ending their sessions for good failed: %v", err)
	}
	return writeJSON(a.w, map[string]string{"local_id": a.u.ID, "username": a.u.Username, "deleted": "true"})
}

// adminStoreError answers a store error of a change to u.
func adminStoreError(err error, u *provisioner.User) error {
	if errors.Is(err, provisioner.ErrNotFound) {
		return adminError(http.StatusNotFound, "user %q is gone", u.Username)
	}
	return adminError(http.StatusServiceUnavailable, "user store: %v", err)
}

// handleAdminUsers dispatches /jit_auth/users/<user>[/<sub>]: unknown
// sub-paths are 404, a method the route does not take is 405 with Allow,
// both before any store is touched.
func handleAdminUsers(w http.ResponseWriter, r *http.Request) error {
	// Split before unescaping: a username may hold a "/" (ops%2Fbob).
	escRef, sub, _ := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/jit_auth/users/"), "/")
	ref, err := url.PathUnescape(escRef)
	if err != nil || !provisioner.StorableText(ref) {
		// No user has such a name, and PostgreSQL would refuse it as if
		// it were down.
		return adminError(http.StatusBadRequest, "the user %q is not a valid escaped UTF-8 ID or username (without NUL characters)", escRef)
	}
	var route *adminUserRoute
	for i := range adminUserRoutes {
		if adminUserRoutes[i].sub == sub {
			route = &adminUserRoutes[i]
		}
	}
	if ref == "" || route == nil {
		return adminError(http.StatusNotFound, "unknown jit_auth admin route; use /jit_auth/users/<id or username>[/totp|/disable|/enable|/signout]")
	}
	serve := route.serve[r.Method]
	if serve == nil {
		w.Header().Set("Allow", strings.Join(route.methods(), ", "))
		return adminError(http.StatusMethodNotAllowed, "method %s not allowed; use %s", r.Method, orList(route.methods()))
	}
	app, done, err := activeApp()
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	u, err := adminUser(ctx, app.store, ref)
	if err != nil {
		return err
	}
	return serve(&adminRequest{w: w, r: r, ctx: ctx, app: app, u: u})
}

// adminUser finds the user ref names, by ID or by username. A username
// can come from a provider (preferred_username), so it may be the ID of
// another user: then ref names two users, and acting on either could hit
// the one the operator did not mean, so neither is taken.
func adminUser(ctx context.Context, store provisioner.UserStore, ref string) (*provisioner.User, error) {
	byID, err := store.User(ctx, ref)
	if err != nil && !errors.Is(err, provisioner.ErrNotFound) {
		return nil, adminError(http.StatusServiceUnavailable, "user store: %v", err)
	}
	byName, err := store.UserByUsername(ctx, ref)
	if err != nil && !errors.Is(err, provisioner.ErrNotFound) {
		return nil, adminError(http.StatusServiceUnavailable, "user store: %v", err)
	}
	switch {
	case byID != nil && byName != nil && byID.ID != byName.ID:
		return nil, adminError(http.StatusConflict, "%q is the ID of one user (username %q) and the username of another (ID %q); name the one you mean by the other key",
			ref, byID.Username, byName.ID)
	case byID != nil:
		return byID, nil
	case byName != nil:
		return byName, nil
	}
	return nil, adminError(http.StatusNotFound, "no user with ID or username %q", ref)
}

// activeApp is the running configuration's jit_auth app, which every
// admin endpoint works on, with its store in use until done is called
// (storeUses): a reload meanwhile closes that store after the request,
// not under it.
func activeApp() (app *App, done func(), err error) {
	a, err := caddy.ActiveContext().AppIfConfigured("jit_auth")
	if err != nil {
		return nil, nil, adminError(http.StatusNotFound, "the jit_auth app is not configured")
	}
	app = a.(*App)
	if !app.uses.begin() {
		return app, func() {}, nil
	}
	return app, app.uses.end, nil
}

// orList writes methods as "GET or PATCH".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// adminResetTOTP removes the user's TOTP factor (DELETE …/totp).
func adminResetTOTP(a *adminRequest) error {
	u := a.u
	f := a.app.factors
	if f == nil {
		return adminError(http.StatusNotImplemented, "the store (%s) keeps no second factors", a.app.storeName())
	}
	// A reset of nothing is not a reset: say so, and log nothing.
	switch _, err := f.TOTP(a.ctx, u.ID); {
	case errors.Is(err, provisioner.ErrNotFound):
		return adminError(http.StatusNotFound, "user %q has no TOTP factor to reset", u.Username)
	case err != nil:
		return adminError(http.StatusServiceUnavailable, "user store: %v", err)
	}
	// Every session of the user ends first (as a sign-out everywhere,
	// to the second): one still owing its second factor, held by
	// whoever has only the provider login, would otherwise enrol their
	// own authenticator once the factor is gone. If this fails, nothing
	// is reset.
	if err := a.signOutEverywhere(); err != nil {
		return err
	}
	if err := f.DeleteTOTP(a.ctx, u.ID); err != nil {
		return adminError(http.StatusServiceUnavailable, "user store: %v", err)
	}
	a.emit(eventAdminTOTPReset, nil, nil)
	return writeJSON(a.w, map[string]string{"local_id": u.ID, "username": u.Username, "totp": "reset"})
}

// adminPatchUser applies a change to attributes and local roles, then
// answers the user as GET does.
func adminPatchUser(a *adminRequest) error {
	var ch userChange
	if err := a.decodeBody(&ch, userChangeFields, `{"set": {…}, "grant_roles": […], "revoke_roles": […], "keep": true|false}; the values in set are strings, e.g. "email_verified": "true"`, false); err != nil {
		return err
	}
	for _, field := range userChangeFields {
		if _, ok := ch.Set[field]; ok {
			// {"set": {"keep": "true"}} meant the flag: stored as an
			// attribute named keep, it would change nothing and say so
			// nowhere.
			return adminError(http.StatusBadRequest, "%q is a field of the change, not an attribute: send it beside \"set\", e.g. {\"keep\": true}", field)
		}
	}
	// One store update for the whole change: a change refused in part
	// (an invalid role, email_verified other than "true"/"false",
	// which would otherwise read as false) writes nothing.
	if len(ch.Set)+len(ch.GrantRoles)+len(ch.RevokeRoles) > 0 || ch.Keep != nil {
		change := provisioner.LocalChange{Set: ch.Set, Grant: ch.GrantRoles, Revoke: ch.RevokeRoles, Keep: ch.Keep}
		u, before, err := provisioner.ApplyLocalChangeFrom(a.ctx, a.app.store, a.u.ID, change)
		if err != nil {
			return adminUpdateError(err)
		}
		a.u = u
		if len(ch.Set) > 0 {
			a.emit(eventAdminUpdated, sortedKeys(ch.Set), nil)
		}
		// The audit trail names the local grants that changed, not the
		// roles asked for: revoking a role a connection grants, or
		// granting one already granted here, changes nothing.
		after := u.RoleGrants[provisioner.RoleSourceLocal]
		if granted := missingFrom(before, after); len(granted) > 0 {
			a.emit(eventAdminRolesGranted, nil, granted)
		}
		if revoked := missingFrom(after, before); len(revoked) > 0 {
			a.emit(eventAdminRolesRevoked, nil, revoked)
		}
		if ch.Keep != nil {
			a.emit(eventAdminUpdated, []string{"keep"}, nil)
		}
	}
	return adminGetUser(a)
}

// missingFrom returns the items of list that have is missing.
func missingFrom(have, list []string) []string {
	var out []string
	for _, r := range list {
		if !slices.Contains(have, r) {
			out = append(out, r)
		}
	}
	return out
}

// adminGetUser answers the user, its identities and its TOTP status.
func adminGetUser(a *adminRequest) error {
	u := a.u
	ids, err := a.app.store.Identities(a.ctx, u.ID)
	if err != nil {
		return adminError(http.StatusServiceUnavailable, "user store: %v", err)
	}
	totpErr := provisioner.ErrNotFound // a store without second factors: none
	if f := a.app.factors; f != nil {
		_, totpErr = f.TOTP(a.ctx, u.ID)
	}
	if totpErr != nil && !errors.Is(totpErr, provisioner.ErrNotFound) {
		return adminError(http.StatusServiceUnavailable, "user store: %v", totpErr)
	}
	for i := range ids {
		ids[i].RawClaims = nil // the claims stay in the store; this is an overview
	}
	roles := u.Roles()
	if roles == nil {
		roles = []string{} // "roles": [] rather than null for a user with none
	}
	view := userView{User: u, Roles: roles, Identities: ids, TOTP: totpErr == nil}
	if h := a.app.admin; h != nil {
		if view.LoginHistory, err = h.LoginHistory(a.ctx, u.ID); err != nil {
			return adminError(http.StatusServiceUnavailable, "user store: %v", err)
		}
	}
	return writeJSON(a.w, view)
}

// userChangeFields are userChange's JSON names, spelt exactly.
var userChangeFields = []string{"set", "grant_roles", "revoke_roles", "keep"}

// decodeBody reads the request's JSON body into v, strictly: one JSON
// object with only the given fields, each once, spelt exactly, and
// nothing after it (a second value would be silently ignored, and the
// caller would believe it applied). shape is what the body should look
// like, for the error. With optional, an empty body leaves v as it is.
func (a *adminRequest) decodeBody(v any, fields []string, shape string, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(a.w, a.r.Body, 64<<10))
	if err != nil {
		return adminError(http.StatusBadRequest, "reading the change: %v", err)
	}
	if optional && len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return adminError(http.StatusBadRequest, "reading the change: the body must be a JSON object: %s", shape)
	}
	if err := checkJSONKeys(body, fields); err != nil {
		return adminError(http.StatusBadRequest, "reading the change: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return adminError(http.StatusBadRequest, "reading the change: %v (expected %s)", err, shape)
	}
	if _, err := dec.Token(); err != io.EOF {
		return adminError(http.StatusBadRequest, "reading the change: the body must be a single JSON object with nothing after it")
	}
	return nil
}

// checkJSONKeys refuses what encoding/json lets through silently: a key
// given twice in one object (the last one would win, where another
// parser, a log reader or the administrator's own tooling may take the
// first), and a top-level key that is a field name in another letter
// case ("GRANT_ROLES"), which encoding/json matches case-insensitively.
// Malformed JSON is left for the decoder to report.
func checkJSONKeys(body []byte, fields []string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		keys   map[string]bool
		// wantKey: the next token in this object is a key.
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // EOF, or malformed: the decoder says which
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].object {
					stack[len(stack)-1].wantKey = true
				}
				continue
			}
			key, _ := tok.(string)
			if top.keys[key] {
				return fmt.Errorf("the key %q is given twice", key)
			}
			if len(stack) == 1 && !slices.Contains(fields, key) {
				return fmt.Errorf("unknown field %q; the fields are %s", key, strings.Join(fields, ", "))
			}
			top.keys[key] = true
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: in an object, a key comes next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// adminUpdateError tells a bad change from a store failure.
func adminUpdateError(err error) error {
	switch {
	case errors.Is(err, provisioner.ErrInvalidChange):
		return adminError(http.StatusBadRequest, "%v", err)
	case errors.Is(err, provisioner.ErrNotFound):
		return adminError(http.StatusNotFound, "the user was deleted meanwhile")
	}
	return adminError(http.StatusServiceUnavailable, "user store: %v", err)
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// Interface guards
var _ caddy.AdminRouter = (*adminAPI)(nil)
